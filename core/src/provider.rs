//! The interface between the engine and a cloud: read everything in bulk, apply one change.
//!
//! Defined here so the engine can be written and tested against it; implemented by the
//! provider crates, which alone know SDKs. Async without a runtime: core only declares
//! the futures.

use std::future::Future;

use crate::plan::resource::Kind;
use crate::plan::{Change, Observed, Resource, Snapshot};

/// What went wrong, in the terms the engine decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The object is not there.
    NotFound,
    /// Rate limited: worth retrying after a pause.
    Throttled,
    /// The object exists in a way that conflicts (a name taken by another object).
    Conflict,
    /// Credentials lack a permission.
    Denied,
    /// The region's API or cluster could not be reached.
    Unreachable,
    /// The request itself is wrong (an invalid image, a quota exceeded).
    Invalid,
    /// Anything else.
    Failed,
}

impl ErrorClass {
    /// The class an HTTP status means when the service says nothing more specific: the one
    /// status table every provider falls back on after its own service codes.
    pub fn of_status(status: u16) -> ErrorClass {
        match status {
            404 | 410 => ErrorClass::NotFound,
            401 | 403 => ErrorClass::Denied,
            409 => ErrorClass::Conflict,
            429 => ErrorClass::Throttled,
            400 | 412 | 422 => ErrorClass::Invalid,
            _ => ErrorClass::Failed,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::NotFound => "not found",
            ErrorClass::Throttled => "throttled",
            ErrorClass::Conflict => "conflict",
            ErrorClass::Denied => "access denied",
            ErrorClass::Unreachable => "unreachable",
            ErrorClass::Invalid => "invalid request",
            ErrorClass::Failed => "failed",
        }
    }
}

/// Displays as `address: cause` (see [`ProviderError::cause`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}", address.as_ref().map(|a| format!("{a}: ")).unwrap_or_default(), self.cause())]
pub struct ProviderError {
    pub class: ErrorClass,
    pub message: String,
    /// The resource concerned, when there is one.
    pub address: Option<String>,
    /// The same request may succeed if sent again soon: a server error (5xx), or a
    /// connection lost after it was made. Such a request may have been carried out.
    pub transient: bool,
}

/// Whether an HTTP status says the server failed for now rather than for good: an internal
/// error, a bad gateway, a service unavailable or a gateway timeout.
pub fn transient_status(status: u16) -> bool {
    matches!(status, 500 | 502 | 503 | 504)
}

impl ProviderError {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> ProviderError {
        ProviderError { class, message: message.into(), address: None, transient: false }
    }

    /// An error of class `class` (the service's own reading), or of the status table's,
    /// marked transient when the status says so.
    pub fn from_status(class: Option<ErrorClass>, status: u16, message: impl Into<String>) -> ProviderError {
        let mut e = ProviderError::new(class.unwrap_or_else(|| ErrorClass::of_status(status)), message);
        e.transient = transient_status(status) && matches!(e.class, ErrorClass::Failed | ErrorClass::Unreachable);
        e
    }

    /// The same error, marked as worth sending again (see [`ProviderError::transient`]).
    pub fn transient(mut self) -> ProviderError {
        self.transient = true;
        self
    }

    pub fn at(mut self, address: &str) -> ProviderError {
        self.address = Some(address.to_string());
        self
    }

    /// The class and the message, without the address, for a line that names the resource
    /// already. The class word is left out when it is plain `failed`: every line showing an
    /// error says that already ("FAILED ...", "refresh failed: ...").
    pub fn cause(&self) -> String {
        match self.class {
            ErrorClass::Failed => self.message.clone(),
            class => format!("{}: {}", class.as_str(), self.message),
        }
    }
}

/// What a refresh reads.
#[derive(Debug, Clone)]
pub struct RefreshRequest<'a> {
    /// Objects carrying this project's tags or labels are drplan's.
    pub project: &'a str,
    /// The regions to read (a provider skips the ones it does not serve).
    pub regions: &'a [String],
    /// What the configuration wants, so a provider knows which buckets, records and health
    /// checks to look at without listing a whole account.
    pub desired: &'a [Resource],
}

/// One change to perform.
#[derive(Debug, Clone)]
pub struct ApplyRequest<'a> {
    pub project: &'a str,
    pub change: &'a Change,
    /// Stable for this plan and address across retries and crashes: EC2's `ClientToken`,
    /// GCE's `requestId`. See [`idempotency_token`].
    pub idempotency_token: &'a str,
}

/// What [`Provider::wait_ready`] waits for: the object a change just scaled up, ready to
/// serve within `timeout`.
pub struct ReadyRequest<'a> {
    pub project: &'a str,
    pub change: &'a Change,
    pub timeout: std::time::Duration,
    /// Called with a short progress line (`2/3 ready`) whenever it changes.
    pub progress: &'a (dyn Fn(String) + Send + Sync),
}

pub trait Provider: Send + Sync {
    /// A short name for messages (`aws`, `gcp`, `kubernetes`).
    fn name(&self) -> &str;

    /// Whether this provider manages objects of `kind` (on `cloud`, for kinds that exist in
    /// several clouds: instances and buckets).
    fn manages(&self, kind: Kind, cloud: Option<&str>) -> bool;

    /// Reads every object of the project this provider manages, in bulk. A region that cannot
    /// be reached goes into the snapshot's `unreachable` instead of failing the refresh.
    fn refresh(&self, request: &RefreshRequest<'_>) -> impl Future<Output = Result<Snapshot, ProviderError>> + Send;

    /// Performs one change; returns the object as it now exists, `None` after a delete.
    /// Creating what already exists (same identity or token) returns the existing object.
    fn apply(&self, request: &ApplyRequest<'_>)
    -> impl Future<Output = Result<Option<Observed>, ProviderError>> + Send;

    /// Waits until what `request.change` scaled up can serve (a Deployment's rollout is
    /// available), or fails with the reason it cannot. Kinds with nothing to wait for are
    /// ready at once.
    fn wait_ready(&self, request: &ReadyRequest<'_>) -> impl Future<Output = Result<(), ProviderError>> + Send {
        let _ = request;
        std::future::ready(Ok(()))
    }

    /// The recovery points of a backup destination: the names of the "folders" directly
    /// under its prefix (listed with a delimiter, so the cost grows with the number of
    /// points, not of objects), in any order, with the number of list calls it took.
    /// `bucket` is the destination's desired bucket resource (`cloud`, `bucket`, `prefix`).
    fn list_points(&self, bucket: &Resource) -> impl Future<Output = Result<(Vec<String>, u32), ProviderError>> + Send {
        let _ = bucket;
        std::future::ready(Err(ProviderError::new(ErrorClass::Invalid, "this provider holds no recovery points")))
    }

    /// The objects of point `point` under `bucket`'s prefix (names relative to the point's
    /// folder) and, when `manifest` names one that exists there, that object's content.
    fn read_point(
        &self,
        bucket: &Resource,
        point: &str,
        manifest: Option<&str>,
    ) -> impl Future<Output = Result<crate::recovery::PointContents, ProviderError>> + Send {
        let _ = (bucket, point, manifest);
        std::future::ready(Err(ProviderError::new(ErrorClass::Invalid, "this provider holds no recovery points")))
    }
}

/// The cloud a change's object lives in, when its kind exists in several.
pub fn cloud_of(change: &Change) -> Option<&str> {
    let attrs = change.after.as_ref().or(change.before.as_ref())?;
    match attrs.get("cloud")? {
        crate::plan::Value::Str(s) => Some(s),
        _ => None,
    }
}

/// A deterministic idempotency token for `address` in the plan identified by `plan_id`:
/// 32 hexadecimal characters, within EC2's 64-character `ClientToken` and GCE's UUID-like
/// `requestId` rules (formatted as a UUID there by the provider).
pub fn idempotency_token(plan_id: &str, address: &str) -> String {
    let hash = |seed: u64| {
        let mut h = seed;
        for b in plan_id.bytes().chain([0u8]).chain(address.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    };
    format!("{:016x}{:016x}", hash(0xcbf2_9ce4_8422_2325), hash(0x9e37_79b9_7f4a_7c15))
}

#[cfg(test)]
mod tests {
    use super::{ErrorClass, ProviderError, idempotency_token};

    #[test]
    fn errors_name_the_address_once_and_the_class_only_when_it_adds_something() {
        let failed = ProviderError::new(ErrorClass::Failed, "RunInstances: InternalError: try again").at("a.b[0]");
        assert_eq!(failed.to_string(), "a.b[0]: RunInstances: InternalError: try again");
        assert_eq!(failed.cause(), "RunInstances: InternalError: try again");
        let denied = ProviderError::new(ErrorClass::Denied, "RunInstances: UnauthorizedOperation");
        assert_eq!(denied.to_string(), "access denied: RunInstances: UnauthorizedOperation");
        assert_eq!(denied.cause(), denied.to_string());
    }

    #[test]
    fn the_status_table_classifies_and_marks_server_errors_transient() {
        use super::transient_status;
        let cases = [
            (404, ErrorClass::NotFound),
            (410, ErrorClass::NotFound),
            (401, ErrorClass::Denied),
            (403, ErrorClass::Denied),
            (409, ErrorClass::Conflict),
            (429, ErrorClass::Throttled),
            (400, ErrorClass::Invalid),
            (412, ErrorClass::Invalid),
            (422, ErrorClass::Invalid),
            (500, ErrorClass::Failed),
            (503, ErrorClass::Failed),
        ];
        for (status, class) in cases {
            assert_eq!(ErrorClass::of_status(status), class, "{status}");
        }
        assert!([500, 502, 503, 504].iter().all(|s| transient_status(*s)));
        assert!(![400, 404, 429, 501].iter().any(|s| transient_status(*s)));
        assert!(ProviderError::from_status(None, 503, "m").transient);
        // A service code that says throttled is retried as throttled, not as transient.
        let slow = ProviderError::from_status(Some(ErrorClass::Throttled), 503, "SlowDown");
        assert_eq!((slow.class, slow.transient), (ErrorClass::Throttled, false));
    }

    #[test]
    fn tokens_are_stable_and_distinct() {
        let a = idempotency_token("plan-1", "region.us-east-1.compute.nodes[0]");
        assert_eq!(a, idempotency_token("plan-1", "region.us-east-1.compute.nodes[0]"));
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, idempotency_token("plan-2", "region.us-east-1.compute.nodes[0]"));
        assert_ne!(a, idempotency_token("plan-1", "region.us-east-1.compute.nodes[1]"));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(idempotency_token("ab", "c"), idempotency_token("a", "bc"));
    }
}
