//! Compute Engine instances: one labelled list per region for refresh; insert, delete and
//! replacement for apply. Every call goes through Google's `google-cloud-compute-v1` client.
//!
//! Labels carry the address (`drplan-project`, `drplan-region`, `drplan-pool`,
//! `drplan-index`), sanitized to label rules; metadata items keep the exact region and pool
//! names and the image the boot disk was created from, which Compute Engine does not report
//! on the instance itself.

use std::time::{Duration, Instant};

use drplan_core::plan::resource::{Attrs, Kind, Resource, address, attrs};
use drplan_core::plan::{Action, Observed};
use drplan_core::provider::{ApplyRequest, ErrorClass, ProviderError};
use google_cloud_compute_v1::model::{
    AttachedDisk, AttachedDiskInitializeParams, Instance, Metadata, NetworkInterface, Operation, metadata,
};
use google_cloud_gax::options::RequestOptionsBuilder;

use crate::api::{classify_sdk, operation_error};
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

/// How long one request may take before it counts as unanswered.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

fn labels(project: &str, slot: &Slot<'_>) -> [(&'static str, String); 4] {
    [
        ("drplan-project", label_value(project)),
        ("drplan-region", label_value(slot.region)),
        ("drplan-pool", label_value(slot.pool)),
        ("drplan-index", slot.index.to_string()),
    ]
}

fn metadata_item<'a>(instance: &'a Instance, key: &str) -> Option<&'a str> {
    instance.metadata.as_ref()?.items.iter().find(|i| i.key.as_deref() == Some(key))?.value.as_deref()
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
fn observe(instance: &Instance, project: &str, region: &str, pools: &[String]) -> Option<Observed> {
    let label = |k: &str| instance.labels.get(k).map(String::as_str);
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
    let zone = last_segment(instance.zone.as_deref()?).to_string();
    let name = instance.name.clone()?;
    let disks = &instance.disks;
    let boot_image = disks
        .iter()
        .find(|d| d.boot.unwrap_or(false))
        .or(disks.first())
        .and_then(|d| d.initialize_params.as_ref()?.source_image.as_deref());
    let image = metadata_item(instance, IMAGE_KEY).or(boot_image).unwrap_or("");
    let mut a = attrs([
        ("cloud", "gcp".into()),
        ("pool", pool.as_str().into()),
        ("index", index.into()),
        ("instance_type", last_segment(instance.machine_type.as_deref().unwrap_or("")).into()),
        ("image", image.into()),
        ("state", state_of(instance.status.as_ref().and_then(|s| s.name()).unwrap_or("")).into()),
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
    /// The error of a Compute Engine call, in the engine's terms.
    fn sdk_error(&self, e: &google_cloud_gax::error::Error, what: &str) -> ProviderError {
        classify_sdk(e, &self.compute_host, what)
    }

    /// Every instance of `zone` carrying this project's and region's labels, all pages.
    async fn list_labelled(&self, project: &str, region: &str, zone: &str) -> Result<Vec<Instance>, ProviderError> {
        let filter = format!(
            "(labels.drplan-project = \"{}\") AND (labels.drplan-region = \"{}\")",
            label_value(project),
            label_value(region)
        );
        let what = format!("region {region} (zone {zone})");
        let mut out = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let list = self
                .api
                .retrying(|| async {
                    self.api.count();
                    let mut request = self
                        .instances
                        .list()
                        .set_project(&self.gcp_project)
                        .set_zone(zone)
                        .set_filter(&filter)
                        .set_max_results(500u32)
                        .with_attempt_timeout(ATTEMPT_TIMEOUT);
                    if let Some(token) = &page {
                        request = request.set_page_token(token);
                    }
                    request.send().await.map_err(|e| self.sdk_error(&e, &what))
                })
                .await?;
            out.extend(list.items);
            match list.next_page_token {
                Some(t) if !t.is_empty() => page = Some(t),
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
            let created = instance.creation_timestamp.clone().unwrap_or_default();
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

    async fn get_instance(&self, at: &Located) -> Result<Instance, ProviderError> {
        let what = format!("instance {}", at.id());
        self.api
            .retrying(|| async {
                self.api.count();
                self.instances
                    .get()
                    .set_project(&self.gcp_project)
                    .set_zone(&at.zone)
                    .set_instance(&at.name)
                    .with_attempt_timeout(ATTEMPT_TIMEOUT)
                    .send()
                    .await
                    .map_err(|e| self.sdk_error(&e, &what))
            })
            .await
    }

    /// Waits for a zone operation to finish, within the configured time.
    async fn wait(&self, zone: &str, op: Operation, what: &str) -> Result<(), ProviderError> {
        use google_cloud_compute_v1::model::operation::Status;
        let started = Instant::now();
        let mut op = op;
        let mut pause = Duration::from_millis(200);
        loop {
            if op.status == Some(Status::Done) {
                let first = op.error.as_ref().and_then(|e| e.errors.first());
                return match first {
                    Some(e) => Err(operation_error(
                        e.code.as_deref().unwrap_or("UNKNOWN"),
                        e.message.as_deref().unwrap_or(""),
                        what,
                    )),
                    None => Ok(()),
                };
            }
            let Some(name) = op.name.clone() else {
                return Err(ProviderError::new(ErrorClass::Failed, format!("{what}: the operation has no name")));
            };
            if started.elapsed() >= self.api.limits.operation_timeout {
                return Err(ProviderError::new(
                    ErrorClass::Failed,
                    format!(
                        "{what}: operation {name} not done after {:?} (status {}); it may still finish: \
                         refresh before retrying",
                        self.api.limits.operation_timeout,
                        op.status.as_ref().and_then(|s| s.name()).unwrap_or("unknown")
                    ),
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
            op = self
                .api
                .retrying(|| async {
                    self.api.count();
                    self.operations
                        .get()
                        .set_project(&self.gcp_project)
                        .set_zone(zone)
                        .set_operation(&name)
                        .with_attempt_timeout(ATTEMPT_TIMEOUT)
                        .send()
                        .await
                        .map_err(|e| self.sdk_error(&e, what))
                })
                .await?;
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
        let item = |k: &str, v: &str| metadata::Items::new().set_key(k).set_value(v);
        let body = Instance::new()
            .set_name(&at.name)
            .set_machine_type(format!("zones/{}/machineTypes/{machine}", at.zone))
            .set_disks([AttachedDisk::new()
                .set_boot(true)
                .set_auto_delete(true)
                .set_initialize_params(AttachedDiskInitializeParams::new().set_source_image(image))])
            .set_network_interfaces([NetworkInterface::new().set_network("global/networks/default")])
            .set_labels(labels(project, slot))
            .set_metadata(Metadata::new().set_items([
                item(IMAGE_KEY, image),
                item(REGION_KEY, slot.region),
                item(POOL_KEY, slot.pool),
            ]));
        let request_id = insert_request_id(token, &at.name);
        let inserted = self
            .api
            .retrying(|| async {
                self.api.count();
                self.instances
                    .insert()
                    .set_project(&self.gcp_project)
                    .set_zone(&at.zone)
                    .set_request_id(&request_id)
                    .set_body(body.clone())
                    .with_attempt_timeout(ATTEMPT_TIMEOUT)
                    .send()
                    .await
                    .map_err(|e| self.sdk_error(&e, &what))
            })
            .await;
        match inserted {
            Ok(op) => self.wait(&at.zone, op, &what).await?,
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
        let deleted = self
            .api
            .retrying(|| async {
                self.api.count();
                self.instances
                    .delete()
                    .set_project(&self.gcp_project)
                    .set_zone(&at.zone)
                    .set_instance(&at.name)
                    .with_attempt_timeout(ATTEMPT_TIMEOUT)
                    .send()
                    .await
                    .map_err(|e| self.sdk_error(&e, &what))
            })
            .await;
        match deleted {
            Ok(op) => self.wait(&at.zone, op, &what).await,
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
            let started = self
                .api
                .retrying(|| async {
                    self.api.count();
                    self.instances
                        .start()
                        .set_project(&self.gcp_project)
                        .set_zone(&at.zone)
                        .set_instance(&at.name)
                        .with_attempt_timeout(ATTEMPT_TIMEOUT)
                        .send()
                        .await
                        .map_err(|e| self.sdk_error(&e, &what))
                })
                .await;
            match started {
                Ok(op) => {
                    self.wait(&at.zone, op, &what).await?;
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
        // Read through the client's own deserializer, as a `get` or `list` answer would be.
        let instance: Instance = serde_json::from_value(serde_json::json!({
            "name": "p-r-web-1", "zone": "https://x/compute/v1/projects/g/zones/europe-west1-b",
            "machineType": "projects/g/zones/europe-west1-b/machineTypes/e2-small", "status": "STOPPING",
            "labels": {"drplan-project": "p", "drplan-region": "eu_1", "drplan-pool": "web-a", "drplan-index": "1"},
            "metadata": {"items": [{"key": "drplan-image", "value": "projects/g/global/images/i"},
                                   {"key": "drplan-pool", "value": "Web.A"}]},
        }))
        .unwrap_or_default();
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
