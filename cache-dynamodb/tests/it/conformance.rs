//! The conformance suite on DynamoDB (moto's server here).

use crate::common::DynamoHarness;

conformance_tests::suite!(DynamoHarness::new());
