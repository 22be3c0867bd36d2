//! The fake passes the conformance suite, and a provider that breaks a promise fails it.

use drplan_core::plan::resource::{Kind, Resource, Value, address, attrs};
use drplan_core::plan::{Action, Observed, Snapshot};
use drplan_core::provider::{ApplyRequest, Provider, ProviderError, RefreshRequest};
use drplan_provider_fake::FakeProvider;
use drplan_provider_fake::conformance::{Fixture, check, check_dns_record, check_scale_only};

fn fixture() -> Fixture {
    Fixture {
        project: "conformance".into(),
        regions: vec!["us-east-1".into()],
        resource: Resource {
            address: address::instance("us-east-1", "nodes", 0),
            kind: Kind::Instance,
            region: Some("us-east-1".into()),
            attrs: attrs([("cloud", "aws".into()), ("image", "ami-1".into()), ("state", "running".into())]),
        },
        update: ("state".into(), Value::Str("stopped".into())),
    }
}

#[tokio::test]
async fn the_fake_passes() {
    check(&FakeProvider::everything(), &fixture()).await.unwrap();
}

#[tokio::test]
async fn the_fake_passes_for_a_failover_record() {
    let fixture = Fixture {
        project: "conformance".into(),
        regions: vec![],
        resource: Resource {
            address: address::dns_record("api.shop.example.com", "PRIMARY"),
            kind: Kind::DnsRecord,
            region: None,
            attrs: attrs([
                ("zone", "shop.example.com".into()),
                ("name", "api.shop.example.com".into()),
                ("type", "CNAME".into()),
                ("ttl", 60i64.into()),
                ("failover", "PRIMARY".into()),
                ("set_identifier", "conformance-primary".into()),
                ("target", "use1.shop.example.com".into()),
                ("health_check", "".into()),
            ]),
        },
        update: ("target".into(), Value::Str("maintenance.shop.example.com".into())),
    };
    check_dns_record(&FakeProvider::everything(), &fixture).await.unwrap();
}

#[tokio::test]
async fn the_fake_passes_for_a_pipelines_workload() {
    let resource = Resource {
        address: "region.us-east-1.workload.web".into(),
        kind: Kind::Workload,
        region: Some("us-east-1".into()),
        attrs: attrs([("deployment", "web".into()), ("replicas", 1i64.into())]),
    };
    let cloud = FakeProvider::everything();
    cloud.put(Observed { id: "deploy-web".into(), resource: resource.clone() });
    let fixture = Fixture {
        project: "conformance".into(),
        regions: vec!["us-east-1".into()],
        resource,
        update: ("replicas".into(), Value::Int(3)),
    };
    check_scale_only(&cloud, &fixture).await.unwrap();
}

/// Launches a new object on every create, as a provider ignoring its idempotency token would.
struct Duplicating(FakeProvider);

impl Provider for Duplicating {
    fn name(&self) -> &str {
        "duplicating"
    }

    fn manages(&self, kind: Kind, cloud: Option<&str>) -> bool {
        self.0.manages(kind, cloud)
    }

    async fn refresh(&self, request: &RefreshRequest<'_>) -> Result<Snapshot, ProviderError> {
        self.0.refresh(request).await
    }

    async fn apply(&self, request: &ApplyRequest<'_>) -> Result<Option<Observed>, ProviderError> {
        let result = self.0.apply(request).await?;
        if request.change.action == Action::Create
            && let Some(o) = &result
        {
            self.0.remove(&o.resource.address);
            let mut fresh = request.change.clone();
            fresh.action = Action::Replace;
            let token = format!("{}-again-{}", request.idempotency_token, self.0.calls().len());
            return self.0.apply(&ApplyRequest { idempotency_token: &token, ..request.clone() }).await;
        }
        Ok(result)
    }
}

#[tokio::test]
async fn a_provider_that_duplicates_fails() {
    let err = check(&Duplicating(FakeProvider::everything()), &fixture()).await.unwrap_err();
    assert!(err.contains("second object"), "{err}");
}
