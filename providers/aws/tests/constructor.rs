//! `AwsProvider::new` reads the `provider "aws"` block and the standard credential chain.
//! Alone in its test binary because it sets the process environment the chain reads.

mod common;

use drplan_core::plan::resource::Kind;
use drplan_core::provider::{ApplyRequest, Provider, idempotency_token};
use drplan_harness::{Emulator, Running};
use drplan_provider_aws::AwsProvider;

#[tokio::test]
async fn new_uses_the_configured_endpoint_and_the_credential_chain() {
    // SAFETY: the only test of this binary; no other thread reads the environment yet.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
        std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/drplan-test-aws-config");
        std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/drplan-test-aws-credentials");
        std::env::remove_var("AWS_PROFILE");
        std::env::remove_var("AWS_ENDPOINT_URL");
    }
    let moto = Running::start(Emulator::Moto).expect("moto should start");
    let config = common::load(&common::shop_hcl(moto.url(), "us-east-1", "eu-west-1"));
    let provider = AwsProvider::new(&config).await;
    assert_eq!(provider.regions().collect::<Vec<_>>(), vec!["eu-west-1", "us-east-1"]);

    let want = drplan_core::plan::desired::desired(&config);
    let check = want.iter().find(|r| r.kind == Kind::HealthCheck).expect("a health check");
    let change = drplan_core::plan::Change {
        address: check.address.clone(),
        kind: Kind::HealthCheck,
        region: None,
        action: drplan_core::plan::Action::Create,
        before: None,
        after: Some(check.attrs.clone()),
        id: None,
        replace_paths: Vec::new(),
    };
    let token = idempotency_token("p", &change.address);
    let created = provider
        .apply(&ApplyRequest { project: "shop", change: &change, idempotency_token: &token })
        .await
        .expect("CreateHealthCheck through the configured endpoint")
        .expect("a health check");
    let route53 = aws_sdk_route53::Client::new(&drplan_provider_aws::sdk_config(Some(moto.url()), "us-east-1").await);
    let listed = route53.list_health_checks().send().await.expect("ListHealthChecks");
    let ids: Vec<(&str, &str)> = listed.health_checks().iter().map(|h| (h.id(), h.caller_reference())).collect();
    assert_eq!(ids, vec![(created.id.as_str(), token.as_str())]);
}
