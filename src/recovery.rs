//! Discovering recovery points: list each backup destination's points (one delimiter listing),
//! then examine them newest first (one listing and one manifest read each) until a usable one
//! is found, at most [`recovery::EXAMINE_AT_MOST`] per destination. What is usable, and which
//! point a restore takes, is core's ([`drplan_core::recovery`]).

use std::collections::BTreeMap;

use drplan_core::config::{Config, Target};
use drplan_core::plan::resource::{Resource, address};
use drplan_core::provider::{ErrorClass, Provider};
use drplan_core::recovery::{self, Catalog, Point, PointStatus};

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
    at: Option<i64>,
) -> BTreeMap<String, Catalog> {
    let buckets: BTreeMap<&str, &Resource> = desired
        .iter()
        .filter(|r| r.kind.spec().phase == drplan_core::plan::step::Phase::Storage)
        .map(|r| (r.address.as_str(), r))
        .collect();
    let mut work = Vec::new();
    for b in &config.backups {
        for d in &b.destinations {
            let (uri, tier) = match &d.target {
                Target::S3 { bucket, prefix, restore_tier, .. } => (format!("s3://{bucket}/{prefix}"), *restore_tier),
                Target::Gcs { bucket, prefix, .. } => (format!("gs://{bucket}/{prefix}"), recovery::Tier::default()),
                Target::Nas { .. } => continue,
            };
            let at_address = address::bucket(&b.name, &d.name);
            let Some(bucket) = buckets.get(at_address.as_str()).copied() else { continue };
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
                    examine(provider, bucket, b, &mut catalog, now, at).await;
                }
                (at_address, catalog)
            });
        }
    }
    futures_util::future::join_all(work).await.into_iter().collect()
}

async fn examine<P: Provider>(
    provider: &P,
    bucket: &Resource,
    backup: &drplan_core::config::Backup,
    catalog: &mut Catalog,
    now: i64,
    at: Option<i64>,
) {
    let names = match provider.list_points(bucket).await {
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
        read(provider, bucket, backup, p, &mut catalog.calls).await;
    }
    sort(&mut catalog.points);
    for limit in std::iter::once(now).chain(at.filter(|a| *a < now)) {
        let mut looked = 0;
        for p in catalog.points.iter_mut().filter(|p| p.time.is_some_and(|t| t <= limit)) {
            if p.status.usable() {
                break;
            }
            if p.status != PointStatus::NotExamined {
                continue;
            }
            if looked == recovery::EXAMINE_AT_MOST {
                break;
            }
            looked += 1;
            read(provider, bucket, backup, p, &mut catalog.calls).await;
            if let PointStatus::Corrupt(why) = &p.status {
                tracing::warn!(point = %p.name, reason = %why, "corrupt recovery point");
            }
            if p.status.usable() {
                break;
            }
        }
    }
}

/// Reads one point and judges it; a read that fails leaves it corrupt, with the reason.
async fn read<P: Provider>(
    provider: &P,
    bucket: &Resource,
    backup: &drplan_core::config::Backup,
    p: &mut Point,
    calls: &mut u32,
) {
    *calls += 1 + u32::from(backup.manifest.is_some());
    match provider.read_point(bucket, &p.name, backup.manifest.as_deref()).await {
        Ok(contents) => {
            p.objects = Some(contents.objects.len() as u64);
            p.bytes = Some(contents.objects.iter().map(|o| o.size).sum());
            if p.time.is_none() {
                p.time = recovery::time_from_objects(&contents);
            }
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
