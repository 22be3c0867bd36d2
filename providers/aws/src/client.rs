//! Builds AWS SDK configuration and clients, pointed at real AWS or at an emulator.

use std::time::Duration;

use std::future::Future;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::config::http::HttpResponse;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use drplan_core::provider::ProviderError;
use drplan_retry::RetryPolicy;

use crate::error::sdk_error;

/// Loads the shared SDK configuration for `region`.
///
/// `endpoint` overrides every service's endpoint, which is how tests and demos reach
/// a local emulator. Without it aws-config still honours `AWS_ENDPOINT_URL` and the
/// usual credential chain (environment, profiles, SSO, instance metadata).
pub async fn sdk_config(endpoint: Option<&str>, region: &str) -> SdkConfig {
    load(endpoint, None, region).await
}

/// Like [`sdk_config`], reading credentials from the named `profile` when there is one.
pub async fn load(endpoint: Option<&str>, profile: Option<&str>, region: &str) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region.to_owned()));
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    if let Some(profile) = profile {
        loader = loader.profile_name(profile);
    }
    loader.load().await
}

/// `cfg` with drplan's timeouts and the SDK's own retries switched off: every request is
/// retried by [`send`] under core's one [`RetryPolicy`] instead, so Route 53's pacing applies
/// to every attempt and retries never stack. A region that does not answer fails within
/// seconds instead of hanging a plan.
pub fn with_policy(cfg: &SdkConfig) -> SdkConfig {
    cfg.to_builder()
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(30))
                .operation_timeout(Duration::from_secs(90))
                .build(),
        )
        .build()
}

/// Sends one request (`request` builds and sends it afresh for each attempt) under
/// `policy`, its error turned into a [`ProviderError`] for `operation`.
pub async fn send<T, E, F, Fut>(policy: &RetryPolicy, operation: &str, request: F) -> Result<T, ProviderError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    drplan_retry::run(policy, || async { request().await.map_err(|e| sdk_error(operation, &e)) }).await
}

/// An S3 client from `cfg`.
///
/// Emulators serve every bucket on one host, so they need path-style addressing
/// (`http://host/bucket/key`) instead of virtual-hosted buckets.
pub fn s3_client(cfg: &SdkConfig, path_style: bool) -> aws_sdk_s3::Client {
    let s3_config = aws_sdk_s3::config::Builder::from(cfg).force_path_style(path_style).build();
    aws_sdk_s3::Client::from_conf(s3_config)
}

/// Reads one HTTP request off `stream` (headers, then the body its Content-Length
/// announces), for the tests' canned servers that answer it.
#[cfg(test)]
pub(crate) fn read_request(stream: &std::net::TcpStream) -> Vec<u8> {
    use std::io::{BufRead, BufReader, Read};
    let mut reader = BufReader::new(stream);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    body
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_config::{BehaviorVersion, Region};
    use aws_sdk_ec2::config::interceptors::BeforeTransmitInterceptorContextRef;
    use aws_sdk_ec2::config::{ConfigBag, Credentials, Intercept, RuntimeComponents, SharedCredentialsProvider};
    use aws_smithy_runtime_api::box_error::BoxError;
    use drplan_retry::RetryPolicy;

    use super::{send, with_policy};

    /// Counts the attempts sent, retries included.
    #[derive(Debug)]
    struct Attempts(Arc<AtomicUsize>);

    impl Intercept for Attempts {
        fn name(&self) -> &'static str {
            "attempts"
        }

        fn read_before_transmit(
            &self,
            _: &BeforeTransmitInterceptorContextRef<'_>,
            _: &RuntimeComponents,
            _: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    async fn attempts_against(endpoint: String) -> usize {
        let base = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new("t", "t", None, None, "test")))
            .build();
        let count = Arc::new(AtomicUsize::new(0));
        let config =
            aws_sdk_ec2::config::Builder::from(&with_policy(&base)).interceptor(Attempts(count.clone())).build();
        let client = aws_sdk_ec2::Client::from_conf(config);
        let result = send(&RetryPolicy::DEFAULT, "DescribeInstances", || client.describe_instances().send()).await;
        assert!(result.is_err());
        count.load(Ordering::SeqCst)
    }

    /// A refused connection costs one attempt: the region is down, and retrying would hold
    /// up every refresh by as much again. The SDK adds none of its own.
    #[tokio::test]
    async fn a_refused_connection_is_not_retried() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap();
        assert_eq!(attempts_against(format!("http://127.0.0.1:{port}")).await, 1);
    }

    /// A connection accepted and then closed without an answer is transient: retried to the
    /// policy's maximum, and not one attempt more (the SDK's own retries are off).
    #[tokio::test]
    async fn a_connection_dropped_after_connecting_is_retried() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            use std::io::Read;
            for mut s in listener.incoming().flatten() {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                drop(s);
            }
        });
        assert_eq!(attempts_against(url).await, RetryPolicy::DEFAULT.max_attempts as usize);
    }
}
