//! Turns kube errors into `ProviderError`s: the API server's status code and message, or
//! the network cause, never a debug dump of the client's error; and sends each API request
//! under the one retry policy.

use std::future::Future;
use std::io;

use drplan_core::provider::{ErrorClass, ProviderError, transient_status};
use drplan_retry::{Failure, RetryPolicy};

/// The class the engine decides on, from the API server's HTTP status: core's one table,
/// but for a gateway's failure.
pub fn class_of_status(code: u16) -> ErrorClass {
    match code {
        // The API server is up but cannot reach its backend in time.
        502..=504 => ErrorClass::Unreachable,
        _ => ErrorClass::of_status(code),
    }
}

/// Sends one API request (`request` sends it afresh for each attempt) under the retry
/// policy; the error is kube's own, for callers that read its status.
pub async fn send<T, F, Fut>(request: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    drplan_retry::run_with(&RetryPolicy::DEFAULT, failure_of, request).await
}

/// What `err` says about sending the request again.
pub fn failure_of(err: &kube::Error) -> Failure {
    match err {
        kube::Error::Api(status) if status.code == 429 => Failure::Throttled,
        kube::Error::Api(status) if transient_status(status.code) => Failure::Transient,
        kube::Error::HyperError(_) | kube::Error::Service(_) if drplan_retry::connect_failed(err) => {
            Failure::Unconnected
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => Failure::Transient,
        _ => Failure::Final,
    }
}

/// The HTTP status of an API error, if the server answered.
pub fn status_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// Classifies `err` and describes it in a few words: the server's message, or what went
/// wrong on the way to the server.
pub fn classify(err: &kube::Error) -> (ErrorClass, String) {
    match err {
        kube::Error::Api(status) => {
            let class = class_of_status(status.code);
            let text = if !status.message.is_empty() {
                status.message.clone()
            } else if !status.reason.is_empty() {
                status.reason.clone()
            } else {
                format!("HTTP {}", status.code)
            };
            (class, format!("{text} (HTTP {})", status.code))
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => (ErrorClass::Unreachable, network_cause(err)),
        kube::Error::Auth(_) => (ErrorClass::Denied, network_cause(err)),
        kube::Error::InferKubeconfig(e) => (ErrorClass::Unreachable, kubeconfig_cause(e)),
        kube::Error::InferConfig(e) => (ErrorClass::Unreachable, format!("no usable kubeconfig: {e}")),
        kube::Error::RustlsTls(_) | kube::Error::TlsRequired => (ErrorClass::Unreachable, network_cause(err)),
        kube::Error::SerdeError(e) => (ErrorClass::Failed, format!("unexpected response from the API server: {e}")),
        other => (ErrorClass::Failed, network_cause(other)),
    }
}

/// What is wrong with the kubeconfig, in the user's terms.
fn kubeconfig_cause(err: &kube::config::KubeconfigError) -> String {
    use kube::config::KubeconfigError as E;
    match err {
        E::LoadContext(name) => format!("no context `{name}` in the kubeconfig"),
        E::LoadClusterOfContext(name) => format!("the cluster of context `{name}` is not in the kubeconfig"),
        E::FindPath => "no kubeconfig found (set KUBECONFIG or create ~/.kube/config)".to_owned(),
        other => format!("kubeconfig: {other}"),
    }
}

/// The innermost cause of a transport error, in plain words for the common ones.
fn network_cause(err: &kube::Error) -> String {
    let mut kind = None;
    let mut innermost: &dyn std::error::Error = err;
    let mut current: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            kind = Some(io.kind());
        }
        innermost = e;
        current = e.source();
    }
    match kind {
        Some(io::ErrorKind::ConnectionRefused) => "connection refused".to_owned(),
        Some(io::ErrorKind::TimedOut) => "timed out".to_owned(),
        Some(io::ErrorKind::ConnectionReset) => "connection reset".to_owned(),
        _ => {
            let text = innermost.to_string();
            // tower's timeout layer reports a bare "elapsed".
            if text.contains("elapsed") { "timed out".to_owned() } else { text }
        }
    }
}

/// An error about `what` (e.g. "cronjob `x` in namespace `y` of context `z`").
pub fn provider_error(err: &kube::Error, what: &str) -> ProviderError {
    let (class, cause) = classify(err);
    ProviderError::new(class, format!("{what}: {cause}"))
}

/// Why a cluster counts as unreachable for a refresh, if `err` says it is: no answer, or
/// credentials it rejects (a cluster drplan cannot log in to is as unusable as a dead one).
pub fn unreachable_reason(err: &kube::Error, context: &str) -> Option<String> {
    let (class, cause) = classify(err);
    (class == ErrorClass::Unreachable || status_code(err) == Some(401)).then(|| format!("context `{context}`: {cause}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(Status::failure(message, "Reason").with_code(code).boxed())
    }

    #[test]
    fn statuses_map_to_the_engines_classes() {
        let cases = [
            (404, ErrorClass::NotFound),
            (403, ErrorClass::Denied),
            (401, ErrorClass::Denied),
            (409, ErrorClass::Conflict),
            (429, ErrorClass::Throttled),
            (422, ErrorClass::Invalid),
            (400, ErrorClass::Invalid),
            (503, ErrorClass::Unreachable),
            (500, ErrorClass::Failed),
        ];
        for (code, class) in cases {
            assert_eq!(classify(&api(code, "m")).0, class, "HTTP {code}");
        }
    }

    #[test]
    fn messages_name_the_object_and_the_servers_words() {
        let e = provider_error(
            &api(422, "CronJob.batch \"drplan-backup-db\" is invalid: spec.schedule: Invalid value"),
            "cronjob `drplan-backup-db` in namespace `ns` of context `c`",
        );
        assert_eq!(e.class, ErrorClass::Invalid);
        assert_eq!(
            e.message,
            "cronjob `drplan-backup-db` in namespace `ns` of context `c`: CronJob.batch \"drplan-backup-db\" is \
             invalid: spec.schedule: Invalid value (HTTP 422)"
        );
    }

    #[test]
    fn bad_credentials_and_dead_clusters_are_unreachable_but_a_denied_list_is_not() {
        assert_eq!(
            unreachable_reason(&api(401, "Unauthorized"), "euw1").as_deref(),
            Some("context `euw1`: Unauthorized (HTTP 401)")
        );
        assert_eq!(unreachable_reason(&api(403, "forbidden"), "euw1"), None);
        assert_eq!(
            unreachable_reason(
                &kube::Error::InferKubeconfig(kube::config::KubeconfigError::LoadContext("x".into())),
                "x"
            )
            .as_deref(),
            Some("context `x`: no context `x` in the kubeconfig")
        );
    }
}
