//! The providers a configuration needs, acting as one: a refresh reads every cloud and
//! cluster concurrently and merges what they saw; a change goes to the provider that
//! manages its kind of object.

use drplan_core::config::{Cloud, Config, Target};
use drplan_core::plan::resource::Kind;
use drplan_core::plan::{Observed, Snapshot};
use drplan_core::provider::{
    ApplyRequest, ErrorClass, Provider, ProviderError, ReadyRequest, RefreshRequest, cloud_of,
};
use drplan_core::{Code, Diagnostic};
use drplan_provider_aws::AwsProvider;
use drplan_provider_gcp::GcpProvider;
use drplan_provider_kubernetes::KubernetesProvider;

pub struct Clouds {
    aws: Option<AwsProvider>,
    gcp: Option<GcpProvider>,
    kubernetes: Option<KubernetesProvider>,
}

/// Which clouds a configuration touches.
fn needs(config: &Config) -> (bool, bool, bool) {
    let destinations = || config.backups.iter().flat_map(|b| b.destinations.iter());
    let aws = config.regions.iter().any(|r| r.cloud == Cloud::Aws && !(r.compute.is_empty() && r.databases.is_empty()))
        || config.failover.as_ref().is_some_and(|f| f.dns.is_some())
        || destinations().any(|d| matches!(d.target, Target::S3 { .. }));
    let gcp = config.regions.iter().any(|r| r.cloud == Cloud::Gcp)
        || destinations().any(|d| matches!(d.target, Target::Gcs { .. }));
    let kubernetes = config.regions.iter().any(|r| r.kubernetes.is_some());
    (aws, gcp, kubernetes)
}

impl Clouds {
    /// Connects to what the configuration uses. Credentials come from the standard chains.
    pub async fn connect(config: &Config) -> Result<Clouds, Diagnostic> {
        let (aws, gcp, kubernetes) = needs(config);
        let aws = match aws {
            true => Some(AwsProvider::new(config).await),
            false => None,
        };
        let failed = |what: &str, e: ProviderError| {
            Diagnostic::error(Code::Refresh, format!("cannot set up the {what} provider: {e}"))
                .help("check the provider block and the credentials the standard chain finds")
        };
        let gcp = match gcp {
            true => Some(GcpProvider::new(config).await.map_err(|e| failed("gcp", e))?),
            false => None,
        };
        let kubernetes = match kubernetes {
            true => Some(KubernetesProvider::new(config, None).await.map_err(|e| failed("kubernetes", e))?),
            false => None,
        };
        Ok(Clouds { aws, gcp, kubernetes })
    }
}

impl Clouds {
    /// Route 53's checkers' latest observations of health check `id`, counted: its current
    /// status, whenever each was taken (read-only, for `drplan status`).
    pub async fn health_check_status(&self, id: &str) -> Result<drplan_core::status::Checkers, String> {
        let Some(aws) = &self.aws else { return Err("Route 53 health checks need the AWS provider".into()) };
        let seen = aws.health_check_status(id).await.map_err(|e| e.to_string())?;
        Ok(drplan_core::status::Checkers {
            checkers: seen.len(),
            healthy: seen.iter().filter(|o| o.healthy).count(),
            failing: seen.iter().find(|o| !o.healthy).map(|o| o.report.clone()).filter(|r| !r.is_empty()),
        })
    }
}

/// One provider's refresh, with what it saw and how long it took in the log.
async fn logged<P: Provider>(provider: &P, request: &RefreshRequest<'_>) -> Result<Snapshot, ProviderError> {
    let started = std::time::Instant::now();
    let result = provider.refresh(request).await;
    match &result {
        Ok(snapshot) => {
            // Per region, so a slow or empty region stands out; objects without one are global (DNS).
            let mut per_region = std::collections::BTreeMap::<&str, usize>::new();
            for o in snapshot.objects.values() {
                *per_region.entry(o.resource.region.as_deref().unwrap_or("global")).or_default() += 1;
            }
            for (region, objects) in &per_region {
                tracing::debug!(provider = %provider.name(), region = %region, objects, "refreshed region");
            }
            for (region, why) in &snapshot.unreachable {
                tracing::debug!(provider = %provider.name(), region = %region, reason = %why, "region unreachable");
            }
            tracing::debug!(
                provider = %provider.name(),
                objects = snapshot.objects.len(),
                unreachable = snapshot.unreachable.len(),
                elapsed = ?started.elapsed(),
                "refresh done"
            );
        }
        Err(e) => {
            tracing::debug!(provider = %provider.name(), error = %e, elapsed = ?started.elapsed(), "refresh failed")
        }
    }
    result
}

fn merge(into: &mut Snapshot, from: Snapshot) {
    into.objects.extend(from.objects);
    into.unreachable.extend(from.unreachable);
    into.unreachable_objects.extend(from.unreachable_objects);
    into.newest_backup_age.extend(from.newest_backup_age);
    into.backup_runs.extend(from.backup_runs);
    into.replication.extend(from.replication);
}

impl Provider for Clouds {
    fn name(&self) -> &str {
        "clouds"
    }

    fn manages(&self, kind: Kind, cloud: Option<&str>) -> bool {
        self.aws.as_ref().is_some_and(|p| p.manages(kind, cloud))
            || self.gcp.as_ref().is_some_and(|p| p.manages(kind, cloud))
            || self.kubernetes.as_ref().is_some_and(|p| p.manages(kind, cloud))
    }

    async fn refresh(&self, request: &RefreshRequest<'_>) -> Result<Snapshot, ProviderError> {
        let aws = async {
            match &self.aws {
                Some(p) => logged(p, request).await.map(Some),
                None => Ok(None),
            }
        };
        let gcp = async {
            match &self.gcp {
                Some(p) => logged(p, request).await.map(Some),
                None => Ok(None),
            }
        };
        let kubernetes = async {
            match &self.kubernetes {
                Some(p) => logged(p, request).await.map(Some),
                None => Ok(None),
            }
        };
        tracing::debug!(project = %request.project, regions = ?request.regions, "refreshing");
        let (aws, gcp, kubernetes) = futures_util::join!(aws, gcp, kubernetes);
        let mut snapshot = Snapshot::default();
        for part in [aws?, gcp?, kubernetes?].into_iter().flatten() {
            merge(&mut snapshot, part);
        }
        Ok(snapshot)
    }

    async fn list_points(&self, bucket: &drplan_core::plan::Resource) -> Result<(Vec<String>, u32), ProviderError> {
        match (bucket.str("cloud"), &self.aws, &self.gcp) {
            (Some("aws"), Some(p), _) => p.list_points(bucket).await,
            (Some("gcp"), _, Some(p)) => p.list_points(bucket).await,
            _ => Err(no_store(bucket)),
        }
    }

    async fn read_point(
        &self,
        bucket: &drplan_core::plan::Resource,
        point: &str,
        manifest: Option<&str>,
    ) -> Result<drplan_core::recovery::PointContents, ProviderError> {
        match (bucket.str("cloud"), &self.aws, &self.gcp) {
            (Some("aws"), Some(p), _) => p.read_point(bucket, point, manifest).await,
            (Some("gcp"), _, Some(p)) => p.read_point(bucket, point, manifest).await,
            _ => Err(no_store(bucket)),
        }
    }

    async fn wait_ready(&self, request: &ReadyRequest<'_>) -> Result<(), ProviderError> {
        // The provider that performed the step judges its readiness, whichever it is.
        let (kind, cloud) = (request.change.kind, cloud_of(request.change));
        if let Some(p) = self.aws.as_ref().filter(|p| p.manages(kind, cloud)) {
            return Box::pin(p.wait_ready(request)).await;
        }
        if let Some(p) = self.gcp.as_ref().filter(|p| p.manages(kind, cloud)) {
            return Box::pin(p.wait_ready(request)).await;
        }
        if let Some(p) = self.kubernetes.as_ref().filter(|p| p.manages(kind, cloud)) {
            return Box::pin(p.wait_ready(request)).await;
        }
        Ok(())
    }

    async fn apply(&self, request: &ApplyRequest<'_>) -> Result<Option<Observed>, ProviderError> {
        let (kind, cloud) = (request.change.kind, cloud_of(request.change));
        // Each provider's future is boxed: their retried, paced requests nest deeply enough
        // that the compiler's layout of the apply pipeline's future would exceed its limit.
        if let Some(p) = self.aws.as_ref().filter(|p| p.manages(kind, cloud)) {
            return Box::pin(p.apply(request)).await;
        }
        if let Some(p) = self.gcp.as_ref().filter(|p| p.manages(kind, cloud)) {
            return Box::pin(p.apply(request)).await;
        }
        if let Some(p) = self.kubernetes.as_ref().filter(|p| p.manages(kind, cloud)) {
            return Box::pin(p.apply(request)).await;
        }
        Err(ProviderError::new(
            ErrorClass::Invalid,
            format!(
                "no configured provider manages {kind} objects{}",
                cloud.map(|c| format!(" on {c}")).unwrap_or_default()
            ),
        )
        .at(&request.change.address))
    }
}

fn no_store(bucket: &drplan_core::plan::Resource) -> ProviderError {
    ProviderError::new(ErrorClass::Invalid, "no configured provider holds this destination's objects")
        .at(&bucket.address)
}

/// The health gate: Route 53's view of the new serving region, through the AWS provider.
pub struct HealthGate<'a> {
    pub clouds: &'a Clouds,
    pub project: String,
    /// Time between polls of the checkers' observations.
    pub every: std::time::Duration,
    pub timeout: std::time::Duration,
    /// Every workload the configuration runs, at its replicas once applied: before its
    /// checks count, a region's Deployments must be available, including those this plan
    /// did not scale (scaled by an earlier apply whose rollout never completed).
    pub workloads: Vec<drplan_core::plan::Change>,
    pub rollout_timeout: std::time::Duration,
}

impl HealthGate<'_> {
    /// The workloads of `config` as changes to their desired replicas, for [`HealthGate`].
    pub fn workloads_of(config: &Config) -> Vec<drplan_core::plan::Change> {
        drplan_core::plan::desired::desired(config)
            .into_iter()
            .filter(|r| r.kind.spec().ready == drplan_core::plan::step::Ready::WhenServing)
            .map(|r| drplan_core::plan::Change {
                address: r.address,
                kind: r.kind,
                region: r.region,
                action: drplan_core::plan::Action::Update,
                before: None,
                after: Some(r.attrs),
                id: None,
                replace_paths: Vec::new(),
            })
            .collect()
    }
}

impl crate::apply::Gate for HealthGate<'_> {
    async fn wait(&self, region: &str, _health_check: &str) -> Result<(), crate::apply::StepError> {
        let Some(aws) = &self.clouds.aws else {
            return Err(
                format!("cannot check the health of {region}: Route 53 health checks need the AWS provider").into()
            );
        };
        for w in self.workloads.iter().filter(|w| w.region.as_deref() == Some(region)) {
            let request =
                ReadyRequest { project: &self.project, change: w, timeout: self.rollout_timeout, progress: &|_| {} };
            self.clouds.wait_ready(&request).await.map_err(|e| format!("{}: {}", w.address, e.cause()))?;
        }
        // The region's capacity is up and its workloads are available: only observations
        // from now on count.
        let ready = std::time::SystemTime::now();
        Ok(aws.wait_healthy(&self.project, region, ready, self.every, self.timeout).await?)
    }
}
