//! Builds AWS SDK configuration and clients, pointed at real AWS or at an emulator.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction, RetryClassifierPriority};

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

/// `cfg` with drplan's retry and timeout policy: throttling and transient failures are
/// retried a bounded number of times with jittered exponential backoff (the SDK's standard
/// mode), and a region that does not answer fails within seconds instead of hanging a plan.
pub fn with_policy(cfg: &SdkConfig) -> SdkConfig {
    cfg.to_builder()
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(4)
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(Duration::from_secs(5)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(30))
                .operation_timeout(Duration::from_secs(90))
                .build(),
        )
        .build()
}

/// A connection that could not be made (refused, or not accepted within the connect
/// timeout) is not retried: the region is down, and each retry would cost another connect
/// timeout to every refresh, holding up the regions that answer. One try, then the region
/// is reported unreachable. A connection dropped once made (a reset, an answer cut short)
/// is still retried as transient. Runs after the SDK's own classifiers, overriding them.
#[derive(Debug, Default)]
pub struct NoRetryOnConnectFailure;

impl ClassifyRetry for NoRetryOnConnectFailure {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let Some(Err(error)) = ctx.output_or_error() else { return RetryAction::NoActionIndicated };
        match error.as_connector_error() {
            Some(e) if is_connect_failure(e) => RetryAction::RetryForbidden,
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "drplan: no retry on connect failures"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

/// Whether the error says no connection was made: the connect timeout ("HTTP connect
/// timeout occurred after 3s"), or a connect refused or unroutable by the OS.
pub fn is_connect_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind;
    let mut next = Some(e);
    while let Some(err) = next {
        if err.to_string().starts_with("HTTP connect timeout") {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                ErrorKind::ConnectionRefused | ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable
            )
        {
            return true;
        }
        next = err.source();
    }
    false
}

/// An S3 client from `cfg`.
///
/// Emulators serve every bucket on one host, so they need path-style addressing
/// (`http://host/bucket/key`) instead of virtual-hosted buckets.
pub fn s3_client(cfg: &SdkConfig, path_style: bool) -> aws_sdk_s3::Client {
    let s3_config = aws_sdk_s3::config::Builder::from(cfg).force_path_style(path_style).build();
    aws_sdk_s3::Client::from_conf(s3_config)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_config::{BehaviorVersion, Region};
    use aws_sdk_ec2::config::interceptors::BeforeTransmitInterceptorContextRef;
    use aws_sdk_ec2::config::{ConfigBag, Credentials, Intercept, RuntimeComponents, SharedCredentialsProvider};
    use aws_smithy_runtime_api::box_error::BoxError;

    use super::{NoRetryOnConnectFailure, with_policy};

    /// Counts the attempts the SDK makes, retries included.
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
        let config = aws_sdk_ec2::config::Builder::from(&with_policy(&base))
            .retry_classifier(NoRetryOnConnectFailure)
            .interceptor(Attempts(count.clone()))
            .build();
        let result = aws_sdk_ec2::Client::from_conf(config).describe_instances().send().await;
        assert!(result.is_err());
        count.load(Ordering::SeqCst)
    }

    /// A refused connection costs one attempt: the region is down, and retrying would hold
    /// up every refresh by as much again.
    #[tokio::test]
    async fn a_refused_connection_is_not_retried() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap();
        assert_eq!(attempts_against(format!("http://127.0.0.1:{port}")).await, 1);
    }

    /// A connection accepted and then closed without an answer is transient: retried to the
    /// policy's four attempts.
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
        assert_eq!(attempts_against(url).await, 4);
    }
}
