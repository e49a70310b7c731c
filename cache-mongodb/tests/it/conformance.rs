//! The conformance suite on MongoDB (SecantusDB here): the default collection, and one
//! whose name is full of `$`, `.`, quotes and regex characters.

use crate::common::MongoHarness;

conformance_tests::suite!(MongoHarness::new());
conformance_tests::suite!(mod hostile_collection, MongoHarness::hostile_collection());
