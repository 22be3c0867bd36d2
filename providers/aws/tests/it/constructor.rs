//! `AwsProvider::new` reads the `provider "aws"` block and the standard credential chain.
//! The chain reads the process environment, which a test may not set while other threads
//! run: the test re-runs its own binary with the environment given to the child.

use crate::common;

use drplan_core::plan::resource::Kind;
use drplan_core::provider::{ApplyRequest, Provider, idempotency_token};
use drplan_harness::{Emulator, Running};
use drplan_provider_aws::AwsProvider;

/// Set in the child process, which does the work.
const CHILD: &str = "DRPLAN_TEST_CONSTRUCTOR_CHILD";
// The test binary holds every module: the filter names this one by its path.
const NAME: &str = "constructor::new_uses_the_configured_endpoint_and_the_credential_chain";

#[test]
fn new_uses_the_configured_endpoint_and_the_credential_chain() {
    if std::env::var_os(CHILD).is_none() {
        let out = std::process::Command::new(std::env::current_exe().expect("this test binary"))
            .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_CONFIG_FILE", "/nonexistent/drplan-test-aws-config")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/drplan-test-aws-credentials")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .output()
            .expect("the test binary runs again");
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "the child failed:\n{text}");
        assert!(text.contains("1 passed"), "the child ran no test:\n{text}");
        return;
    }
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(in_child());
}

async fn in_child() {
    let moto = Running::start(Emulator::Moto).expect("moto should start");
    let config = common::load(&common::shop_hcl(moto.url(), "us-east-1", "eu-west-1"));
    let provider = AwsProvider::new(&config).await;
    assert_eq!(provider.regions().collect::<Vec<_>>(), vec!["eu-west-1", "us-east-1"]);

    let check = drplan_provider_fake::kit::desired_of(&config, Kind::HealthCheck, None);
    let change = drplan_provider_fake::kit::change(&check, drplan_core::plan::Action::Create);
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
