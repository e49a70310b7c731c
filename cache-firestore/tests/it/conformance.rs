//! The conformance suite on Firestore (the npm emulator here).

use crate::common::FirestoreHarness;

conformance_tests::suite!(FirestoreHarness::new());
