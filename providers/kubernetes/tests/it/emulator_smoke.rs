//! Drives kmock through a kube client built by `drplan_provider_kubernetes::client` from a kubeconfig.

use crate::common;

use drplan_harness::{Emulator, Running, write_kubeconfig};
use drplan_provider_kubernetes::client_for_context;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};

const NAMESPACE: &str = "smoke";

fn deployment(name: &str, replicas: i32) -> Deployment {
    common::deployment_in(NAMESPACE, name, replicas, "nginx:1.27")
}

#[tokio::test]
async fn deployment_create_list_and_scale_through_kubeconfig_context() {
    let kmock = Running::start(Emulator::Kmock).expect("kmock should start");
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    // A second context makes sure the client follows the named one, not the current one.
    write_kubeconfig(&kubeconfig, &[("unreachable", "http://127.0.0.1:9"), ("dr-east", kmock.url())])
        .expect("write kubeconfig");

    let client = client_for_context(Some(&kubeconfig), "dr-east").await.expect("kube client");
    let deployments: Api<Deployment> = Api::namespaced(client, NAMESPACE);

    let before = deployments.list(&ListParams::default()).await.expect("list before create");
    assert!(before.items.is_empty(), "{:?}", before.items);

    let created = deployments.create(&PostParams::default(), &deployment("web", 1)).await.expect("create Deployment");
    assert_eq!(created.metadata.name.as_deref(), Some("web"));

    let listed = deployments.list(&ListParams::default()).await.expect("list after create");
    let names: Vec<_> = listed.items.iter().map(|d| d.metadata.name.as_deref()).collect();
    assert_eq!(names, vec![Some("web")]);

    let patch = serde_json::json!({ "spec": { "replicas": 3 } });
    let patched = deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("merge-patch spec.replicas");
    assert_eq!(patched.spec.replicas, Some(3));

    let read_back = deployments.get("web").await.expect("get Deployment");
    assert_eq!(read_back.spec.replicas, Some(3));
    // A merge patch must leave the rest of the spec alone.
    let containers = read_back.spec.template.spec.map(|p| p.containers.len());
    assert_eq!(containers, Some(1));
}
