//! The conformance suite on PostgreSQL: the default UNLOGGED table, and a logged table
//! whose name is full of quotes, `;`, `%`, `_` and a backslash.

use crate::common::PostgresHarness;

conformance_tests::suite!(PostgresHarness::new());
conformance_tests::suite!(mod hostile_table, PostgresHarness::hostile_logged_table());
