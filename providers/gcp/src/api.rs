//! The JSON/REST transport of Cloud Storage, the retry policy's executor wrapped around it
//! and around the Compute Engine SDK, and the classification of Google API errors.
//!
//! Both APIs report failures the same way (`{"error": {"code", "message", "status",
//! "errors": [{"reason"}]}}`), and the `reason` is what separates a rate limit from a
//! permission problem behind the same 403, so errors read directly (Cloud Storage) and
//! errors handed back by the Compute Engine SDK are classified by the same rules.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use drplan_core::provider::{ErrorClass, ProviderError};
use drplan_retry::RetryPolicy;
use google_cloud_auth::credentials::{CacheableResource, Credentials};
use reqwest::Method;
use serde_json::Value as Json;

/// How a request is retried and how long an operation may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How throttled and transiently failing calls are retried (core's one policy).
    pub retry: RetryPolicy,
    /// How long a zone operation may run before apply gives up on it.
    pub operation_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { retry: RetryPolicy::DEFAULT, operation_timeout: Duration::from_secs(300) }
    }
}

pub struct Api {
    http: reqwest::Client,
    credentials: Credentials,
    pub limits: Limits,
    /// HTTP requests sent, retries included, so the cost of a refresh can be measured.
    calls: AtomicU64,
}

/// A successful answer's JSON body (`Null` when empty).
pub struct Reply {
    pub body: Json,
}

impl Api {
    pub fn new(credentials: Credentials, limits: Limits) -> Result<Api, ProviderError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ProviderError::new(ErrorClass::Failed, format!("cannot build the HTTP client: {e}")))?;
        Ok(Api { http, credentials, limits, calls: AtomicU64::new(0) })
    }

    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    async fn auth_headers(&self) -> Result<http::HeaderMap, ProviderError> {
        match self.credentials.headers(http::Extensions::new()).await {
            Ok(CacheableResource::New { data, .. }) => Ok(data),
            // Only returned when an entity tag is passed in, which this never does.
            Ok(CacheableResource::NotModified) => Ok(http::HeaderMap::new()),
            Err(e) => {
                Err(ProviderError::new(ErrorClass::Denied, format!("cannot obtain Google Cloud credentials: {e}")))
            }
        }
    }

    /// Counts one request sent by a client that is not this transport (the Compute Engine
    /// SDK), so [`Api::calls`] stays the cost of everything a refresh or apply did.
    pub fn count(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Sends one request, retrying throttled and transient failures within the retry budget.
    /// `what` names the object for error messages.
    pub async fn call(
        &self,
        method: Method,
        url: &str,
        query: &[(&str, String)],
        body: Option<&Json>,
        what: &str,
    ) -> Result<Reply, ProviderError> {
        self.retrying(|| self.once(method.clone(), url, query, body, what)).await
    }

    /// Runs `attempt` until it succeeds or fails for good, under the retry policy: the one
    /// executor every provider uses, here for both Google APIs.
    pub async fn retrying<T, F, Fut>(&self, attempt: F) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        drplan_retry::run(&self.limits.retry, attempt).await
    }

    async fn once(
        &self,
        method: Method,
        url: &str,
        query: &[(&str, String)],
        body: Option<&Json>,
        what: &str,
    ) -> Result<Reply, ProviderError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut request = self.http.request(method.clone(), url).headers(self.auth_headers().await?);
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| transport_error(&e, &method, url, what))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| transport_error(&e, &method, url, what))?;
        let body: Json =
            if bytes.is_empty() { Json::Null } else { serde_json::from_slice(&bytes).unwrap_or(Json::Null) };
        if (200..300).contains(&status) {
            return Ok(Reply { body });
        }
        Err(classify(status, &body, &bytes, what))
    }
}

impl Api {
    /// Downloads an object's content (`alt=media`), refusing more than `limit` bytes: the
    /// answer is bytes, not the JSON [`Api::call`] reads. Retried like every call.
    pub async fn media(&self, url: &str, limit: u64, what: &str) -> Result<Vec<u8>, ProviderError> {
        self.retrying(|| async {
            self.calls.fetch_add(1, Ordering::Relaxed);
            let query = [("alt", "media")];
            let request = self.http.get(url).headers(self.auth_headers().await?).query(&query);
            let mut response = request.send().await.map_err(|e| transport_error(&e, &Method::GET, url, what))?;
            let status = response.status().as_u16();
            let too_large = |n: u64| {
                ProviderError::new(ErrorClass::Invalid, format!("{what} is {n} bytes, more than {limit}: not read"))
            };
            if (200..300).contains(&status)
                && let Some(n) = response.content_length().filter(|n| *n > limit)
            {
                return Err(too_large(n));
            }
            let mut bytes = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| transport_error(&e, &Method::GET, url, what))? {
                bytes.extend_from_slice(&chunk);
                if bytes.len() as u64 > limit && (200..300).contains(&status) {
                    return Err(too_large(bytes.len() as u64));
                }
            }
            if (200..300).contains(&status) {
                return Ok(bytes);
            }
            let body: Json = serde_json::from_slice(&bytes).unwrap_or(Json::Null);
            Err(classify(status, &body, &bytes, what))
        })
        .await
    }
}

fn transport_error(e: &reqwest::Error, method: &Method, url: &str, what: &str) -> ProviderError {
    // The error's Display stops at the first layer; its sources say "connection refused".
    let mut cause = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = format!("{cause}: {s}");
        source = s.source();
    }
    let class =
        if e.is_connect() || e.is_timeout() || e.is_request() { ErrorClass::Unreachable } else { ErrorClass::Failed };
    let host = reqwest::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
    let error = ProviderError::new(class, format!("{what}: {method} to {host} failed: {cause}"));
    // A connection lost once made is worth another attempt; one never made is not, during a
    // refresh (the region may be lost).
    if drplan_retry::connect_failed(e) { error } else { error.transient() }
}

/// The `error` object's code, message and first reason.
fn error_parts(body: &Json) -> (String, Option<String>, Option<String>) {
    let err = &body["error"];
    let message = err["message"].as_str().map(str::to_string).unwrap_or_default();
    let reason = err["errors"][0]["reason"].as_str().map(str::to_string);
    let status = err["status"].as_str().map(str::to_string);
    (message, reason, status)
}

/// Turns an HTTP error answer into the engine's terms.
pub fn classify(status: u16, body: &Json, raw: &[u8], what: &str) -> ProviderError {
    let (message, reason, api_status) = error_parts(body);
    let message = if message.is_empty() {
        String::from_utf8_lossy(&raw[..raw.len().min(200)]).trim().to_string()
    } else {
        message
    };
    classify_parts(status, message, reason, api_status.as_deref(), what)
}

/// Turns an error of the Compute Engine SDK into the engine's terms: the HTTP status, the
/// `reason` of the legacy `errors` array (the SDK keeps it as an `ErrorInfo` detail) and the
/// canonical status name classify it exactly as [`classify`] does an answer read directly.
/// `host` names where the request went, for errors that never reached the service.
pub fn classify_sdk(e: &google_cloud_gax::error::Error, host: &str, what: &str) -> ProviderError {
    use google_cloud_gax::error::rpc::{Code, StatusDetails};
    if let Some(status) = e.http_status_code() {
        let (message, reason, api_status) = match e.status() {
            Some(s) => {
                let reason = s.details.iter().find_map(|d| match d {
                    StatusDetails::ErrorInfo(info) if !info.reason.is_empty() => Some(info.reason.clone()),
                    _ => None,
                });
                let api_status = (s.code != Code::Unknown).then(|| s.code.name().to_string());
                (s.message.clone(), reason, api_status)
            }
            None => {
                let raw = e.http_payload().map(|b| b.to_vec()).unwrap_or_default();
                (String::from_utf8_lossy(&raw[..raw.len().min(200)]).trim().to_string(), None, None)
            }
        };
        return classify_parts(status, message, reason, api_status.as_deref(), what);
    }
    // The error's Display stops at the first layer or two; its sources say "connection refused".
    let mut cause = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !cause.contains(&text) {
            cause = format!("{cause}: {text}");
        }
        source = s.source();
    }
    let cause = cause.replace('\n', " ");
    let class = if e.is_authentication() {
        ErrorClass::Denied
    } else if e.is_connect() || e.is_timeout() || e.is_io() {
        ErrorClass::Unreachable
    } else {
        ErrorClass::Failed
    };
    let error = ProviderError::new(class, format!("{what}: request to {host} failed: {cause}"));
    if class == ErrorClass::Denied || drplan_retry::connect_failed(e) { error } else { error.transient() }
}

fn classify_parts(
    status: u16,
    message: String,
    reason: Option<String>,
    api_status: Option<&str>,
    what: &str,
) -> ProviderError {
    // Google's own reading of a 403 (the `reason` separates a rate limit from a missing
    // permission); every other status goes by core's one table.
    let class = match (status, reason.as_deref().unwrap_or("")) {
        (403, "rateLimitExceeded" | "userRateLimitExceeded") => Some(ErrorClass::Throttled),
        // A project quota does not lift by waiting a few seconds: the request must change.
        (403, "quotaExceeded") => Some(ErrorClass::Invalid),
        (403, _) if api_status == Some("RESOURCE_EXHAUSTED") => Some(ErrorClass::Throttled),
        _ => None,
    };
    let detail = match &reason {
        Some(r) => format!("{r}: {message}"),
        None => message,
    };
    ProviderError::from_status(class, status, format!("{what}: HTTP {status}: {detail}"))
}

/// Classifies the first error of a finished Compute Engine operation (its `code` and
/// `message`).
pub fn operation_error(code: &str, message: &str, what: &str) -> ProviderError {
    let class = match code {
        "QUOTA_EXCEEDED"
        | "ZONE_RESOURCE_POOL_EXHAUSTED"
        | "INVALID_ARGUMENT"
        | "INVALID_FIELD_VALUE"
        | "RESOURCE_NOT_READY" => ErrorClass::Invalid,
        "RESOURCE_NOT_FOUND" => ErrorClass::Invalid,
        "RESOURCE_ALREADY_EXISTS" => ErrorClass::Conflict,
        "PERMISSION_DENIED" | "FORBIDDEN" => ErrorClass::Denied,
        "RATE_LIMIT_EXCEEDED" => ErrorClass::Throttled,
        _ => ErrorClass::Failed,
    };
    ProviderError::new(class, format!("{what}: operation failed with {code}: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: u16, reason: &str, status: &str) -> Json {
        serde_json::json!({"error": {"code": code, "message": "m", "status": status, "errors": [{"reason": reason}]}})
    }

    #[test]
    fn google_errors_are_classified_by_reason() {
        let c = |s, b: Json| classify(s, &b, b"", "x").class;
        assert_eq!(c(403, err(403, "rateLimitExceeded", "")), ErrorClass::Throttled);
        assert_eq!(c(403, err(403, "userRateLimitExceeded", "")), ErrorClass::Throttled);
        assert_eq!(c(429, err(429, "rateLimitExceeded", "RESOURCE_EXHAUSTED")), ErrorClass::Throttled);
        assert_eq!(c(403, err(403, "forbidden", "PERMISSION_DENIED")), ErrorClass::Denied);
        assert_eq!(c(400, err(400, "invalid", "INVALID_ARGUMENT")), ErrorClass::Invalid);
        assert_eq!(c(404, err(404, "notFound", "NOT_FOUND")), ErrorClass::NotFound);
        assert_eq!(c(409, err(409, "alreadyExists", "ALREADY_EXISTS")), ErrorClass::Conflict);
        let e = classify(403, &err(403, "forbidden", ""), b"", "bucket b");
        assert_eq!(e.message, "bucket b: HTTP 403: forbidden: m");
        let unavailable = classify(503, &err(503, "backendError", "UNAVAILABLE"), b"", "bucket b");
        assert_eq!((unavailable.class, unavailable.transient), (ErrorClass::Failed, true));
        assert_eq!(unavailable.message, "bucket b: HTTP 503: backendError: m");
        let q = operation_error("QUOTA_EXCEEDED", "CPUS", "instance i");
        assert_eq!(
            (q.class, q.message),
            (ErrorClass::Invalid, "instance i: operation failed with QUOTA_EXCEEDED: CPUS".into())
        );
    }
}
