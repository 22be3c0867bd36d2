//! An in-memory cloud that implements [`Provider`], for testing the engine without a
//! network, [`conformance`], the suite every real provider runs against its emulator, and
//! [`kit`], what provider and CLI tests set up the same way.

pub mod conformance;
pub mod kit;

use std::collections::BTreeMap;
use std::sync::Mutex;

use drplan_core::plan::resource::Kind;
use drplan_core::plan::{Action, Observed, Resource, Snapshot};
use drplan_core::provider::{
    ApplyRequest, ErrorClass, Provider, ProviderError, ReadyRequest, RefreshRequest, cloud_of,
};
use drplan_core::recovery::{ObjectMeta, PointContents};

/// A fake cloud holding objects by address, as a real one finds them by their tags.
pub struct FakeProvider {
    name: String,
    /// How long each request takes, as a network round trip would.
    latency: std::time::Duration,
    /// What it manages: a kind, and for instances and buckets the cloud.
    kinds: Vec<(Kind, Option<String>)>,
    cloud: Mutex<Cloud>,
}

#[derive(Default)]
struct Cloud {
    objects: BTreeMap<String, Observed>,
    next_id: u64,
    /// Tokens already used, with the id each created: a retried create returns it.
    tokens: BTreeMap<String, String>,
    unreachable: BTreeMap<String, String>,
    /// Errors to return for an address, consumed one per request.
    faults: BTreeMap<String, Vec<ErrorClass>>,
    calls: Vec<String>,
    ages: BTreeMap<String, u64>,
    /// Addresses that never become ready after a scale-up, with the reason.
    not_ready: BTreeMap<String, String>,
    /// Backup objects by bucket address, then by key (`dr/20261201_070000/db.dump`).
    stored: BTreeMap<String, BTreeMap<String, Stored>>,
}

/// One backup object: its content and what a store's listing says of it.
#[derive(Clone)]
struct Stored {
    content: Vec<u8>,
    md5: Option<String>,
    crc32c: Option<String>,
    modified: i64,
}

impl FakeProvider {
    /// A fake managing every kind on every cloud.
    pub fn everything() -> FakeProvider {
        FakeProvider::new("fake", Kind::ALL.iter().map(|k| (*k, None)).collect())
    }

    pub fn new(name: &str, kinds: Vec<(Kind, Option<String>)>) -> FakeProvider {
        FakeProvider {
            name: name.to_string(),
            latency: std::time::Duration::ZERO,
            kinds,
            cloud: Mutex::new(Cloud::default()),
        }
    }

    /// Every request takes `latency` (for benchmarks of the apply scheduler).
    pub fn with_latency(mut self, latency: std::time::Duration) -> FakeProvider {
        self.latency = latency;
        self
    }

    fn cloud(&self) -> std::sync::MutexGuard<'_, Cloud> {
        // A panicking test thread poisons the lock; the data is still the test's to inspect.
        self.cloud.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `region` unreachable (or reachable again with `None`).
    pub fn set_unreachable(&self, region: &str, reason: Option<&str>) {
        let mut c = self.cloud();
        match reason {
            Some(r) => c.unreachable.insert(region.to_string(), r.to_string()),
            None => c.unreachable.remove(region),
        };
    }

    /// Makes what is applied at `address` never become ready (a rollout that never
    /// completes), with `reason`.
    pub fn never_ready(&self, address: &str, reason: &str) {
        self.cloud().not_ready.insert(address.to_string(), reason.to_string());
    }

    /// The next requests about `address` fail with these classes, in order.
    pub fn inject(&self, address: &str, faults: &[ErrorClass]) {
        self.cloud().faults.entry(address.to_string()).or_default().extend_from_slice(faults);
    }

    /// Changes an object behind drplan's back, as a person with a console would.
    pub fn tamper(&self, address: &str, f: impl FnOnce(&mut Observed)) {
        if let Some(o) = self.cloud().objects.get_mut(address) {
            f(o);
        }
    }

    /// Puts an object in place directly, as something other than drplan would (a deploy
    /// pipeline creating the Deployments drplan later scales).
    pub fn put(&self, object: Observed) {
        self.cloud().objects.insert(object.resource.address.clone(), object);
    }

    pub fn remove(&self, address: &str) -> Option<Observed> {
        self.cloud().objects.remove(address)
    }

    pub fn set_backup_age(&self, address: &str, seconds: u64) {
        self.cloud().ages.insert(address.to_string(), seconds);
    }

    pub fn objects(&self) -> BTreeMap<String, Observed> {
        self.cloud().objects.clone()
    }

    /// Stores a backup object at `key` (the full key, prefix included) in the bucket of
    /// destination `bucket` (its address, `backup.NAME.destination.DEST`), as a backup
    /// would: `md5` is what the store would report (lowercase hex), `None` as for an S3
    /// multipart upload; `modified` in seconds since the epoch.
    pub fn put_object(&self, bucket: &str, key: &str, content: &[u8], md5: Option<&str>, modified: i64) {
        let stored = Stored { content: content.to_vec(), md5: md5.map(str::to_string), crc32c: None, modified };
        self.cloud().stored.entry(bucket.to_string()).or_default().insert(key.to_string(), stored);
    }

    /// Sets the CRC32C (base64) the store reports for an object already put.
    pub fn set_crc32c(&self, bucket: &str, key: &str, crc32c: &str) {
        if let Some(o) = self.cloud().stored.get_mut(bucket).and_then(|b| b.get_mut(key)) {
            o.crc32c = Some(crc32c.to_string());
        }
    }

    /// Removes a backup object; whether it was there.
    pub fn remove_object(&self, bucket: &str, key: &str) -> bool {
        self.cloud().stored.get_mut(bucket).and_then(|b| b.remove(key)).is_some()
    }

    /// Every request so far, as `refresh` or `<action> <address>`.
    pub fn calls(&self) -> Vec<String> {
        self.cloud().calls.clone()
    }
}

impl Provider for FakeProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn manages(&self, kind: Kind, cloud: Option<&str>) -> bool {
        self.kinds.iter().any(|(k, c)| *k == kind && (c.is_none() || c.as_deref() == cloud))
    }

    async fn refresh(&self, request: &RefreshRequest<'_>) -> Result<Snapshot, ProviderError> {
        let mut c = self.cloud();
        c.calls.push("refresh".into());
        let in_scope = |o: &Observed| o.resource.region.as_ref().is_none_or(|r| request.regions.contains(r));
        let objects = c
            .objects
            .iter()
            .filter(|(_, o)| in_scope(o) && self.manages(o.resource.kind, o.resource.str("cloud")))
            .filter(|(_, o)| o.resource.region.as_ref().is_none_or(|r| !c.unreachable.contains_key(r)))
            .map(|(a, o)| (a.clone(), o.clone()))
            .collect();
        let unreachable = c
            .unreachable
            .iter()
            .filter(|(r, _)| request.regions.contains(r))
            .map(|(r, w)| (r.clone(), w.clone()))
            .collect();
        Ok(Snapshot { objects, unreachable, newest_backup_age: c.ages.clone(), ..Snapshot::default() })
    }

    async fn list_points(&self, bucket: &Resource) -> Result<(Vec<String>, u32), ProviderError> {
        let mut c = self.cloud();
        let address = &bucket.address;
        c.calls.push(format!("list_points {address}"));
        c.fault(address)?;
        let prefix = folder(bucket);
        let mut names: Vec<String> = c
            .stored
            .get(address)
            .into_iter()
            .flat_map(|b| b.keys())
            .filter_map(|k| k.strip_prefix(prefix.as_str())?.split_once('/'))
            .map(|(point, _)| point.to_string())
            .filter(|p| !p.is_empty())
            .collect();
        names.dedup();
        // Like a store's delimiter listing: one call per 1,000 names.
        Ok((names.clone(), names.len().div_ceil(1_000).max(1) as u32))
    }

    async fn read_point(
        &self,
        bucket: &Resource,
        point: &str,
        manifest: Option<&str>,
    ) -> Result<PointContents, ProviderError> {
        let mut c = self.cloud();
        let address = &bucket.address;
        c.calls.push(format!("read_point {address} {point}"));
        c.fault(address)?;
        let folder = format!("{}{point}/", folder(bucket));
        let mut contents = PointContents::default();
        for (key, o) in c.stored.get(address).into_iter().flatten() {
            let Some(name) = key.strip_prefix(folder.as_str()).filter(|n| !n.is_empty()) else { continue };
            if manifest == Some(name) {
                contents.manifest = Some(o.content.clone());
            }
            contents.objects.push(ObjectMeta {
                name: name.to_string(),
                size: o.content.len() as u64,
                md5: o.md5.clone(),
                crc32c: o.crc32c.clone(),
                modified: o.modified,
                class: None,
            });
        }
        Ok(contents)
    }

    async fn wait_ready(&self, request: &ReadyRequest<'_>) -> Result<(), ProviderError> {
        let address = &request.change.address;
        let why = self.cloud().not_ready.get(address).cloned();
        self.cloud().calls.push(format!("wait_ready {address}"));
        match why {
            Some(why) => {
                (request.progress)("0/1 ready".to_string());
                Err(ProviderError::new(ErrorClass::Failed, why).at(address))
            }
            None => Ok(()),
        }
    }

    /// One request, retried as a real provider's are: through the one executor, in the
    /// apply phase (an injected throttle is retried with backoff, an unreachable region three
    /// times a second apart).
    async fn apply(&self, request: &ApplyRequest<'_>) -> Result<Option<Observed>, ProviderError> {
        drplan_retry::applying(drplan_retry::run(&drplan_retry::RetryPolicy::DEFAULT, || self.apply_once(request)))
            .await
    }
}

impl FakeProvider {
    async fn apply_once(&self, request: &ApplyRequest<'_>) -> Result<Option<Observed>, ProviderError> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let change = request.change;
        let address = change.address.as_str();
        let mut c = self.cloud();
        c.calls.push(format!("{} {address}", change.action.as_str()));
        if !self.manages(change.kind, cloud_of(change)) {
            return Err(ProviderError::new(
                ErrorClass::Invalid,
                format!("{} does not manage {}", self.name, change.kind),
            )
            .at(address));
        }
        if let Some(region) = change.region.as_ref().filter(|r| c.unreachable.contains_key(*r)) {
            let why = c.unreachable[region].clone();
            return Err(ProviderError::new(ErrorClass::Unreachable, format!("region {region}: {why}")).at(address));
        }
        c.fault(address)?;
        let resource = |attrs: &drplan_core::plan::Attrs| Resource {
            address: address.to_string(),
            kind: change.kind,
            region: change.region.clone(),
            attrs: attrs.clone(),
        };
        match change.action {
            Action::Create | Action::Replace => {
                if let Some(id) = c.tokens.get(request.idempotency_token).cloned()
                    && let Some(o) = c.objects.get(address).filter(|o| o.id == id)
                {
                    return Ok(Some(o.clone()));
                }
                // Same identity already there (a crashed run made it): adopt, never duplicate.
                if change.action == Action::Create
                    && let Some(o) = c.objects.get(address)
                {
                    return Ok(Some(o.clone()));
                }
                let after = change
                    .after
                    .as_ref()
                    .ok_or_else(|| ProviderError::new(ErrorClass::Invalid, "a create needs attributes").at(address))?;
                c.next_id += 1;
                let id = format!("fake-{}", c.next_id);
                let o = Observed { resource: resource(after), id: id.clone() };
                c.tokens.insert(request.idempotency_token.to_string(), id);
                c.objects.insert(address.to_string(), o.clone());
                Ok(Some(o))
            }
            Action::Update => {
                let after = change
                    .after
                    .as_ref()
                    .ok_or_else(|| ProviderError::new(ErrorClass::Invalid, "an update needs attributes").at(address))?;
                let Some(o) = c.objects.get_mut(address) else {
                    return Err(ProviderError::new(ErrorClass::NotFound, "no such object").at(address));
                };
                for (k, v) in after {
                    o.resource.attrs.insert(k.clone(), v.clone());
                }
                Ok(Some(o.clone()))
            }
            // Deleting a workload stops managing it, as on a cluster: the pipeline made the
            // Deployment and it stays, at its last scale.
            Action::Delete if change.kind == Kind::Workload => Ok(None),
            Action::Delete => {
                c.objects.remove(address);
                Ok(None)
            }
            Action::Adopt => c
                .objects
                .get(address)
                .cloned()
                .map(Some)
                .ok_or_else(|| ProviderError::new(ErrorClass::NotFound, "nothing to adopt").at(address)),
        }
    }
}

impl Cloud {
    /// The next injected fault for `address`, consumed.
    fn fault(&mut self, address: &str) -> Result<(), ProviderError> {
        match self.faults.get_mut(address) {
            Some(queue) if !queue.is_empty() => {
                let class = queue.remove(0);
                Err(ProviderError::new(class, "injected fault").at(address))
            }
            _ => Ok(()),
        }
    }
}

/// A destination's prefix as a folder: `dr` and `dr/` both hold points `dr/NAME/`.
fn folder(bucket: &Resource) -> String {
    match bucket.str("prefix").unwrap_or_default() {
        "" => String::new(),
        p if p.ends_with('/') => p.to_string(),
        p => format!("{p}/"),
    }
}
