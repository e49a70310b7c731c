//! The conformance suite on DynamoDB (moto's server here).

mod common;
use common::DynamoHarness;

conformance_tests::suite!(DynamoHarness::new());
