//! Workloads against kmock: the pipeline's Deployment scaled in place, never created or
//! deleted by drplan; a missing Deployment and an unreachable cluster reported clearly.

use crate::common;

use common::{Clusters, NAMESPACE, PROJECT, config};
use drplan_core::plan::resource::{Kind, Resource, attrs};
use drplan_core::plan::{Action, Change, desired};
use drplan_core::provider::{ApplyRequest, ErrorClass, Provider, RefreshRequest};
use drplan_provider_fake::kit;
use drplan_provider_kubernetes::KubernetesProvider;

fn change(r: &Resource, action: Action, replicas: i64) -> Change {
    let mut change = kit::change(r, action);
    if let Some(after) = change.after.as_mut() {
        after.insert("replicas".into(), replicas.into());
    }
    change
}

fn workload(want: &[Resource], address: &str) -> Resource {
    want.iter().find(|r| r.address == address).cloned().expect("a desired workload")
}

#[tokio::test]
async fn the_pipelines_deployment_is_read_scaled_and_left_alone_on_delete() {
    let clusters = Clusters::start(&["use1"], &[]);
    // The pipeline's Deployments, plus one that drplan does not know.
    clusters.pipeline_deploys("use1", &["ai-service", "dashboard", "billing"], 1).await;
    let config = config(&[("us-east-1", "use1", "active")]);
    let provider = KubernetesProvider::new(&config, Some(&clusters.kubeconfig)).await.expect("provider");
    let regions = vec!["us-east-1".to_owned()];
    let want = desired::desired(&config);
    let request = RefreshRequest { project: PROJECT, regions: &regions, desired: &want };

    let seen = provider.refresh(&request).await.expect("refresh");
    let workloads: Vec<&String> =
        seen.objects.iter().filter(|(_, o)| o.resource.kind == Kind::Workload).map(|(a, _)| a).collect();
    assert_eq!(workloads, vec!["region.us-east-1.workload.ai-service", "region.us-east-1.workload.dashboard"]);
    let ai = &seen.objects["region.us-east-1.workload.ai-service"];
    assert_eq!(
        ai.resource.attrs,
        attrs([
            ("context", "use1".into()),
            ("namespace", NAMESPACE.into()),
            ("deployment", "ai-service".into()),
            ("replicas", 1i64.into()),
        ])
    );
    assert!(!ai.id.is_empty());

    let r = workload(&want, "region.us-east-1.workload.ai-service");
    let scaled = provider
        .apply(&ApplyRequest { project: PROJECT, change: &change(&r, Action::Create, 3), idempotency_token: "t" })
        .await
        .expect("scale up")
        .expect("an object");
    assert_eq!(scaled.resource.attrs, r.attrs);
    assert_eq!(scaled.id, ai.id);
    let held = clusters.deployments("use1").await.get("ai-service").await.expect("get Deployment");
    assert_eq!(held.spec.replicas, Some(3));
    // Only the replica count changed: the pipeline's pod template is intact.
    let image = held.spec.template.spec.and_then(|p| p.containers.first().and_then(|c| c.image.clone()));
    assert_eq!(image.as_deref(), Some("bot-core/ai-service:1.0"));

    let down = provider
        .apply(&ApplyRequest { project: PROJECT, change: &change(&r, Action::Update, 0), idempotency_token: "t" })
        .await
        .expect("scale down")
        .expect("an object");
    assert_eq!(down.resource.int("replicas"), Some(0));
    assert_eq!(clusters.replicas("use1", "ai-service").await, Some(0));

    let adopted = provider
        .apply(&ApplyRequest { project: PROJECT, change: &change(&r, Action::Adopt, 0), idempotency_token: "t" })
        .await
        .expect("adopt")
        .expect("an object");
    assert_eq!(adopted.resource.int("replicas"), Some(0));

    // Delete means "stop managing": the Deployment stays, at its last scale.
    let deleted = provider
        .apply(&ApplyRequest { project: PROJECT, change: &change(&r, Action::Delete, 0), idempotency_token: "t" })
        .await
        .expect("delete");
    assert!(deleted.is_none());
    assert_eq!(clusters.replicas("use1", "ai-service").await, Some(0));
    assert_eq!(clusters.replicas("use1", "billing").await, Some(1), "an unmanaged Deployment is untouched");
}

#[tokio::test]
async fn a_missing_deployment_is_not_found_with_a_clear_message() {
    let clusters = Clusters::start(&["euw1"], &[]);
    let config = config(&[("eu-west-1", "euw1", "active")]);
    let provider = KubernetesProvider::new(&config, Some(&clusters.kubeconfig)).await.expect("provider");
    let want = desired::desired(&config);
    let r = workload(&want, "region.eu-west-1.workload.ai-service");

    let regions = vec!["eu-west-1".to_owned()];
    let seen = provider
        .refresh(&RefreshRequest { project: PROJECT, regions: &regions, desired: &want })
        .await
        .expect("refresh");
    assert!(!seen.objects.contains_key(&r.address), "{:?}", seen.objects);

    let err = provider
        .apply(&ApplyRequest { project: PROJECT, change: &change(&r, Action::Create, 3), idempotency_token: "t" })
        .await
        .expect_err("nothing to scale");
    assert_eq!(err.class, ErrorClass::NotFound);
    assert_eq!(
        err.message,
        "deployment `ai-service` not found in namespace `bot-core` of context `euw1`; drplan scales Deployments \
         that your deploy pipeline creates"
    );
    assert_eq!(err.address.as_deref(), Some(r.address.as_str()));
    // Nothing was created in its place.
    let listed = clusters.deployments("euw1").await.list(&Default::default()).await.expect("list");
    assert!(listed.items.is_empty());
}

#[tokio::test]
async fn a_stopped_cluster_makes_its_region_unreachable_not_the_refresh_fail() {
    let mut clusters = Clusters::start(&["use1", "euw1"], &[]);
    clusters.pipeline_deploys("use1", &["ai-service", "dashboard"], 3).await;
    clusters.pipeline_deploys("euw1", &["ai-service", "dashboard"], 1).await;
    let config = config(&[("us-east-1", "use1", "active"), ("eu-west-1", "euw1", "standby")]);
    let provider = KubernetesProvider::new(&config, Some(&clusters.kubeconfig)).await.expect("provider");
    let regions = vec!["us-east-1".to_owned(), "eu-west-1".to_owned()];
    let want = desired::desired(&config);
    let request = RefreshRequest { project: PROJECT, regions: &regions, desired: &want };
    let before = provider.refresh(&request).await.expect("refresh");
    assert!(before.unreachable.is_empty(), "{:?}", before.unreachable);
    assert!(before.objects.contains_key("region.eu-west-1.workload.ai-service"));

    drop(clusters.kmocks.remove("euw1"));
    let after = provider.refresh(&request).await.expect("refresh must not fail");
    assert_eq!(
        after.unreachable.get("eu-west-1").map(String::as_str),
        Some("context `euw1`: connection refused"),
        "{:?}",
        after.unreachable
    );
    assert!(!after.unreachable.contains_key("us-east-1"));
    assert!(after.objects.contains_key("region.us-east-1.workload.ai-service"));
    assert!(!after.objects.keys().any(|a| a.starts_with("region.eu-west-1.")), "{:?}", after.objects);

    let r = workload(&want, "region.eu-west-1.workload.ai-service");
    let err = provider
        .apply(&ApplyRequest { project: PROJECT, change: &change(&r, Action::Update, 3), idempotency_token: "t" })
        .await
        .expect_err("the cluster is gone");
    assert_eq!(err.class, ErrorClass::Unreachable, "{err}");
    assert!(err.message.contains("connection refused"), "{err}");
}

#[tokio::test]
async fn an_unknown_context_makes_its_region_unreachable() {
    let clusters = Clusters::start(&["use1"], &[]);
    // "euw1" is not in the kubeconfig at all.
    let config = config(&[("us-east-1", "use1", "active"), ("eu-west-1", "euw1", "standby")]);
    let provider = KubernetesProvider::new(&config, Some(&clusters.kubeconfig)).await.expect("provider");
    let regions = vec!["us-east-1".to_owned(), "eu-west-1".to_owned()];
    let want = desired::desired(&config);
    let seen = provider
        .refresh(&RefreshRequest { project: PROJECT, regions: &regions, desired: &want })
        .await
        .expect("refresh");
    assert_eq!(
        seen.unreachable.get("eu-west-1").map(String::as_str),
        Some("context `euw1`: no context `euw1` in the kubeconfig")
    );
    assert!(!seen.unreachable.contains_key("us-east-1"));
}

#[tokio::test]
async fn a_refresh_reads_each_cluster_with_one_list_per_kind() {
    let clusters = Clusters::start(&["use1", "euw1"], &[]);
    clusters.pipeline_deploys("use1", &["ai-service", "dashboard"], 3).await;
    clusters.pipeline_deploys("euw1", &["ai-service", "dashboard"], 1).await;
    let proxies: Vec<(&str, common::CountingProxy)> =
        clusters.kmocks.iter().map(|(c, k)| (c.as_str(), common::CountingProxy::start(k.url()))).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    let entries: Vec<(&str, &str)> = proxies.iter().map(|(c, p)| (*c, p.url.as_str())).collect();
    drplan_harness::write_kubeconfig(&kubeconfig, &entries).expect("write kubeconfig");

    let config = config(&[("us-east-1", "use1", "active"), ("eu-west-1", "euw1", "standby")]);
    let provider = KubernetesProvider::new(&config, Some(&kubeconfig)).await.expect("provider");
    let regions = vec!["us-east-1".to_owned(), "eu-west-1".to_owned()];
    let want = desired::desired(&config);
    let seen = provider
        .refresh(&RefreshRequest { project: PROJECT, regions: &regions, desired: &want })
        .await
        .expect("refresh");
    assert_eq!(seen.objects.len(), 4, "{:?}", seen.objects.keys());
    for (context, proxy) in &proxies {
        assert_eq!(
            proxy.take(),
            vec![
                "GET /apis/apps/v1/namespaces/bot-core/deployments?".to_owned(),
                "GET /apis/batch/v1/namespaces/bot-core/cronjobs?&labelSelector=app.kubernetes.io%2Fmanaged-by%3Ddrplan%2Cdrplan.io%2Fproject%3Dbot-core".to_owned(),
                "GET /apis/batch/v1/namespaces/bot-core/jobs?&labelSelector=app.kubernetes.io%2Fmanaged-by%3Ddrplan%2Cdrplan.io%2Fproject%3Dbot-core%2Cdrplan.io%2Fstep%3Drestore".to_owned(),
            ],
            "requests to {context}"
        );
    }
}
