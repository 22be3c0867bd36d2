//! Builds Google Cloud clients, pointed at real Google Cloud or at an emulator.

use google_cloud_compute_v1::client::Instances;

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
