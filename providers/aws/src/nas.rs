//! A NAS reached through its S3-compatible endpoint (MinIO, TrueNAS): its recovery points
//! listed and read exactly as an S3 destination's ([`crate::points`]), with a client of its
//! own (the endpoint, path-style addressing, the standard credential chain).

use drplan_core::provider::ProviderError;
use drplan_core::recovery::PointContents;

use crate::{client, points};

/// One NAS bucket and prefix behind an S3-compatible endpoint.
pub struct NasStore {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// The prefix as a folder (`dr/`).
    prefix: String,
}

impl NasStore {
    pub async fn connect(endpoint: &str, region: &str, bucket: &str, prefix: &str) -> NasStore {
        let base = client::with_policy(&client::load(Some(endpoint), None, region).await);
        let conf = aws_sdk_s3::config::Builder::from(&base).force_path_style(true).build();
        let prefix = if prefix.is_empty() || prefix.ends_with('/') { prefix.to_owned() } else { format!("{prefix}/") };
        NasStore { client: aws_sdk_s3::Client::from_conf(conf), bucket: bucket.to_owned(), prefix }
    }

    /// The points' names and the listing calls made (see [`points::list_points`]).
    pub async fn list_points(&self) -> Result<(Vec<String>, u32), ProviderError> {
        points::list_points(&self.client, &self.bucket, &self.prefix).await
    }

    /// One point's objects and its manifest (see [`points::read_point`]).
    pub async fn read_point(&self, point: &str, manifest: Option<&str>) -> Result<PointContents, ProviderError> {
        points::read_point(&self.client, &self.bucket, &self.prefix, point, manifest).await
    }
}
