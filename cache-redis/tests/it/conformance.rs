//! The conformance suite on a single Redis, on a three-master cluster, and over TLS
//! with a password.

use crate::common::{RedisHarness, Target};

conformance_tests::suite!(RedisHarness(Target::Single));
conformance_tests::suite!(mod cluster, RedisHarness(Target::Cluster));
conformance_tests::suite!(mod tls, RedisHarness(Target::Tls));
