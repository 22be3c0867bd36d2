//! Builds Google Cloud clients, pointed at real Google Cloud or at an emulator.

use google_cloud_auth::credentials::Credentials;
use google_cloud_compute_v1::client::{Instances, ZoneOperations};
use google_cloud_gax::retry_policy::NeverRetry;

/// A Compute Engine `Instances` client.
///
/// `endpoint` replaces `https://compute.googleapis.com` (e.g. a local emulator's
/// base URL). `anonymous` sends no credentials at all, which emulators accept and
/// which avoids looking up Application Default Credentials that a test machine lacks.
pub async fn instances_client(
    endpoint: Option<&str>,
    anonymous: bool,
) -> Result<Instances, google_cloud_gax::client_builder::Error> {
    let mut builder = Instances::builder();
    if let Some(endpoint) = endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if anonymous {
        builder = builder.with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build());
    }
    builder.build().await
}

/// The `Instances` and `ZoneOperations` clients the provider uses, at `endpoint` with
/// `credentials`. They never retry on their own: the provider retries throttled and transient
/// failures itself, within its own budget, so a call is never retried twice over.
pub(crate) async fn compute_clients(
    endpoint: &str,
    credentials: Credentials,
) -> Result<(Instances, ZoneOperations), google_cloud_gax::client_builder::Error> {
    let instances = Instances::builder()
        .with_endpoint(endpoint)
        .with_credentials(credentials.clone())
        .with_retry_policy(NeverRetry)
        .build()
        .await?;
    let operations = ZoneOperations::builder()
        .with_endpoint(endpoint)
        .with_credentials(credentials)
        .with_retry_policy(NeverRetry)
        .build()
        .await?;
    Ok((instances, operations))
}
