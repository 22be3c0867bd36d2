//! Discovering recovery points: list each backup destination's points (one delimiter listing),
//! then examine them newest first (one listing and one manifest read each) until a usable one
//! is found, at most [`recovery::EXAMINE_AT_MOST`] per destination. What is usable, and which
//! point a restore takes, is core's ([`drplan_core::recovery`]). Buckets are read through
//! their cloud's provider; a NAS mounted here as a file system ([`crate::nas`]), or through
//! its S3-compatible endpoint; a NAS reached neither way is not listed.

use std::collections::BTreeMap;

use drplan_core::config::{Config, Target};
use drplan_core::plan::resource::{Resource, address};
use drplan_core::provider::{ErrorClass, Provider, ProviderError};
use drplan_core::recovery::{self, Catalog, Point, PointContents, PointStatus};
use drplan_provider_aws::NasStore;

/// Where a destination's points are read.
enum Store<'a, P> {
    /// A bucket, through its cloud's provider.
    Cloud(&'a P, &'a Resource),
    /// A NAS mounted where drplan runs.
    Dir(std::path::PathBuf),
    /// A NAS behind an S3-compatible endpoint.
    Nas(NasStore),
}

impl<P: Provider> Store<'_, P> {
    async fn list(&self) -> Result<(Vec<String>, u32), ProviderError> {
        match self {
            Store::Cloud(provider, bucket) => provider.list_points(bucket).await,
            Store::Dir(path) => {
                let path = path.clone();
                blocking(move || crate::nas::list_points(&path)).await
            }
            Store::Nas(store) => store.list_points().await,
        }
    }

    async fn read(&self, point: &str, manifest: Option<&str>) -> Result<PointContents, ProviderError> {
        match self {
            Store::Cloud(provider, bucket) => provider.read_point(bucket, point, manifest).await,
            Store::Dir(path) => {
                let (path, point, manifest) = (path.clone(), point.to_owned(), manifest.map(str::to_owned));
                blocking(move || crate::nas::read_point(&path, &point, manifest.as_deref())).await
            }
            Store::Nas(store) => store.read_point(point, manifest).await,
        }
    }
}

/// Runs file system work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ProviderError> + Send + 'static,
) -> Result<T, ProviderError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(ProviderError::new(ErrorClass::Failed, format!("reading the share stopped: {e}"))))
}

/// Which points discovery makes sure to examine besides the newest usable one.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    /// A `--restore-point`: the newest usable point at or before it.
    pub at: Option<i64>,
    /// The incidents' windows (from `since` to the close): points written during one are
    /// suspect (by the storage's own times), and the newest clean one before each is
    /// examined too.
    pub suspect: Vec<(i64, i64)>,
}

/// Every S3 and GCS destination's catalog, by bucket address. `unreachable` holds the bucket
/// addresses the refresh could not read (their listing is not tried again). Points newer than
/// `now` are ignored; `at` (a `--restore-point`) makes sure the newest usable point at or
/// before it is examined as well.
pub async fn discover<P: Provider>(
    provider: &P,
    config: &Config,
    desired: &[Resource],
    unreachable: &BTreeMap<String, String>,
    now: i64,
    wanted: Wanted,
) -> BTreeMap<String, Catalog> {
    let buckets: BTreeMap<&str, &Resource> = desired
        .iter()
        .filter(|r| r.kind.spec().phase == drplan_core::plan::step::Phase::Storage)
        .map(|r| (r.address.as_str(), r))
        .collect();
    let mut work = Vec::new();
    for b in &config.backups {
        for d in &b.destinations {
            let at_address = address::bucket(&b.name, &d.name);
            // A folder: a point's URI is this and its name.
            let mut uri = d.target.uri();
            if !uri.ends_with('/') {
                uri.push('/');
            }
            let (store, tier) = match &d.target {
                Target::S3 { restore_tier, .. } => {
                    let Some(bucket) = buckets.get(at_address.as_str()).copied() else { continue };
                    (Store::Cloud(provider, bucket), *restore_tier)
                }
                Target::Gcs { .. } => {
                    let Some(bucket) = buckets.get(at_address.as_str()).copied() else { continue };
                    (Store::Cloud(provider, bucket), recovery::Tier::default())
                }
                // Not mounted here: not listed (the posture says so).
                Target::Nas { path: Some(path), .. } if !crate::nas::mounted(std::path::Path::new(path)) => continue,
                Target::Nas { path: Some(path), .. } => (Store::Dir(path.into()), recovery::Tier::default()),
                Target::Nas { s3: Some(s3), .. } => {
                    let store = NasStore::connect(&s3.endpoint, &s3.region, &s3.bucket, &s3.prefix).await;
                    (Store::Nas(store), recovery::Tier::default())
                }
                Target::Nas { .. } => continue,
            };
            let wanted = wanted.clone();
            work.push(async move {
                let mut catalog = Catalog {
                    destination: at_address.clone(),
                    cloud: d.target.site().to_string(),
                    uri,
                    points: Vec::new(),
                    unreachable: unreachable.get(&at_address).cloned(),
                    calls: 0,
                    tier,
                };
                if catalog.unreachable.is_none() {
                    examine(&store, b, &mut catalog, now, wanted).await;
                }
                (at_address, catalog)
            });
        }
    }
    futures_util::future::join_all(work).await.into_iter().collect()
}

async fn examine<P: Provider>(
    store: &Store<'_, P>,
    backup: &drplan_core::config::Backup,
    catalog: &mut Catalog,
    now: i64,
    wanted: Wanted,
) {
    let Wanted { at, suspect } = wanted;
    let names = match store.list().await {
        Ok((names, calls)) => {
            catalog.calls += calls;
            names
        }
        // A bucket not created yet holds nothing, which the RPO check reports.
        Err(e) if e.class == ErrorClass::NotFound => return,
        Err(e) => {
            catalog.unreachable = Some(e.cause());
            return;
        }
    };
    catalog.points = names
        .into_iter()
        .map(|name| Point {
            time: backup.point_format.time_of(&name),
            name,
            status: PointStatus::NotExamined,
            objects: None,
            bytes: None,
            archive: None,
            ..Point::default()
        })
        .collect();
    // Names that give no time are dated by their newest object, which takes a listing each:
    // bounded like the rest.
    let mut budget = recovery::EXAMINE_AT_MOST;
    for p in catalog.points.iter_mut().filter(|p| p.time.is_none()) {
        if budget == 0 {
            break;
        }
        budget -= 1;
        read(store, backup, p, &mut catalog.calls).await;
    }
    sort(&mut catalog.points);
    recovery::mark_suspect(&mut catalog.points, &suspect);
    let before_incidents = suspect.iter().map(|(from, _)| from - 1).filter(|s| *s < now);
    for limit in std::iter::once(now).chain(at.filter(|a| *a < now)).chain(before_incidents) {
        let mut looked = 0;
        for p in catalog.points.iter_mut().filter(|p| p.time.is_some_and(|t| t <= limit)) {
            // A suspect point is passed over for the newest clean one.
            if p.status.usable() && (!p.suspect || limit == now) {
                break;
            }
            if p.status != PointStatus::NotExamined {
                continue;
            }
            if looked == recovery::EXAMINE_AT_MOST {
                break;
            }
            looked += 1;
            read(store, backup, p, &mut catalog.calls).await;
            recovery::mark_suspect(std::slice::from_mut(p), &suspect);
            if let PointStatus::Corrupt(why) = &p.status {
                tracing::warn!(point = %p.name, reason = %why, "corrupt recovery point");
            }
            if p.status.usable() && (!p.suspect || limit == now) {
                break;
            }
        }
    }
}

/// Reads one point and judges it; a read that fails leaves it corrupt, with the reason.
async fn read<P: Provider>(store: &Store<'_, P>, backup: &drplan_core::config::Backup, p: &mut Point, calls: &mut u32) {
    *calls += 1 + u32::from(backup.manifest.is_some());
    match store.read(&p.name, backup.manifest.as_deref()).await {
        Ok(contents) => {
            p.objects = Some(contents.objects.len() as u64);
            p.bytes = Some(contents.objects.iter().map(|o| o.size).sum());
            if p.time.is_none() {
                p.time = recovery::time_from_objects(&contents);
            }
            p.written = recovery::written_from_objects(&contents);
            p.status = recovery::verify(&contents, backup.manifest.as_deref());
            p.archive = contents.archived();
        }
        Err(e) => p.status = PointStatus::Corrupt(format!("cannot be read: {}", e.cause())),
    }
}

/// Newest first; undated points last, by name.
fn sort(points: &mut [Point]) {
    points.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.name.cmp(&a.name)));
}
