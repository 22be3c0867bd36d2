//! An incident's isolation of a region's cluster: every Node cordoned (`spec.unschedulable`,
//! annotated with the incident so that lifting it leaves alone the Nodes a person had
//! cordoned before), and a deny-all NetworkPolicy (every pod of the namespace, no ingress,
//! no egress). Nothing is scaled or deleted: the pods are evidence.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicySpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};

use crate::error::{self, send, status_code};
use crate::objects::{MANAGED_BY, MANAGED_BY_LABEL, PROJECT_LABEL};
use drplan_core::provider::ProviderError;

/// The annotation on a Node drplan cordoned, naming the incident.
pub const CORDONED_BY: &str = "drplan.io/cordoned-by";

/// Every Node of the cluster: its name, whether it is unschedulable, and whether drplan
/// cordoned it for `incident`.
async fn nodes(api: &Api<Node>, context: &str, incident: &str) -> Result<Vec<(String, bool, bool)>, ProviderError> {
    let list = ListParams::default();
    let what = format!("the Nodes of context `{context}`");
    let nodes = send(|| api.list(&list)).await.map_err(|e| error::provider_error(&e, &what))?;
    Ok(nodes
        .items
        .into_iter()
        .filter_map(|node| {
            let name = node.metadata.name.clone()?;
            let annotations = node.metadata.annotations.as_ref();
            let ours = annotations.and_then(|a| a.get(CORDONED_BY)).is_some_and(|i| i == incident);
            Some((name, node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false), ours))
        })
        .collect())
}

/// Sets `spec.unschedulable` of Node `name` and its incident annotation (`None`: removed).
async fn set_cordon(api: &Api<Node>, context: &str, name: &str, incident: Option<&str>) -> Result<(), ProviderError> {
    let patch = serde_json::json!({
        "metadata": {"annotations": {CORDONED_BY: incident}},
        "spec": {"unschedulable": incident.is_some()},
    });
    let (params, patch) = (PatchParams::default(), Patch::Merge(&patch));
    send(|| api.patch(name, &params, &patch))
        .await
        .map(drop)
        .map_err(|e| error::provider_error(&e, &format!("Node `{name}` of context `{context}`")))
}

/// Cordons every schedulable Node for `incident`; the names of those it cordoned (now or by
/// an earlier, interrupted run).
pub async fn cordon(client: &kube::Client, context: &str, incident: &str) -> Result<Vec<String>, ProviderError> {
    let api: Api<Node> = Api::all(client.clone());
    let mut cordoned = Vec::new();
    for (name, unschedulable, ours) in nodes(&api, context, incident).await? {
        if unschedulable && !ours {
            // A person's cordon: theirs to lift.
            continue;
        }
        if !unschedulable {
            set_cordon(&api, context, &name, Some(incident)).await?;
        }
        cordoned.push(name);
    }
    cordoned.sort();
    Ok(cordoned)
}

/// Lifts the cordon of the Nodes drplan cordoned for `incident`.
pub async fn uncordon(client: &kube::Client, context: &str, incident: &str) -> Result<(), ProviderError> {
    let api: Api<Node> = Api::all(client.clone());
    for (name, _, ours) in nodes(&api, context, incident).await? {
        if ours {
            set_cordon(&api, context, &name, None).await?;
        }
    }
    Ok(())
}

/// The deny-all NetworkPolicy `name` in `namespace`: every pod, no rule for either direction.
pub fn deny_all_policy(name: &str, namespace: &str, project: &str, incident: &str) -> NetworkPolicy {
    NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
                (PROJECT_LABEL.to_owned(), project.to_owned()),
            ])),
            annotations: Some(BTreeMap::from([("drplan.io/incident".to_owned(), incident.to_owned())])),
            ..ObjectMeta::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec!["Ingress".to_owned(), "Egress".to_owned()]),
            ingress: None,
            egress: None,
        }),
    }
}

/// Puts the deny-all policy in place (one already there, from an interrupted run, is it).
pub async fn deny_all(client: &kube::Client, policy: &NetworkPolicy, what: &str) -> Result<(), ProviderError> {
    let namespace = policy.metadata.namespace.clone().unwrap_or_default();
    let api: Api<NetworkPolicy> = Api::namespaced(client.clone(), &namespace);
    let params = PostParams::default();
    match send(|| api.create(&params, policy)).await {
        Ok(_) => Ok(()),
        Err(e) if status_code(&e) == Some(409) => Ok(()),
        Err(e) => Err(error::provider_error(&e, what)),
    }
}

/// Removes the deny-all policy (already gone is done).
pub async fn allow_again(client: &kube::Client, name: &str, namespace: &str, what: &str) -> Result<(), ProviderError> {
    let api: Api<NetworkPolicy> = Api::namespaced(client.clone(), namespace);
    let params = DeleteParams::default();
    match send(|| api.delete(name, &params)).await {
        Ok(_) => Ok(()),
        Err(e) if status_code(&e) == Some(404) => Ok(()),
        Err(e) => Err(error::provider_error(&e, what)),
    }
}
