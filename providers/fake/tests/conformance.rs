//! The fake passes the conformance suite, and a provider that breaks a promise fails it.

use drplan_core::plan::resource::{Kind, Resource, Value, address, attrs};
use drplan_core::plan::{Action, Observed, Snapshot};
use drplan_core::provider::{ApplyRequest, Provider, ProviderError, RefreshRequest};
use drplan_provider_fake::FakeProvider;
use drplan_provider_fake::conformance::{Fixture, check};

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
