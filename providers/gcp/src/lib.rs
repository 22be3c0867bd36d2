//! GCP provider: Compute Engine instances of the compute pools and Cloud Storage backup buckets.
//!
//! Compute Engine is reached through Google's `google-cloud-compute-v1` client, which speaks
//! REST. Cloud Storage is spoken as JSON over REST directly (see [`api`]): the Cloud Storage
//! clients Google publishes for Rust are gRPC, which emulators such as gcplocal do not speak.
//! Errors of both are classified by the same `reason` codes, and both share one bounded
//! retry loop. Credentials come from `google-cloud-auth`.

mod api;
mod buckets;
pub mod client;
mod instances;
pub mod names;
mod points;

use std::collections::BTreeMap;

use drplan_core::config::{Cloud, Config};
use drplan_core::plan::resource::{Attrs, Kind, Value};
use drplan_core::plan::{Action, Observed, Resource, Snapshot};
use drplan_core::provider::{ApplyRequest, ErrorClass, Provider, ProviderError, RefreshRequest, cloud_of};
use drplan_core::recovery::PointContents;
use futures::future::join_all;

pub use api::Limits;
pub use client::instances_client;

const COMPUTE_ENDPOINT: &str = "https://compute.googleapis.com";
const STORAGE_ENDPOINT: &str = "https://storage.googleapis.com";

/// Manages `Kind::Instance` and `Kind::Bucket` objects whose cloud is `gcp`.
pub struct GcpProvider {
    api: api::Api,
    /// Compute Engine instances, through Google's client (which never retries on its own:
    /// [`api::Api::retrying`], the one retry executor, does, so both APIs are retried alike).
    instances: google_cloud_compute_v1::client::Instances,
    /// Compute Engine zone operations, polled until an instance change is done.
    operations: google_cloud_compute_v1::client::ZoneOperations,
    /// The Compute Engine endpoint's host, named in errors of requests that never got an answer.
    compute_host: String,
    /// `<endpoint>/storage/v1`.
    storage: String,
    /// The Google Cloud project (not drplan's project, which only labels objects).
    gcp_project: String,
    /// Each GCP region's zone (its `location`), by drplan region name.
    zones: BTreeMap<String, String>,
    /// Each GCP region's pool names, to give back the exact name a sanitized label stands for.
    pools: BTreeMap<String, Vec<String>>,
}

impl GcpProvider {
    /// Builds the provider from the configuration's `provider "gcp"` block.
    pub async fn new(config: &Config) -> Result<GcpProvider, ProviderError> {
        GcpProvider::with_limits(config, Limits::default()).await
    }

    /// As [`GcpProvider::new`], with other retry and operation time limits.
    pub async fn with_limits(config: &Config, limits: Limits) -> Result<GcpProvider, ProviderError> {
        let block = config.gcp.as_ref().ok_or_else(|| {
            ProviderError::new(ErrorClass::Invalid, "the configuration has no provider \"gcp\" block")
        })?;
        let credentials = if block.anonymous {
            google_cloud_auth::credentials::anonymous::Builder::new().build()
        } else {
            google_cloud_auth::credentials::Builder::default().build().map_err(|e| {
                ProviderError::new(
                    ErrorClass::Denied,
                    format!("cannot load Google Cloud application default credentials: {e}"),
                )
            })?
        };
        let base = |default: &str| block.endpoint.as_deref().unwrap_or(default).trim_end_matches('/').to_string();
        let mut zones = BTreeMap::new();
        let mut pools = BTreeMap::new();
        for region in config.regions.iter().filter(|r| r.cloud == Cloud::Gcp) {
            if let Some(zone) = &region.location {
                zones.insert(region.name.clone(), zone.clone());
            }
            pools.insert(region.name.clone(), region.compute.iter().map(|p| p.name.clone()).collect());
        }
        let compute = base(COMPUTE_ENDPOINT);
        let compute_host = reqwest::Url::parse(&compute)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| compute.clone());
        let (instances, operations) = client::compute_clients(&compute, credentials.clone()).await.map_err(|e| {
            ProviderError::new(ErrorClass::Failed, format!("cannot build the Compute Engine client: {e}"))
        })?;
        Ok(GcpProvider {
            api: api::Api::new(credentials, limits)?,
            instances,
            operations,
            compute_host,
            storage: format!("{}/storage/v1", base(STORAGE_ENDPOINT)),
            gcp_project: block.project.clone(),
            zones,
            pools,
        })
    }

    /// HTTP requests sent so far (retries included).
    pub fn api_calls(&self) -> u64 {
        self.api.calls()
    }

    fn zone_of(&self, region: &str) -> Result<&str, ProviderError> {
        self.zones.get(region).map(String::as_str).ok_or_else(|| {
            ProviderError::new(
                ErrorClass::Invalid,
                format!("region {region} is not a GCP region with a location (zone)"),
            )
        })
    }
}

pub(crate) fn attr_str<'a>(attrs: &'a Attrs, name: &str) -> Option<&'a str> {
    match attrs.get(name) {
        Some(Value::Str(s)) => Some(s),
        _ => None,
    }
}

pub(crate) fn attr_int(attrs: &Attrs, name: &str) -> Option<i64> {
    match attrs.get(name) {
        Some(Value::Int(i)) => Some(*i),
        _ => None,
    }
}

impl Provider for GcpProvider {
    fn name(&self) -> &str {
        "gcp"
    }

    fn manages(&self, kind: Kind, cloud: Option<&str>) -> bool {
        use drplan_core::plan::step::{Family, performed_by};
        [Family::Compute, Family::Storage].into_iter().any(|f| performed_by(kind, f, Some("gcp"), cloud))
    }

    async fn refresh(&self, request: &RefreshRequest<'_>) -> Result<Snapshot, ProviderError> {
        let regions: Vec<&String> = request.regions.iter().filter(|r| self.zones.contains_key(*r)).collect();
        let region_reads = join_all(regions.iter().map(|r| self.refresh_region(request.project, r)));
        let bucket_reads = join_all(
            request
                .desired
                .iter()
                .filter(|d| d.kind == Kind::Bucket && d.str("cloud") == Some("gcp"))
                .map(|d| self.refresh_bucket(d)),
        );
        let (region_results, bucket_results) = futures::join!(region_reads, bucket_reads);
        let mut snapshot = Snapshot::default();
        for (region, result) in regions.iter().zip(region_results) {
            match result {
                Ok(objects) => {
                    for o in objects {
                        snapshot.objects.insert(o.resource.address.clone(), o);
                    }
                }
                Err(e) if e.class == ErrorClass::Unreachable => {
                    snapshot.unreachable.insert((*region).clone(), e.message.lines().next().unwrap_or("").to_string());
                }
                Err(e) => return Err(e),
            }
        }
        let buckets = request.desired.iter().filter(|d| d.kind == Kind::Bucket && d.str("cloud") == Some("gcp"));
        for (desired, result) in buckets.zip(bucket_results) {
            let (observed, age) = match result {
                Ok(r) => r,
                // Cloud Storage down (or this bucket's location): the bucket is reported and
                // the rest of the refresh, other clouds included, goes on.
                Err(e) if e.class == ErrorClass::Unreachable => {
                    let why = e.message.lines().next().unwrap_or("").to_string();
                    snapshot.unreachable_objects.insert(desired.address.clone(), why);
                    continue;
                }
                Err(e) => return Err(e.at(&desired.address)),
            };
            if let Some(o) = observed {
                if let Some(age) = age {
                    snapshot.newest_backup_age.insert(o.resource.address.clone(), age);
                }
                snapshot.objects.insert(o.resource.address.clone(), o);
            }
        }
        Ok(snapshot)
    }

    async fn apply(&self, request: &ApplyRequest<'_>) -> Result<Option<Observed>, ProviderError> {
        drplan_retry::applying(self.apply_change(request)).await
    }

    async fn list_points(&self, bucket: &Resource) -> Result<(Vec<String>, u32), ProviderError> {
        self.points_of(bucket).await.map_err(|e| if e.address.is_none() { e.at(&bucket.address) } else { e })
    }

    async fn read_point(
        &self,
        bucket: &Resource,
        point: &str,
        manifest: Option<&str>,
    ) -> Result<PointContents, ProviderError> {
        let read = self.point_of(bucket, point, manifest).await;
        read.map_err(|e| if e.address.is_none() { e.at(&bucket.address) } else { e })
    }
}

impl GcpProvider {
    /// [`Provider::apply`], its requests sent in the apply phase of the retry policy.
    async fn apply_change(&self, request: &ApplyRequest<'_>) -> Result<Option<Observed>, ProviderError> {
        let change = request.change;
        let address = change.address.as_str();
        if !self.manages(change.kind, cloud_of(change)) {
            return Err(ProviderError::new(ErrorClass::Invalid, format!("gcp does not manage this {}", change.kind))
                .at(address));
        }
        let result = match (change.kind, change.action) {
            (Kind::Instance, Action::Create) => self.create_instance(request).await.map(Some),
            (Kind::Instance, Action::Replace) => self.replace_instance(request).await.map(Some),
            (Kind::Instance, Action::Update) => self.update_instance(request).await.map(Some),
            (Kind::Instance, Action::Delete) => self.delete_instance(request).await.map(|()| None),
            (Kind::Instance, Action::Adopt) => self.adopt_instance(request).await.map(Some),
            (Kind::Bucket, Action::Create) => self.create_bucket(request).await.map(Some),
            (Kind::Bucket, Action::Replace) => self.replace_bucket(request).await.map(Some),
            (Kind::Bucket, Action::Update) => self.update_bucket(request).await.map(Some),
            (Kind::Bucket, Action::Delete) => self.delete_bucket(request).await.map(|()| None),
            (Kind::Bucket, Action::Adopt) => self.adopt_bucket(request).await.map(Some),
            _ => Err(ProviderError::new(ErrorClass::Invalid, format!("gcp does not manage {}", change.kind))),
        };
        result.map_err(|e| if e.address.is_none() { e.at(address) } else { e })
    }
}
