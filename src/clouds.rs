//! The providers a configuration needs, acting as one: a refresh reads every cloud and
//! cluster concurrently and merges what they saw; a change goes to the provider that
//! manages its kind of object.

use drplan_core::config::{Cloud, Config, Target};
use drplan_core::plan::resource::Kind;
use drplan_core::plan::{Observed, Snapshot};
use drplan_core::provider::{ApplyRequest, ErrorClass, Provider, ProviderError, RefreshRequest, cloud_of};
use drplan_core::{Code, Diagnostic};
use drplan_provider_gcp::GcpProvider;
use drplan_provider_kubernetes::KubernetesProvider;

pub struct Clouds {
    gcp: Option<GcpProvider>,
    kubernetes: Option<KubernetesProvider>,
}

/// Which clouds a configuration touches.
fn needs(config: &Config) -> (bool, bool, bool) {
    let destinations = || config.backups.iter().flat_map(|b| b.destinations.iter());
    let aws = config.regions.iter().any(|r| r.cloud == Cloud::Aws && !r.compute.is_empty())
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
        if aws {
            return Err(Diagnostic::error(Code::Refresh, "cannot read AWS yet")
                .help("this build reads GCP and Kubernetes; plan AWS from state with `drplan plan --refresh=false`"));
        }
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
        Ok(Clouds { gcp, kubernetes })
    }
}

fn merge(into: &mut Snapshot, from: Snapshot) {
    into.objects.extend(from.objects);
    into.unreachable.extend(from.unreachable);
    into.newest_backup_age.extend(from.newest_backup_age);
}

impl Provider for Clouds {
    fn name(&self) -> &str {
        "clouds"
    }

    fn manages(&self, kind: Kind, cloud: Option<&str>) -> bool {
        self.gcp.as_ref().is_some_and(|p| p.manages(kind, cloud))
            || self.kubernetes.as_ref().is_some_and(|p| p.manages(kind, cloud))
    }

    async fn refresh(&self, request: &RefreshRequest<'_>) -> Result<Snapshot, ProviderError> {
        let gcp = async {
            match &self.gcp {
                Some(p) => p.refresh(request).await.map(Some),
                None => Ok(None),
            }
        };
        let kubernetes = async {
            match &self.kubernetes {
                Some(p) => p.refresh(request).await.map(Some),
                None => Ok(None),
            }
        };
        let (gcp, kubernetes) = futures_util::join!(gcp, kubernetes);
        let mut snapshot = Snapshot::default();
        for part in [gcp?, kubernetes?].into_iter().flatten() {
            merge(&mut snapshot, part);
        }
        Ok(snapshot)
    }

    async fn apply(&self, request: &ApplyRequest<'_>) -> Result<Option<Observed>, ProviderError> {
        let (kind, cloud) = (request.change.kind, cloud_of(request.change));
        if let Some(p) = self.gcp.as_ref().filter(|p| p.manages(kind, cloud)) {
            return p.apply(request).await;
        }
        if let Some(p) = self.kubernetes.as_ref().filter(|p| p.manages(kind, cloud)) {
            return p.apply(request).await;
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
