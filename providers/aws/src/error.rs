//! Turns SDK errors into `ProviderError`s: the service's code and message, classified.

use aws_config::retry::ErrorKind;
use aws_sdk_ec2::config::http::HttpResponse;
use aws_sdk_ec2::error::{ConnectorError, ProvideErrorMetadata, SdkError};
use drplan_core::provider::{ErrorClass, ProviderError};

/// The class a service error code belongs to, `None` for a code AWS shares with other
/// meanings or one not listed here: the HTTP status decides those, through core's table.
pub fn class_of_code(code: &str) -> Option<ErrorClass> {
    Some(match code {
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
        // RDS: an instance that is not there is not found; the groups, key and network a
        // request names are configuration, so one missing is a mistake in it. The wire
        // codes mostly drop the SDK's `Fault` suffix; both spellings are listed.
        "DBInstanceNotFound" | "DBInstanceNotFoundFault" => ErrorClass::NotFound,
        "DBSubnetGroupNotFoundFault"
        | "DBParameterGroupNotFound"
        | "DBParameterGroupNotFoundFault"
        | "DBSecurityGroupNotFound"
        | "DBSecurityGroupNotFoundFault"
        | "DBSubnetGroupNotAllowedFault"
        | "InvalidDBSubnetGroupStateFault"
        | "DBSubnetGroupDoesNotCoverEnoughAZs"
        | "InvalidSubnet"
        | "InvalidVPCNetworkStateFault"
        | "KMSKeyNotAccessibleFault"
        | "StorageQuotaExceeded"
        | "InstanceQuotaExceeded"
        | "DBInstanceClassNotFound" => ErrorClass::Invalid,
        // An identifier taken, or an instance busy (a replica still creating, a promotion
        // under way): the world is not as the request expects.
        "DBInstanceAlreadyExists"
        | "DBInstanceAlreadyExistsFault"
        | "InvalidDBInstanceState"
        | "InvalidDBInstanceStateFault" => ErrorClass::Conflict,
        // CloudWatch's query-compatible codes for a request it cannot take.
        "MissingParameter" | "InvalidParameterValueException" | "InvalidNextToken" => ErrorClass::Invalid,
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
        // An archived object read before its thaw, or a thaw asked for twice: the object is
        // not in the state the request needs, which is not a permission problem.
        "InvalidObjectState" | "RestoreAlreadyInProgress" => ErrorClass::Conflict,
        // A group of that name made meanwhile (another instance's quarantine, at once).
        "InvalidGroup.Duplicate" => ErrorClass::Conflict,
        "BucketAlreadyExists"
        | "BucketNotEmpty"
        | "HealthCheckInUse"
        | "HealthCheckAlreadyExists"
        | "IncorrectInstanceState"
        | "ConflictingDomainExists"
        | "OperationAborted" => ErrorClass::Conflict,
        c if c.starts_with("NoSuch") || c.ends_with("NotFound") || c.ends_with(".NotFound") => ErrorClass::NotFound,
        _ => return None,
    })
}

/// The class of an answer with service error `code` and HTTP `status` (S3's HEAD requests
/// carry no body, so no code): the code when it is listed, else core's status table.
pub fn classify_code(code: Option<&str>, status: Option<u16>) -> ErrorClass {
    code.and_then(class_of_code).unwrap_or_else(|| status.map_or(ErrorClass::Failed, ErrorClass::of_status))
}

/// A `ProviderError` for a failed `operation`: the class, and a one-line message with the
/// service's code and message (or the transport's cause), never a debug dump.
pub fn sdk_error<E>(operation: &str, err: &SdkError<E, HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        // A connection lost after it was made is worth another attempt; one that could not
        // be made is not during a refresh (the region may be lost): see core's retry policy.
        SdkError::DispatchFailure(f) => {
            let e = match f.as_connector_error() {
                Some(e) => ProviderError::new(ErrorClass::Unreachable, format!("{operation}: {}", no_answer(e))),
                None => ProviderError::new(
                    ErrorClass::Unreachable,
                    format!("{operation}: no answer: {}", source_chain(err)),
                ),
            };
            if drplan_retry::connect_failed(err) { e } else { e.transient() }
        }
        SdkError::TimeoutError(_) => {
            ProviderError::new(ErrorClass::Unreachable, format!("{operation}: timed out: {}", source_chain(err)))
                .transient()
        }
        SdkError::ConstructionFailure(_) => ProviderError::new(
            ErrorClass::Invalid,
            format!("{operation}: the request could not be built: {}", source_chain(err)),
        ),
        _ => {
            let status = err.raw_response().map(|r| r.status().as_u16());
            let code = err.code();
            let message = match (code, err.message()) {
                (Some(code), Some(message)) => format!("{operation}: {code}: {message}"),
                (Some(code), None) => format!("{operation}: {code}"),
                (None, Some(message)) => format!("{operation}: {message}"),
                (None, None) => match status {
                    Some(s) => format!("{operation}: HTTP status {s}: {}", source_chain(err)),
                    None => format!("{operation}: {}", source_chain(err)),
                },
            };
            ProviderError::from_status(code.and_then(class_of_code), status.unwrap_or(0), message)
        }
    }
}

/// Why a request got no answer, in plain words. Only a refused connection proves nothing was
/// sent: a connection closed or timed out after the request went out may have carried it, so
/// the operation may have happened (a create is then adopted by its tags on the next plan).
fn no_answer(e: &ConnectorError) -> String {
    use std::io::ErrorKind as Io;
    let io = causes(e).find_map(|c| c.downcast_ref::<std::io::Error>()).map(std::io::Error::kind);
    // hyper's "connection closed before message completed" comes as an unclassified error
    // the connector marks transient.
    let closed = matches!(io, Some(Io::ConnectionReset | Io::ConnectionAborted | Io::BrokenPipe | Io::UnexpectedEof))
        || (e.is_io() && io.is_none())
        || e.as_other() == Some(ErrorKind::TransientError);
    if e.is_timeout() {
        "timed out waiting for an answer; the request may have been carried out".to_owned()
    } else if io == Some(Io::ConnectionRefused) {
        "the connection was refused".to_owned()
    } else if closed {
        "the connection was closed before an answer came; the request may have been carried out".to_owned()
    } else {
        // A failure to resolve or reach the host, named by its innermost cause.
        let cause = causes(e).last().map(ToString::to_string).unwrap_or_default();
        format!("no answer: {}", cause.replace('\n', " "))
    }
}

/// `err` and the errors that caused it, outermost first.
fn causes<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(err), |e| e.source())
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
    use super::{classify_code, sdk_error};
    use aws_config::retry::ErrorKind;
    use aws_sdk_ec2::config::http::HttpResponse;
    use aws_sdk_ec2::error::{ConnectorError, SdkError};
    use aws_sdk_ec2::operation::run_instances::RunInstancesError;
    use drplan_core::provider::ErrorClass;

    fn dispatch(e: ConnectorError) -> (ErrorClass, String) {
        let e = sdk_error("RunInstances", &SdkError::<RunInstancesError, HttpResponse>::dispatch_failure(e));
        (e.class, e.message)
    }

    #[test]
    fn lost_connections_are_told_plainly_without_claiming_nothing_was_sent() {
        let io = |kind: std::io::ErrorKind| Box::new(std::io::Error::from(kind));
        // How the connector reports hyper's "connection closed before message completed".
        let incomplete = ConnectorError::other(
            "client error (SendRequest): connection closed before message completed".into(),
            Some(ErrorKind::TransientError),
        );
        let closed =
            "RunInstances: the connection was closed before an answer came; the request may have been carried out";
        let cases = [
            (incomplete, closed),
            (ConnectorError::io(io(std::io::ErrorKind::ConnectionReset)), closed),
            (ConnectorError::io(io(std::io::ErrorKind::ConnectionRefused)), "RunInstances: the connection was refused"),
            (
                ConnectorError::timeout("connect timed out".into()),
                "RunInstances: timed out waiting for an answer; the request may have been carried out",
            ),
            (
                ConnectorError::io(Box::new(std::io::Error::other("failed to lookup address information"))),
                "RunInstances: no answer: failed to lookup address information",
            ),
        ];
        for (error, want) in cases {
            assert_eq!(dispatch(error), (ErrorClass::Unreachable, want.to_owned()));
        }
    }

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
            ("DBInstanceNotFound", ErrorClass::NotFound),
            ("DBInstanceNotFoundFault", ErrorClass::NotFound),
            ("DBInstanceAlreadyExists", ErrorClass::Conflict),
            ("DBInstanceAlreadyExistsFault", ErrorClass::Conflict),
            ("InvalidDBInstanceState", ErrorClass::Conflict),
            ("InvalidDBInstanceStateFault", ErrorClass::Conflict),
            ("DBSubnetGroupNotFoundFault", ErrorClass::Invalid),
            ("DBParameterGroupNotFound", ErrorClass::Invalid),
            ("KMSKeyNotAccessibleFault", ErrorClass::Invalid),
            ("ValidationError", ErrorClass::Invalid),
            ("SomethingElse", ErrorClass::Invalid),
        ];
        for (code, class) in cases {
            assert_eq!(classify_code(Some(code), Some(400)), class, "{code}");
        }
        // Codes not listed fall back on core's one status table.
        assert_eq!(classify_code(Some("InternalError"), Some(500)), ErrorClass::Failed);
        assert_eq!(classify_code(Some("SomethingElse"), Some(403)), ErrorClass::Denied);
        assert_eq!(classify_code(Some("SlowDown"), Some(503)), ErrorClass::Throttled);
        assert_eq!(classify_code(None, Some(404)), ErrorClass::NotFound);
        assert_eq!(classify_code(None, Some(429)), ErrorClass::Throttled);
        assert_eq!(classify_code(Some("Unknown"), Some(429)), ErrorClass::Throttled);
    }
}
