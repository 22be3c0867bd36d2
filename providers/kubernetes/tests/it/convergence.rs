//! The engine against two kmock clusters: a fresh deploy converges, a failover scales the
//! new active region up before the old one down and moves the backup schedule, and a
//! Deployment scaled by hand shows as drift and is repaired.

use crate::common;

use common::{Clusters, World, config};
use drplan_core::config::Config;
use drplan_core::plan::{DriftKind, Prior};
use drplan_provider_fake::kit::AttrsExt;

const COMPONENTS: [&str; 2] = ["ai-service", "dashboard"];
const JOB: &str = "drplan-backup-database";

fn deployed() -> Config {
    config(&[("us-east-1", "use1", "active"), ("eu-west-1", "euw1", "standby")])
}

fn failed_over() -> Config {
    config(&[("us-east-1", "use1", "standby"), ("eu-west-1", "euw1", "active")])
}

/// Both clusters with the pipeline's Deployments at the pipeline's own scale.
async fn pipeline() -> Clusters {
    let clusters = Clusters::start(&["use1", "euw1"], &[]);
    clusters.pipeline_deploys("use1", &COMPONENTS, 1).await;
    clusters.pipeline_deploys("euw1", &COMPONENTS, 1).await;
    clusters
}

async fn assert_scales(clusters: &Clusters, context: &str, ai: i32, dashboard: i32, suspended: bool) {
    assert_eq!(clusters.replicas(context, "ai-service").await, Some(ai), "{context} ai-service");
    assert_eq!(clusters.replicas(context, "dashboard").await, Some(dashboard), "{context} dashboard");
    assert_eq!(clusters.suspended(context, JOB).await, Some(suspended), "{context} backup suspended");
}

#[tokio::test]
async fn fresh_deploy_then_failover_converge() {
    let clusters = pipeline().await;
    let config = deployed();
    let mut world = World::new(&config, &clusters).await;
    let mut prior = Prior::default();

    world.converge(&config, &mut prior, "deploy").await;
    world.assert_converged(&config, &prior).await;
    assert_scales(&clusters, "use1", 3, 2, false).await;
    assert_scales(&clusters, "euw1", 1, 0, true).await;

    let config = failed_over();
    world.calls.clear();
    let plan = world.converge(&config, &mut prior, "failover").await;
    world.assert_converged(&config, &prior).await;
    assert_scales(&clusters, "euw1", 3, 2, false).await;
    assert_scales(&clusters, "use1", 1, 0, true).await;

    let calls = &world.calls;
    let at = |call: &str| calls.iter().position(|c| c == call).unwrap_or_else(|| panic!("no {call} in {calls:?}"));
    // Capacity comes up in the new active region before any comes down in the old one.
    for up in ["update region.eu-west-1.workload.ai-service", "update region.eu-west-1.workload.dashboard"] {
        for down in ["update region.us-east-1.workload.ai-service", "update region.us-east-1.workload.dashboard"] {
            assert!(at(up) < at(down), "{up} after {down}: {calls:?}");
        }
    }
    // The old schedule is suspended before the new one runs: never two at once.
    assert!(
        at("update region.us-east-1.backup_job.database") < at("update region.eu-west-1.backup_job.database"),
        "{calls:?}"
    );
    // And traffic moved between the two: scale-up before the PRIMARY record, scale-down after.
    let position = |id: &str| plan.graph.iter().position(|n| n.id == id).unwrap_or_else(|| panic!("no node {id}"));
    let primary = position("dns.api.bot-core.com.primary");
    assert!(position("region.eu-west-1.workload.ai-service") < primary);
    assert!(primary < position("region.us-east-1.workload.ai-service"));
}

#[tokio::test]
async fn a_deployment_scaled_by_hand_is_drift_and_converging_repairs_it() {
    let clusters = pipeline().await;
    let config = deployed();
    let mut world = World::new(&config, &clusters).await;
    let mut prior = Prior::default();
    world.converge(&config, &mut prior, "deploy").await;
    world.assert_converged(&config, &prior).await;

    clusters.scale_by_hand("use1", "ai-service", 1).await;
    let plan = world.plan(&config, &prior).await;
    assert_eq!(plan.drift.len(), 1, "{:#?}", plan.drift);
    assert_eq!(plan.drift[0].address, "region.us-east-1.workload.ai-service");
    assert_eq!(plan.drift[0].drift, DriftKind::Changed);
    assert_eq!(plan.drift[0].after.int("replicas"), Some(1));
    let addresses: Vec<&str> = plan.changes.iter().map(|c| c.address.as_str()).collect();
    assert_eq!(addresses, vec!["region.us-east-1.workload.ai-service"]);

    world.converge(&config, &mut prior, "repair").await;
    assert_eq!(clusters.replicas("use1", "ai-service").await, Some(3));
    world.assert_converged(&config, &prior).await;
}
