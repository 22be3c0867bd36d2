//! Builds AWS SDK configuration and clients, pointed at real AWS or at an emulator.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

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

/// An S3 client from `cfg`.
///
/// Emulators serve every bucket on one host, so they need path-style addressing
/// (`http://host/bucket/key`) instead of virtual-hosted buckets.
pub fn s3_client(cfg: &SdkConfig, path_style: bool) -> aws_sdk_s3::Client {
    let s3_config = aws_sdk_s3::config::Builder::from(cfg).force_path_style(path_style).build();
    aws_sdk_s3::Client::from_conf(s3_config)
}
