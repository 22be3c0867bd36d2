//! CloudNativePG members of a database: each region's `Cluster` (postgresql.cnpg.io/v1) in
//! its namespace, in CloudNativePG's distributed topology. A member names itself in
//! `spec.replica.self` (drplan expects its Cluster's name there) and the writer in
//! `spec.replica.primary`: it is the writer when the two are equal.
//!
//! A planned switchover is CloudNativePG's own handshake: the old primary is demoted by
//! pointing its `spec.replica.primary` at the target, and once the operator has shut it
//! down cleanly and archived its last WAL it publishes `status.demotionToken`; the target is
//! promoted with `spec.replica.primary` naming itself and that token as
//! `spec.replica.promotionToken`, and it is done when `status.lastPromotionToken` equals it.
//! The demotion is the fence: the old primary no longer accepts writes, and nothing is
//! deleted. Without the old region (a disaster) the target is promoted without a token.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use drplan_core::plan::data::source_name;
use drplan_core::plan::resource::{Kind, Resource, attrs};
use drplan_core::plan::{Action, Change, Observed, Value};
use drplan_core::provider::{ErrorClass, ProviderError, ReadyRequest};
use kube::Api;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;

use crate::{Cluster, KubernetesProvider, error};

/// How often a handshake's status is polled.
const POLL: Duration = Duration::from_millis(500);
/// How long a promotion may take to be acknowledged by the operator.
const PROMOTION_WITHIN: Duration = Duration::from_secs(10 * 60);

fn api(client: &kube::Client, namespace: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("postgresql.cnpg.io", "v1", "Cluster");
    Api::namespaced_with(client.clone(), namespace, &ApiResource::from_gvk_with_plural(&gvk, "clusters"))
}

fn field<'a>(o: &'a DynamicObject, path: &[&str]) -> Option<&'a serde_json::Value> {
    path.iter().try_fold(&o.data, |v, k| v.get(k))
}

fn text<'a>(o: &'a DynamicObject, path: &[&str]) -> Option<&'a str> {
    field(o, path).and_then(serde_json::Value::as_str).filter(|s| !s.is_empty())
}

fn attr<'a>(c: &'a Change, k: &str) -> &'a str {
    c.after.as_ref().or(c.before.as_ref()).and_then(|a| a.get(k)).and_then(Value::text).unwrap_or_default()
}

impl KubernetesProvider {
    /// The CloudNativePG members wanted in `cluster`'s region, as they are. `regions` maps
    /// every member's name to its region, so a replica's source reads `region/name`.
    pub(crate) async fn read_members(
        &self,
        cluster: &Cluster,
        desired: &[Resource],
    ) -> Result<Vec<Observed>, ProviderError> {
        let members: Vec<&Resource> =
            desired.iter().filter(|r| r.kind == Kind::Database && r.str("kind") == Some("cloudnativepg")).collect();
        let regions: BTreeMap<&str, &str> =
            members.iter().filter_map(|r| Some((r.str("identifier")?, r.region.as_deref()?))).collect();
        let mut out = Vec::new();
        for want in members.iter().filter(|r| r.region.as_deref() == Some(cluster.region.as_str())) {
            let name = want.str("identifier").unwrap_or_default();
            let namespace = want.str("namespace").unwrap_or(&cluster.namespace);
            let api = api(cluster.client()?, namespace);
            let found = match error::send(|| api.get_opt(name)).await {
                Ok(found) => found,
                Err(e) => match error::unreachable_reason(&e, &cluster.context) {
                    Some(reason) => return Err(ProviderError::new(ErrorClass::Unreachable, reason)),
                    None => {
                        return Err(error::provider_error(
                            &e,
                            &cluster.describe("CloudNativePG Cluster", name, namespace),
                        ));
                    }
                },
            };
            let Some(found) = found else { continue };
            let primary = text(&found, &["spec", "replica", "primary"]).unwrap_or(name);
            let myself = text(&found, &["spec", "replica", "self"]).unwrap_or(name);
            let mut a = attrs([
                ("cloud", "kubernetes".into()),
                ("kind", "cloudnativepg".into()),
                ("engine", "postgres".into()),
                ("identifier", name.into()),
                ("context", cluster.context.as_str().into()),
                ("namespace", namespace.into()),
            ]);
            if primary == myself {
                a.insert("role".into(), "writer".into());
            } else {
                a.insert("role".into(), "replica".into());
                let region = regions.get(primary).copied().unwrap_or("?");
                a.insert("source".into(), source_name(region, primary).into());
            }
            out.push(Observed {
                resource: Resource {
                    address: want.address.clone(),
                    kind: Kind::Database,
                    region: want.region.clone(),
                    attrs: a,
                },
                id: format!("{}/{namespace}/cluster/{name}", cluster.context),
            });
        }
        Ok(out)
    }

    /// A CloudNativePG member changed: promoted (with the old primary's demotion token when
    /// it can be read), made a replica of the writer (a demotion), or adopted; or a catch-up
    /// started by demoting the old primary.
    pub(crate) async fn apply_member(&self, change: &Change) -> Result<Option<Observed>, ProviderError> {
        let region = change.region.as_deref();
        let cluster = self.cluster(region, &change.address)?;
        let name = attr(change, "identifier");
        let namespace = match attr(change, "namespace") {
            "" => cluster.namespace.as_str(),
            ns => ns,
        };
        let what = cluster.describe("CloudNativePG Cluster", name, namespace);
        let fail = |e: kube::Error| error::provider_error(&e, &what);
        if change.kind == Kind::CatchUp {
            // The handshake's first half: the old primary, in the source's region, is told
            // the target is primary now, and demotes itself.
            let (source_region, source) = attr(change, "source").split_once('/').unwrap_or_default();
            let old = self.cluster(Some(source_region), &change.address)?;
            let old_api = api(old.client()?, &old.namespace);
            let patch = Patch::Merge(serde_json::json!({ "spec": { "replica": { "primary": name } } }));
            let params = PatchParams::default();
            error::send(|| old_api.patch(source, &params, &patch)).await.map_err(|e| {
                error::provider_error(&e, &old.describe("CloudNativePG Cluster", source, &old.namespace))
            })?;
            let mut o = Resource {
                address: change.address.clone(),
                kind: Kind::CatchUp,
                region: change.region.clone(),
                attrs: change.after.clone().unwrap_or_default(),
            };
            o.attrs.insert("status".into(), "running".into());
            return Ok(Some(Observed { resource: o, id: format!("{source_region}/{source}") }));
        }
        let api = api(cluster.client()?, namespace);
        let patch = match change.action {
            Action::Adopt => None,
            Action::Update if attr(change, "role") == "writer" => {
                // The second half: promoted with the demotion token, when the old primary
                // can be read; without it (its region dark) at once.
                let before =
                    change.before.as_ref().and_then(|b| b.get("source")).and_then(Value::text).unwrap_or_default();
                let token = match before.split_once('/') {
                    Some((r, old_name)) => self.demotion_token(r, old_name).await,
                    None => None,
                };
                let mut replica = serde_json::json!({ "primary": name });
                if let Some(t) = &token {
                    replica["promotionToken"] = serde_json::Value::String(t.clone());
                }
                Some((serde_json::json!({ "spec": { "replica": replica } }), token))
            }
            Action::Create => {
                return Err(ProviderError::new(
                    ErrorClass::NotFound,
                    format!(
                        "{what} does not exist: drplan points CloudNativePG Clusters at their writer but does not create them"
                    ),
                ));
            }
            Action::Delete => {
                return Err(ProviderError::new(
                    ErrorClass::Invalid,
                    format!("drplan never deletes a database: {what} is kept"),
                ));
            }
            // A replica of the new writer: for an old primary, its demotion.
            _ => {
                let (_, primary) = attr(change, "source").split_once('/').unwrap_or_default();
                Some((serde_json::json!({ "spec": { "replica": { "primary": primary } } }), None))
            }
        };
        if let Some((body, token)) = patch {
            let (params, body) = (PatchParams::default(), Patch::Merge(&body));
            error::send(|| api.patch(name, &params, &body)).await.map_err(fail)?;
            if let Some(token) = token {
                self.await_promotion(cluster, namespace, name, &token).await?;
            }
        }
        let mut seen = self
            .read_members(
                cluster,
                std::slice::from_ref(&Resource {
                    address: change.address.clone(),
                    kind: Kind::Database,
                    region: change.region.clone(),
                    attrs: change.after.clone().or_else(|| change.before.clone()).unwrap_or_default(),
                }),
            )
            .await?;
        // The source's region is not in this one-member read: keep the change's own name for it.
        if let (Some(o), Some(source)) = (seen.first_mut(), change.after.as_ref().and_then(|a| a.get("source")))
            && o.resource.str("role") == Some("replica")
        {
            o.resource.attrs.insert("source".into(), source.clone());
        }
        Ok(seen.pop())
    }

    /// The old primary's `status.demotionToken`, when its region answers and it has one.
    async fn demotion_token(&self, region: &str, name: &str) -> Option<String> {
        let cluster = self.clusters.iter().find(|c| c.region == region)?;
        let api = api(cluster.client().ok()?, &cluster.namespace);
        let found = api.get_opt(name).await.ok()??;
        text(&found, &["status", "demotionToken"]).map(str::to_string)
    }

    async fn await_promotion(
        &self,
        cluster: &Cluster,
        namespace: &str,
        name: &str,
        token: &str,
    ) -> Result<(), ProviderError> {
        let api = api(cluster.client()?, namespace);
        let started = Instant::now();
        loop {
            let found = error::send(|| api.get_opt(name))
                .await
                .map_err(|e| error::provider_error(&e, &cluster.describe("CloudNativePG Cluster", name, namespace)))?;
            if found.as_ref().and_then(|o| text(o, &["status", "lastPromotionToken"])) == Some(token) {
                return Ok(());
            }
            if started.elapsed() > PROMOTION_WITHIN {
                return Err(ProviderError::new(
                    ErrorClass::Failed,
                    format!(
                        "CloudNativePG did not promote {name} within {}s: its status.lastPromotionToken never matched the demotion token",
                        PROMOTION_WITHIN.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// A catch-up's wait: until the old primary publishes its demotion token, which the
    /// operator does once it shut down cleanly with every WAL archived for the replica.
    pub(crate) async fn await_demotion(&self, request: &ReadyRequest<'_>) -> Result<(), ProviderError> {
        let change = request.change;
        let timeout = match change.after.as_ref().and_then(|a| a.get("timeout_seconds")) {
            Some(Value::Int(s)) if *s > 0 => Duration::from_secs(*s as u64),
            _ => request.timeout,
        };
        let (region, old) = attr(change, "source").split_once('/').unwrap_or_default();
        let started = Instant::now();
        (request.progress)("waiting for the old primary's demotion token".into());
        loop {
            if self.demotion_token(region, old).await.is_some() {
                return Ok(());
            }
            if started.elapsed() + POLL > timeout {
                return Err(ProviderError::new(
                    ErrorClass::Failed,
                    format!(
                        "{old} in {region} did not publish its demotion token within {}s: it did not catch up; nothing was promoted",
                        timeout.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
