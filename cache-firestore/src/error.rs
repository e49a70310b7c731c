//! gRPC statuses and the firestore crate's errors, mapped into the core error.

use cache_core::{Error, ErrorKind};
use gcloud_sdk::tonic::{Code, Status};

pub(crate) const BACKEND: &str = "firestore";

/// Map a gRPC status to what a caller can act on.
pub(crate) fn map(status: Status) -> Error {
    let (kind, message) = match status.code() {
        Code::Unavailable => (
            ErrorKind::Unavailable,
            "cannot reach Firestore; check the network (or FIRESTORE_EMULATOR_HOST)",
        ),
        Code::DeadlineExceeded => (ErrorKind::Timeout, "Firestore did not answer in time"),
        Code::ResourceExhausted | Code::Aborted => (
            ErrorKind::Unavailable,
            "Firestore is throttling or the document is contended; retry",
        ),
        Code::Unauthenticated => (
            ErrorKind::Config,
            "Firestore refused the credentials; check the key file or Application Default Credentials",
        ),
        Code::PermissionDenied => (
            ErrorKind::Config,
            "not authorized; grant the service account roles/datastore.user on the project",
        ),
        Code::NotFound => (
            ErrorKind::Config,
            "Firestore found no such project or database; check project_id and database_id",
        ),
        Code::InvalidArgument if status.message().contains("exceeds the maximum") => (
            ErrorKind::InvalidInput,
            "the document is over Firestore's 1 MiB limit; store a smaller value",
        ),
        _ => (ErrorKind::Backend, "Firestore answered with an error"),
    };
    Error::new(
        kind,
        BACKEND,
        format!("{message} ({:?}: {})", status.code(), status.message()),
    )
    .with_source(status)
}

/// Map an error of the firestore crate (connecting, credentials).
pub(crate) fn map_crate(e: firestore::errors::FirestoreError) -> Error {
    use firestore::errors::FirestoreError as E;
    let kind = match &e {
        // The channel could not be opened: the service (or emulator) is not reachable.
        E::SystemError(s) if s.public.code.starts_with("GrpcStatus") => ErrorKind::Unavailable,
        E::InvalidParametersError(_) | E::SystemError(_) => ErrorKind::Config,
        E::NetworkError(_) => ErrorKind::Unavailable,
        _ => ErrorKind::Backend,
    };
    Error::new(
        kind,
        BACKEND,
        match kind {
            ErrorKind::Unavailable => "cannot reach Firestore; check the network (or FIRESTORE_EMULATOR_HOST)",
            _ => "cannot set up the Firestore client; check the project id, the credentials (key file or Application Default Credentials) and FIRESTORE_EMULATOR_HOST",
        },
    )
    .with_source(e)
}

pub(crate) fn config(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, BACKEND, message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_what_a_caller_can_act_on() {
        let cases = [
            (Code::Unavailable, "", ErrorKind::Unavailable),
            (Code::DeadlineExceeded, "", ErrorKind::Timeout),
            (Code::Unauthenticated, "", ErrorKind::Config),
            (Code::PermissionDenied, "", ErrorKind::Config),
            (
                Code::NotFound,
                "database (default) does not exist",
                ErrorKind::Config,
            ),
            (Code::ResourceExhausted, "", ErrorKind::Unavailable),
            (
                Code::InvalidArgument,
                "Document exceeds the maximum allowed size",
                ErrorKind::InvalidInput,
            ),
            (Code::InvalidArgument, "bad field path", ErrorKind::Backend),
            (Code::Internal, "", ErrorKind::Backend),
        ];
        for (code, message, kind) in cases {
            let e = map(Status::new(code, message));
            assert_eq!(e.kind(), kind, "{code:?}: {e}");
        }
    }
}
