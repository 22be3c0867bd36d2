//! The engine against the fake cloud: plan, run the actions in the graph's order, refresh,
//! plan again: nothing left to do. Also a crashed run adopted instead of duplicated.

use std::path::Path;

use drplan_core::config::Config;
use drplan_core::plan::{self, Options, Prior, desired};
use drplan_provider_fake::FakeProvider;
use drplan_provider_fake::kit::{self, assert_converged, refresh};

fn bot_core(edit: impl Fn(String) -> String) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/bot-core/main.hcl");
    kit::load(&edit(std::fs::read_to_string(path).unwrap()))
}

fn failed_over(text: String) -> String {
    text.replacen("role     = \"active\"", "role     = \"PROMOTE\"", 1)
        .replacen("role     = \"standby\"", "role     = \"active\"", 1)
        .replacen("PROMOTE", "standby", 1)
}

/// The application's deploy pipeline: every cluster gets its Deployments, at one replica;
/// and its operators' databases: the ledger's writer and replicas, as declared.
fn pipeline(cloud: &FakeProvider, config: &Config) {
    for mut r in desired::desired(config).into_iter().filter(|r| r.kind == drplan_core::plan::Kind::Workload) {
        r.attrs.insert("replicas".into(), 1i64.into());
        cloud.put(drplan_core::plan::Observed { id: format!("deploy-{}", r.address), resource: r });
    }
    for r in desired::desired(config).into_iter().filter(|r| r.kind == drplan_core::plan::Kind::Database) {
        cloud.put(drplan_core::plan::Observed { id: format!("db-{}", r.address), resource: r });
    }
}

/// The kit's loop; the number of changes planned.
async fn converge(cloud: &FakeProvider, config: &Config, prior: &mut Prior, plan_id: &str, limit: usize) -> usize {
    kit::converge(cloud, config, prior, plan_id, limit).await.changes.len()
}

#[tokio::test]
async fn fresh_deploy_then_failover_converge() {
    let cloud = FakeProvider::everything();
    let mut prior = Prior::default();
    let config = bot_core(|t| t);
    pipeline(&cloud, &config);
    let planned = converge(&cloud, &config, &mut prior, "deploy", kit::ALL).await;
    // Everything is created but the Deployments, which the pipeline made and drplan scales
    // (or adopts, where their replicas already match).
    assert_eq!(planned, desired::desired(&config).len());
    assert_converged(&cloud, &config, &prior).await;
    assert_eq!(cloud.objects().len(), desired::desired(&config).len());

    let config = bot_core(failed_over);
    let calls_before = cloud.calls().len();
    converge(&cloud, &config, &mut prior, "failover", kit::ALL).await;
    assert_converged(&cloud, &config, &prior).await;
    // Capacity came up in the new active region before any came down in the old one.
    let calls = cloud.calls()[calls_before..].to_vec();
    let first = |prefix: &str| {
        calls.iter().position(|c| c.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix} in {calls:?}"))
    };
    assert!(first("create region.eu-west-1.compute") < first("delete region.us-east-1.compute"), "{calls:?}");
    assert!(first("update dns.api.bot-core.com.primary") < first("delete region.us-east-1.compute"), "{calls:?}");
}

#[tokio::test]
async fn drift_made_by_hand_is_repaired() {
    let cloud = FakeProvider::everything();
    let mut prior = Prior::default();
    let config = bot_core(|t| t);
    pipeline(&cloud, &config);
    converge(&cloud, &config, &mut prior, "deploy", kit::ALL).await;
    cloud.remove("region.us-east-1.compute.nodes[1]");
    cloud.tamper("region.us-east-1.workload.ai-service", |o| {
        o.resource.attrs.insert("replicas".into(), 1i64.into());
    });
    let live = refresh(&cloud, &config).await;
    let plan = plan::plan(&config, &prior, Some(&live), &Options::default()).unwrap();
    assert_eq!(plan.drift.len(), 2, "{:#?}", plan.drift);
    converge(&cloud, &config, &mut prior, "repair", kit::ALL).await;
    assert_converged(&cloud, &config, &prior).await;
}

#[tokio::test]
async fn a_crashed_run_is_adopted_not_duplicated() {
    let cloud = FakeProvider::everything();
    let config = bot_core(|t| t);
    pipeline(&cloud, &config);
    // The run creates six objects, then dies before writing any state.
    let before = cloud.objects().len();
    let mut lost = Prior::default();
    converge(&cloud, &config, &mut lost, "crashed", 6).await;
    let created = cloud.objects().len() - before;
    assert!(created > 0 && created <= 6, "{created} created");
    let mut prior = Prior::default();
    let live = refresh(&cloud, &config).await;
    let plan = plan::plan(&config, &prior, Some(&live), &Options::default()).unwrap();
    // What the crashed run created is adopted, not created again (the pipeline's
    // Deployments and the operators' databases, found by name, are adopted as well).
    let adopted: Vec<&str> = plan
        .changes
        .iter()
        .filter(|c| c.action == plan::Action::Adopt && !matches!(c.kind, plan::Kind::Workload | plan::Kind::Database))
        .map(|c| c.address.as_str())
        .collect();
    assert_eq!(adopted.len(), created, "{:#?}", plan.changes);
    converge(&cloud, &config, &mut prior, "resumed", kit::ALL).await;
    assert_converged(&cloud, &config, &prior).await;
    assert_eq!(cloud.objects().len(), desired::desired(&config).len(), "nothing duplicated");
}
