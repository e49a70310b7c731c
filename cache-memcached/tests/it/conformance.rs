//! The conformance suite on Memcached: one server, and three with keys spread by
//! consistent hashing.

use crate::common::MemcachedHarness;

conformance_tests::suite!(MemcachedHarness::single());
conformance_tests::suite!(mod ring, MemcachedHarness::ring());
