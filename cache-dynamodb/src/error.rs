//! AWS SDK errors, mapped into the core error.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use cache_core::{Error, ErrorKind};

pub(crate) const BACKEND: &str = "dynamodb";

/// The HTTP status of a raw response.
pub(crate) trait Status {
    fn http_status(&self) -> Option<u16>;
}

impl Status for aws_sdk_dynamodb::config::http::HttpResponse {
    fn http_status(&self) -> Option<u16> {
        Some(self.status().as_u16())
    }
}

/// Map an SDK error to what a caller can act on.
pub(crate) fn map<E, R>(e: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Status + std::fmt::Debug + Send + Sync + 'static,
{
    let (kind, message) = match &e {
        SdkError::ConstructionFailure(_) => (
            ErrorKind::Config,
            "the SDK could not build the request; check the region, endpoint and credentials configuration",
        ),
        SdkError::TimeoutError(_) => (ErrorKind::Timeout, "DynamoDB did not answer in time"),
        SdkError::DispatchFailure(d) if d.is_user() => (
            ErrorKind::Config,
            "the SDK could not send the request; check the AWS credentials (environment, profile or role) and the endpoint",
        ),
        SdkError::DispatchFailure(d) if d.is_timeout() => {
            (ErrorKind::Timeout, "DynamoDB did not answer in time")
        }
        SdkError::DispatchFailure(_) => (
            ErrorKind::Unavailable,
            "cannot reach DynamoDB; check the endpoint or region and the network",
        ),
        SdkError::ResponseError(_) => (
            ErrorKind::Backend,
            "DynamoDB answered with something the SDK could not read",
        ),
        SdkError::ServiceError(s) => match s.err().code().unwrap_or_default() {
            "ResourceNotFoundException" => (
                ErrorKind::Config,
                "the table does not exist (or is not ACTIVE); create it with DynamoBuilder::create_table",
            ),
            "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "MissingAuthenticationToken"
            | "MissingAuthenticationTokenException"
            | "ExpiredTokenException"
            | "InvalidClientTokenId" => (
                ErrorKind::Config,
                "DynamoDB refused the credentials; check the access key, secret and session token",
            ),
            "AccessDeniedException" => (
                ErrorKind::Config,
                "not authorized; allow dynamodb:GetItem, PutItem, UpdateItem, DeleteItem, ConditionCheckItem, BatchGetItem, BatchWriteItem, Query and DescribeTable on the table and its index",
            ),
            "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "ServiceUnavailable"
            | "InternalServerError" => (
                ErrorKind::Unavailable,
                "DynamoDB throttled or could not serve the request now; retry, or raise the table's capacity",
            ),
            "TransactionConflictException" => (
                ErrorKind::Unavailable,
                "a transaction on the same item kept being in progress; retry",
            ),
            "ValidationException"
                if s.err().message().is_some_and(|m| m.contains("Item size")) =>
            {
                (
                    ErrorKind::InvalidInput,
                    "the item is over DynamoDB's 400 KB limit; store a smaller value or lower max_value_size",
                )
            }
            // An answer without a readable code (a proxy's, or a server that speaks
            // another protocol for errors): the status still says what to fix.
            _ if matches!(s.raw().http_status(), Some(401 | 403)) => (
                ErrorKind::Config,
                "DynamoDB refused the credentials or their permissions (HTTP 401/403); check the access key, secret and the policy",
            ),
            _ => (ErrorKind::Backend, "DynamoDB answered with an error"),
        },
        _ => (ErrorKind::Backend, "the SDK failed"),
    };
    let detail = match &e {
        SdkError::ServiceError(s) => format!(
            "{message} ({}: {})",
            s.err().code().unwrap_or("unknown"),
            s.err().message().unwrap_or("")
        ),
        _ => message.to_owned(),
    };
    Error::new(kind, BACKEND, detail).with_source(e)
}

pub(crate) fn config(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, BACKEND, message.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;

    impl Status for u16 {
        fn http_status(&self) -> Option<u16> {
            Some(*self)
        }
    }

    fn service(code: &str, message: &str) -> Error {
        let e = PutItemError::generic(ErrorMetadata::builder().code(code).message(message).build());
        map(SdkError::<PutItemError, u16>::service_error(e, 400))
    }

    #[test]
    fn an_unreadable_refusal_is_still_a_config_error() {
        let e = PutItemError::generic(ErrorMetadata::builder().build());
        let err = map(SdkError::<PutItemError, u16>::service_error(e, 403));
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
        let e = PutItemError::generic(ErrorMetadata::builder().build());
        let err = map(SdkError::<PutItemError, u16>::service_error(e, 500));
        assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    }

    #[test]
    fn service_errors_map_to_what_a_caller_can_act_on() {
        let cases = [
            (
                "ValidationException",
                "Item size has exceeded the maximum allowed size",
                ErrorKind::InvalidInput,
            ),
            (
                "ValidationException",
                "One or more parameter values were invalid",
                ErrorKind::Backend,
            ),
            (
                "ResourceNotFoundException",
                "Requested resource not found",
                ErrorKind::Config,
            ),
            (
                "UnrecognizedClientException",
                "The security token is invalid",
                ErrorKind::Config,
            ),
            ("AccessDeniedException", "not authorized", ErrorKind::Config),
            (
                "ProvisionedThroughputExceededException",
                "slow down",
                ErrorKind::Unavailable,
            ),
            ("ThrottlingException", "slow down", ErrorKind::Unavailable),
            (
                "TransactionConflictException",
                "Transaction is ongoing for the item",
                ErrorKind::Unavailable,
            ),
        ];
        for (code, message, kind) in cases {
            let e = service(code, message);
            assert_eq!(e.kind(), kind, "{code}: {e}");
            assert!(e.to_string().contains(code), "{e}");
        }
    }
}
