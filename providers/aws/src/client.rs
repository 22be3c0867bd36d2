//! Builds AWS SDK configuration and clients, pointed at real AWS or at an emulator.

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Loads the shared SDK configuration for `region`.
///
/// `endpoint` overrides every service's endpoint, which is how tests and demos reach
/// a local emulator. Without it aws-config still honours `AWS_ENDPOINT_URL` and the
/// usual credential chain (environment, profiles, SSO, instance metadata).
pub async fn sdk_config(endpoint: Option<&str>, region: &str) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region.to_owned()));
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// An S3 client from `cfg`.
///
/// Emulators serve every bucket on one host, so they need path-style addressing
/// (`http://host/bucket/key`) instead of virtual-hosted buckets.
pub fn s3_client(cfg: &SdkConfig, path_style: bool) -> aws_sdk_s3::Client {
    let s3_config = aws_sdk_s3::config::Builder::from(cfg).force_path_style(path_style).build();
    aws_sdk_s3::Client::from_conf(s3_config)
}
