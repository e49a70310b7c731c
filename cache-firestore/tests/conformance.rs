//! The conformance suite on Firestore (the npm emulator here).

mod common;
use common::FirestoreHarness;

conformance_tests::suite!(FirestoreHarness::new());
