//! Turns SDK errors into `ProviderError`s: the service's code and message, classified.

use aws_sdk_ec2::config::http::HttpResponse;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use drplan_core::provider::{ErrorClass, ProviderError};

/// The class a service error code belongs to. `status` is the HTTP status, for answers
/// without a code (S3's HEAD requests carry no body).
pub fn classify_code(code: Option<&str>, status: Option<u16>) -> ErrorClass {
    let Some(code) = code else {
        return match status {
            Some(404) => ErrorClass::NotFound,
            Some(403) => ErrorClass::Denied,
            Some(429) => ErrorClass::Throttled,
            Some(409) => ErrorClass::Conflict,
            Some(400) => ErrorClass::Invalid,
            _ => ErrorClass::Failed,
        };
    };
    match code {
        "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "TooManyRequestsException"
        | "SlowDown"
        | "PriorRequestNotComplete" => ErrorClass::Throttled,
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "AuthFailure"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken" => ErrorClass::Denied,
        // A missing zone is a configuration mistake, not an object that went away.
        "NoSuchHostedZone" => ErrorClass::Invalid,
        c if c.starts_with("InvalidAMIID.") => ErrorClass::Invalid,
        "InvalidParameterValue"
        | "InvalidParameterCombination"
        | "InvalidInstanceType"
        | "InvalidInput"
        | "InvalidChangeBatch"
        | "InvalidArgument"
        | "InvalidBucketName"
        | "MalformedXML"
        | "ValidationError"
        | "InvalidLocationConstraint"
        | "IllegalLocationConstraintException"
        | "InstanceLimitExceeded"
        | "VcpuLimitExceeded"
        | "TooManyHealthChecks"
        | "TooManyBuckets" => ErrorClass::Invalid,
        "BucketAlreadyExists"
        | "BucketNotEmpty"
        | "HealthCheckInUse"
        | "HealthCheckAlreadyExists"
        | "IncorrectInstanceState"
        | "ConflictingDomainExists"
        | "OperationAborted" => ErrorClass::Conflict,
        c if c.starts_with("NoSuch") || c.ends_with("NotFound") || c.ends_with(".NotFound") => ErrorClass::NotFound,
        _ => match status {
            Some(429) => ErrorClass::Throttled,
            Some(404) => ErrorClass::NotFound,
            _ => ErrorClass::Failed,
        },
    }
}

/// A `ProviderError` for a failed `operation`: the class, and a one-line message with the
/// service's code and message (or the transport's cause), never a debug dump.
pub fn sdk_error<E>(operation: &str, err: &SdkError<E, HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::DispatchFailure(f) => {
            let why = if f.is_timeout() {
                "timed out"
            } else if f.is_io() {
                "connection failed"
            } else {
                "could not send the request"
            };
            ProviderError::new(ErrorClass::Unreachable, format!("{operation}: {why}: {}", source_chain(err)))
        }
        SdkError::TimeoutError(_) => {
            ProviderError::new(ErrorClass::Unreachable, format!("{operation}: timed out: {}", source_chain(err)))
        }
        SdkError::ConstructionFailure(_) => ProviderError::new(
            ErrorClass::Invalid,
            format!("{operation}: the request could not be built: {}", source_chain(err)),
        ),
        _ => {
            let status = err.raw_response().map(|r| r.status().as_u16());
            let code = err.code();
            let class = classify_code(code, status);
            let message = match (code, err.message()) {
                (Some(code), Some(message)) => format!("{operation}: {code}: {message}"),
                (Some(code), None) => format!("{operation}: {code}"),
                (None, Some(message)) => format!("{operation}: {message}"),
                (None, None) => match status {
                    Some(s) => format!("{operation}: HTTP status {s}: {}", source_chain(err)),
                    None => format!("{operation}: {}", source_chain(err)),
                },
            };
            ProviderError::new(class, message)
        }
    }
}

/// The error and its causes on one line: transport errors hide the useful part inside.
fn source_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut next = err.source();
    while let Some(e) = next {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        next = e.source();
    }
    parts.join(": ").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::classify_code;
    use drplan_core::provider::ErrorClass;

    #[test]
    fn service_codes_map_to_classes() {
        let cases = [
            ("Throttling", ErrorClass::Throttled),
            ("RequestLimitExceeded", ErrorClass::Throttled),
            ("AccessDenied", ErrorClass::Denied),
            ("UnauthorizedOperation", ErrorClass::Denied),
            ("InvalidAMIID.NotFound", ErrorClass::Invalid),
            ("InvalidAMIID.Malformed", ErrorClass::Invalid),
            ("InvalidParameterValue", ErrorClass::Invalid),
            ("InvalidInstanceType", ErrorClass::Invalid),
            ("NoSuchHostedZone", ErrorClass::Invalid),
            ("NoSuchHealthCheck", ErrorClass::NotFound),
            ("NoSuchBucket", ErrorClass::NotFound),
            ("InvalidInstanceID.NotFound", ErrorClass::NotFound),
            ("BucketNotEmpty", ErrorClass::Conflict),
            ("SomethingElse", ErrorClass::Failed),
        ];
        for (code, class) in cases {
            assert_eq!(classify_code(Some(code), Some(400)), class, "{code}");
        }
        assert_eq!(classify_code(None, Some(404)), ErrorClass::NotFound);
        assert_eq!(classify_code(None, Some(429)), ErrorClass::Throttled);
        assert_eq!(classify_code(Some("Unknown"), Some(429)), ErrorClass::Throttled);
    }
}
