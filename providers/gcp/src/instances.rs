//! Compute Engine instances: one labelled list per region for refresh; insert, delete and
//! replacement for apply.
//!
//! Labels carry the address (`drplan-project`, `drplan-region`, `drplan-pool`,
//! `drplan-index`), sanitized to label rules; metadata items keep the exact region and pool
//! names and the image the boot disk was created from, which Compute Engine does not report
//! on the instance itself.

use std::time::{Duration, Instant};

use drplan_core::plan::resource::{Attrs, Kind, Resource, address, attrs};
use drplan_core::plan::{Action, Observed};
use drplan_core::provider::{ApplyRequest, ErrorClass, ProviderError};
use reqwest::Method;
use serde_json::{Value as Json, json};

use crate::api::operation_error;
use crate::names::{insert_request_id, instance_name, label_value, replacement_name};
use crate::{GcpProvider, attr_str};

const IMAGE_KEY: &str = "drplan-image";
const REGION_KEY: &str = "drplan-region";
const POOL_KEY: &str = "drplan-pool";

/// Where one instance is: its zone and name, which is also the id drplan records.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Located {
    zone: String,
    name: String,
}

impl Located {
    fn id(&self) -> String {
        format!("{}/{}", self.zone, self.name)
    }

    fn parse(id: &str) -> Option<Located> {
        let (zone, name) = id.split_once('/')?;
        Some(Located { zone: zone.to_string(), name: name.to_string() })
    }
}

/// What an instance is for: its address's parts.
struct Slot<'a> {
    region: &'a str,
    pool: &'a str,
    index: i64,
}

fn last_segment(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

fn labels(project: &str, slot: &Slot<'_>) -> Json {
    json!({
        "drplan-project": label_value(project),
        "drplan-region": label_value(slot.region),
        "drplan-pool": label_value(slot.pool),
        "drplan-index": slot.index.to_string(),
    })
}

fn metadata_item<'a>(instance: &'a Json, key: &str) -> Option<&'a str> {
    instance["metadata"]["items"].as_array()?.iter().find(|i| i["key"].as_str() == Some(key))?["value"].as_str()
}

fn state_of(status: &str) -> &'static str {
    match status {
        "PROVISIONING" | "STAGING" | "RUNNING" | "REPAIRING" => "running",
        "STOPPING" | "STOPPED" | "SUSPENDING" | "SUSPENDED" => "stopped",
        "TERMINATED" => "terminated",
        _ => "unknown",
    }
}

/// Reads an instance back as drplan's object, when it carries this project's labels.
/// `region` is the drplan region read and `pools` its pool names.
fn observe(instance: &Json, project: &str, region: &str, pools: &[String]) -> Option<Observed> {
    let label = |k: &str| instance["labels"][k].as_str();
    if label("drplan-project")? != label_value(project) || label("drplan-region")? != label_value(region) {
        return None;
    }
    let pool_label = label("drplan-pool")?;
    // The metadata keeps the exact name; a label only its sanitized form.
    let pool = metadata_item(instance, POOL_KEY)
        .filter(|p| label_value(p) == pool_label)
        .map(str::to_string)
        .or_else(|| pools.iter().find(|p| label_value(p) == pool_label).cloned())
        .unwrap_or_else(|| pool_label.to_string());
    let index: u32 = label("drplan-index")?.parse().ok()?;
    let zone = last_segment(instance["zone"].as_str()?).to_string();
    let name = instance["name"].as_str()?.to_string();
    let boot_image = instance["disks"].as_array().and_then(|disks| {
        disks
            .iter()
            .find(|d| d["boot"].as_bool().unwrap_or(false))
            .or(disks.first())
            .and_then(|d| d["initializeParams"]["sourceImage"].as_str())
    });
    let image = metadata_item(instance, IMAGE_KEY).or(boot_image).unwrap_or("");
    let mut a = attrs([
        ("cloud", "gcp".into()),
        ("pool", pool.as_str().into()),
        ("index", index.into()),
        ("instance_type", last_segment(instance["machineType"].as_str().unwrap_or("")).into()),
        ("image", image.into()),
        ("state", state_of(instance["status"].as_str().unwrap_or("")).into()),
        ("zone", zone.as_str().into()),
    ]);
    a.insert("name".into(), name.as_str().into());
    Some(Observed {
        resource: Resource {
            address: address::instance(region, &pool, index),
            kind: Kind::Instance,
            region: Some(region.to_string()),
            attrs: a,
        },
        id: Located { zone, name }.id(),
    })
}

impl GcpProvider {
    fn instance_url(&self, at: &Located) -> String {
        format!("{}/zones/{}/instances/{}", self.compute, at.zone, at.name)
    }

    /// Every instance of `zone` carrying this project's and region's labels, all pages.
    async fn list_labelled(&self, project: &str, region: &str, zone: &str) -> Result<Vec<Json>, ProviderError> {
        let url = format!("{}/zones/{zone}/instances", self.compute);
        let filter = format!(
            "(labels.drplan-project = \"{}\") AND (labels.drplan-region = \"{}\")",
            label_value(project),
            label_value(region)
        );
        let mut out = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let mut query = vec![("filter", filter.clone()), ("maxResults", "500".to_string())];
            if let Some(token) = &page {
                query.push(("pageToken", token.clone()));
            }
            let what = format!("region {region} (zone {zone})");
            let reply = self.api.call(Method::GET, &url, &query, None, &what).await?;
            out.extend(reply.body["items"].as_array().cloned().unwrap_or_default());
            match reply.body["nextPageToken"].as_str() {
                Some(t) if !t.is_empty() => page = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }

    pub(crate) async fn refresh_region(&self, project: &str, region: &str) -> Result<Vec<Observed>, ProviderError> {
        let zone = self.zone_of(region)?;
        let pools = self.pools.get(region).cloned().unwrap_or_default();
        let mut found: std::collections::BTreeMap<String, (String, Observed)> = Default::default();
        for instance in self.list_labelled(project, region, zone).await? {
            // The filter is applied again here: emulators may ignore it.
            let Some(o) = observe(&instance, project, region, &pools) else { continue };
            // Two instances for one address exist only while a replacement is under way (or
            // after one crashed): the newest is the one the replacement made.
            let created = instance["creationTimestamp"].as_str().unwrap_or("").to_string();
            let key = (created.clone(), o.id.clone());
            match found.get(&o.resource.address) {
                Some((c, prev)) if (c.clone(), prev.id.clone()) >= key => {}
                _ => {
                    found.insert(o.resource.address.clone(), (created, o));
                }
            }
        }
        Ok(found.into_values().map(|(_, o)| o).collect())
    }

    async fn get_instance(&self, at: &Located) -> Result<Json, ProviderError> {
        let what = format!("instance {}", at.id());
        Ok(self.api.call(Method::GET, &self.instance_url(at), &[], None, &what).await?.body)
    }

    /// Waits for a zone operation to finish, within the configured time.
    async fn wait(&self, zone: &str, op: &Json, what: &str) -> Result<(), ProviderError> {
        let started = Instant::now();
        let mut op = op.clone();
        let mut pause = Duration::from_millis(200);
        loop {
            if op["status"].as_str() == Some("DONE") {
                return match operation_error(&op, what) {
                    Some(e) => Err(e),
                    None => Ok(()),
                };
            }
            let Some(name) = op["name"].as_str() else {
                return Err(ProviderError::new(ErrorClass::Failed, format!("{what}: the operation has no name")));
            };
            if started.elapsed() >= self.api.limits.operation_timeout {
                return Err(ProviderError::new(
                    ErrorClass::Failed,
                    format!(
                        "{what}: operation {name} not done after {:?} (status {}); it may still finish: \
                         refresh before retrying",
                        self.api.limits.operation_timeout,
                        op["status"].as_str().unwrap_or("unknown")
                    ),
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
            let url = format!("{}/zones/{zone}/operations/{name}", self.compute);
            op = self.api.call(Method::GET, &url, &[], None, what).await?.body;
        }
    }

    /// Inserts `name` for `slot` with the shape in `want`; an instance already holding the
    /// name for the same slot (a retried or crashed run) is returned instead.
    async fn insert(
        &self,
        project: &str,
        slot: &Slot<'_>,
        at: &Located,
        want: &Attrs,
        token: &str,
    ) -> Result<Observed, ProviderError> {
        let what = format!("instance {}", at.id());
        let missing =
            |a: &str| ProviderError::new(ErrorClass::Invalid, format!("{what}: the change has no {a} attribute"));
        let machine = attr_str(want, "instance_type").ok_or_else(|| missing("instance_type"))?;
        let image = attr_str(want, "image").ok_or_else(|| missing("image"))?;
        let body = json!({
            "name": at.name,
            "machineType": format!("zones/{}/machineTypes/{machine}", at.zone),
            "disks": [{
                "boot": true,
                "autoDelete": true,
                "initializeParams": {"sourceImage": image},
            }],
            "networkInterfaces": [{"network": "global/networks/default"}],
            "labels": labels(project, slot),
            "metadata": {"items": [
                {"key": IMAGE_KEY, "value": image},
                {"key": REGION_KEY, "value": slot.region},
                {"key": POOL_KEY, "value": slot.pool},
            ]},
        });
        let url = format!("{}/zones/{}/instances", self.compute, at.zone);
        let query = [("requestId", insert_request_id(token, &at.name))];
        match self.api.call(Method::POST, &url, &query, Some(&body), &what).await {
            Ok(reply) => self.wait(&at.zone, &reply.body, &what).await?,
            // Compute Engine refuses a second instance under one name: the first one is the
            // one this change wanted, if it carries the same labels.
            Err(e) if e.class == ErrorClass::Conflict => {}
            Err(e) => return Err(e),
        }
        let instance = self.get_instance(at).await?;
        let pools = [slot.pool.to_string()];
        match observe(&instance, project, slot.region, &pools) {
            Some(o) if o.resource.address == address::instance(slot.region, slot.pool, slot.index as u32) => Ok(o),
            _ => Err(ProviderError::new(
                ErrorClass::Conflict,
                format!("{what}: the name is taken by an instance that is not drplan's {}", slot.pool),
            )),
        }
    }

    async fn delete_at(&self, at: &Located) -> Result<(), ProviderError> {
        let what = format!("instance {}", at.id());
        match self.api.call(Method::DELETE, &self.instance_url(at), &[], None, &what).await {
            Ok(reply) => self.wait(&at.zone, &reply.body, &what).await,
            Err(e) if e.class == ErrorClass::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn create_instance(&self, request: &ApplyRequest<'_>) -> Result<Observed, ProviderError> {
        let (slot, want) = slot_of(request)?;
        let at = Located {
            zone: self.zone_for(request, &want)?,
            name: instance_name(request.project, slot.region, slot.pool, slot.index),
        };
        self.insert(request.project, &slot, &at, &want, request.idempotency_token).await
    }

    fn zone_for(&self, request: &ApplyRequest<'_>, want: &Attrs) -> Result<String, ProviderError> {
        match attr_str(want, "zone") {
            Some(z) => Ok(z.to_string()),
            None => Ok(self.zone_of(request.change.region.as_deref().unwrap_or(""))?.to_string()),
        }
    }

    /// The instance a change is about: its recorded id, else the labelled one in its zone.
    async fn existing(&self, request: &ApplyRequest<'_>) -> Result<Vec<Located>, ProviderError> {
        let change = request.change;
        let mut out: Vec<Located> = change.id.as_deref().and_then(Located::parse).into_iter().collect();
        let (slot, want) = slot_of(request)?;
        let zone = match change.before.as_ref().and_then(|b| attr_str(b, "zone")) {
            Some(z) => z.to_string(),
            None => self.zone_for(request, &want)?,
        };
        for instance in self.list_labelled(request.project, slot.region, &zone).await? {
            let pools = [slot.pool.to_string()];
            let at = observe(&instance, request.project, slot.region, &pools)
                .filter(|o| o.resource.address == change.address)
                .and_then(|o| Located::parse(&o.id));
            if let Some(at) = at.filter(|at| !out.contains(at)) {
                out.push(at);
            }
        }
        Ok(out)
    }

    /// Deletes every instance standing for the change's address: the recorded one and any
    /// other carrying its labels (left by a replacement that crashed half-way).
    pub(crate) async fn delete_instance(&self, request: &ApplyRequest<'_>) -> Result<(), ProviderError> {
        for at in self.existing(request).await? {
            self.delete_at(&at).await?;
        }
        Ok(())
    }

    /// Makes the new instance under the name the old one is not using, then deletes the old:
    /// capacity never drops, and the two never fight over one name (on Compute Engine an
    /// insert under a taken name would be answered with the old instance).
    pub(crate) async fn replace_instance(&self, request: &ApplyRequest<'_>) -> Result<Observed, ProviderError> {
        let (slot, want) = slot_of(request)?;
        let old = self.existing(request).await?;
        let base = instance_name(request.project, slot.region, slot.pool, slot.index);
        let zone = self.zone_for(request, &want)?;
        let name = if old.iter().any(|o| o.name == base && o.zone == zone) {
            replacement_name(&base, request.idempotency_token)
        } else {
            base
        };
        let at = Located { zone, name };
        let new = self.insert(request.project, &slot, &at, &want, request.idempotency_token).await?;
        for o in old.iter().filter(|o| **o != at) {
            self.delete_at(o).await?;
        }
        Ok(new)
    }

    /// Only the state can change on a live instance: `running` is asked of Compute Engine's
    /// `start`; where that method does not exist (gcplocal) or anything else differs, the
    /// instance is replaced.
    pub(crate) async fn update_instance(&self, request: &ApplyRequest<'_>) -> Result<Observed, ProviderError> {
        let change = request.change;
        let at =
            change.id.as_deref().and_then(Located::parse).ok_or_else(|| {
                ProviderError::new(ErrorClass::NotFound, "the change records no instance id (zone/name)")
            })?;
        let current = self.get_instance(&at).await?;
        let (slot, want) = slot_of(request)?;
        let pools = [slot.pool.to_string()];
        let observed = observe(&current, request.project, slot.region, &pools).ok_or_else(|| {
            ProviderError::new(ErrorClass::Conflict, format!("instance {} no longer carries drplan's labels", at.id()))
        })?;
        let differs: Vec<&String> =
            want.iter().filter(|(k, v)| observed.resource.attrs.get(*k) != Some(*v)).map(|(k, _)| k).collect();
        if differs.is_empty() {
            return Ok(observed);
        }
        if differs.iter().all(|k| *k == "state") && attr_str(&want, "state") == Some("running") {
            let what = format!("instance {}", at.id());
            let url = format!("{}/start", self.instance_url(&at));
            match self.api.call(Method::POST, &url, &[], None, &what).await {
                Ok(reply) => {
                    self.wait(&at.zone, &reply.body, &what).await?;
                    let now = self.get_instance(&at).await?;
                    return observe(&now, request.project, slot.region, &pools).ok_or_else(|| {
                        ProviderError::new(ErrorClass::Failed, format!("{what}: unreadable after start"))
                    });
                }
                // The instance was just read: a 404 here means the API has no `start`.
                Err(e) if e.class == ErrorClass::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        self.replace_instance(request).await
    }

    pub(crate) async fn adopt_instance(&self, request: &ApplyRequest<'_>) -> Result<Observed, ProviderError> {
        let (slot, _) = slot_of(request)?;
        let pools = [slot.pool.to_string()];
        for at in self.existing(request).await? {
            match self.get_instance(&at).await {
                Ok(instance) => {
                    if let Some(o) = observe(&instance, request.project, slot.region, &pools) {
                        return Ok(o);
                    }
                }
                Err(e) if e.class == ErrorClass::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Err(ProviderError::new(ErrorClass::NotFound, "no instance carries this address's labels"))
    }
}

/// The slot and wanted attributes of an instance change.
fn slot_of<'a>(request: &'a ApplyRequest<'_>) -> Result<(Slot<'a>, Attrs), ProviderError> {
    let change = request.change;
    let want = match change.action {
        Action::Delete => change.before.clone(),
        _ => change.after.clone().or_else(|| change.before.clone()),
    }
    .unwrap_or_default();
    let region = change
        .region
        .as_deref()
        .ok_or_else(|| ProviderError::new(ErrorClass::Invalid, "an instance change without a region"))?;
    // The address is authoritative for pool and index: `region.R.compute.POOL[INDEX]`.
    let rest = change.address.strip_prefix(&format!("region.{region}.compute.")).unwrap_or("");
    let (pool, index) = rest
        .strip_suffix(']')
        .and_then(|r| r.rsplit_once('['))
        .and_then(|(p, i)| i.parse::<i64>().ok().map(|i| (p, i)))
        .ok_or_else(|| ProviderError::new(ErrorClass::Invalid, "cannot tell the pool and index of this instance"))?;
    Ok((Slot { region, pool, index }, want))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_are_read_back_from_labels_and_metadata() {
        let instance = json!({
            "name": "p-r-web-1", "zone": "https://x/compute/v1/projects/g/zones/europe-west1-b",
            "machineType": "projects/g/zones/europe-west1-b/machineTypes/e2-small", "status": "STOPPING",
            "labels": {"drplan-project": "p", "drplan-region": "eu_1", "drplan-pool": "web-a", "drplan-index": "1"},
            "metadata": {"items": [{"key": "drplan-image", "value": "projects/g/global/images/i"},
                                   {"key": "drplan-pool", "value": "Web.A"}]},
        });
        let o = observe(&instance, "P", "EU_1", &[]).map(|o| (o.id, o.resource.address, o.resource.attrs));
        let (id, addr, a) = o.unwrap_or_default();
        assert_eq!(id, "europe-west1-b/p-r-web-1");
        assert_eq!(addr, "region.EU_1.compute.Web.A[1]");
        assert_eq!(a.get("state"), Some(&"stopped".into()));
        assert_eq!(a.get("instance_type"), Some(&"e2-small".into()));
        assert_eq!(a.get("image"), Some(&"projects/g/global/images/i".into()));
        assert_eq!(a.get("index"), Some(&1i64.into()));
        assert!(observe(&instance, "other", "EU_1", &[]).is_none());
    }
}
