//! The data tier's steps on AWS: each RDS member read (one DescribeDBInstances per region,
//! the replicas' lag in one GetMetricData per region), a replica promoted, an old writer
//! fenced (renamed and kept, never deleted) and re-protected by a new replica under its
//! name, and the catch-up a planned failover waits for.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use drplan_core::plan::data::{Lag, kept_name, source_name};
use drplan_core::plan::resource::{Kind, Resource, attrs};
use drplan_core::plan::{Action, Change, Observed, Value};
use drplan_core::provider::{ApplyRequest, ErrorClass, ProviderError, ReadyRequest};

use crate::AwsProvider;
use crate::rds::{DbInstance, LagSample};

/// How long a promotion, a rename or a new replica may take to become available.
const AVAILABLE_WITHIN: Duration = Duration::from_secs(30 * 60);
/// How often a catch-up reads the lag again: every 5 s, or every period when periods are
/// shorter (a new datapoint comes once a period).
fn catch_up_poll() -> Duration {
    Duration::from_secs(crate::rds::lag_period().clamp(1, 5) as u64)
}

/// What a refresh of the data tier saw.
#[derive(Default)]
pub struct Seen {
    pub objects: Vec<Observed>,
    pub replication: BTreeMap<String, Lag>,
    /// Regions whose RDS API did not answer, with the reason.
    pub unreachable: BTreeMap<String, String>,
}

fn text<'a>(r: &'a Resource, k: &str) -> &'a str {
    r.str(k).unwrap_or_default()
}

/// The RDS members the configuration wants, by region.
fn wanted(desired: &[Resource]) -> BTreeMap<&str, Vec<&Resource>> {
    let mut out: BTreeMap<&str, Vec<&Resource>> = BTreeMap::new();
    for r in desired.iter().filter(|r| r.kind == Kind::Database && r.str("kind") == Some("rds_instance")) {
        if let Some(region) = r.region.as_deref() {
            out.entry(region).or_default().push(r);
        }
    }
    out
}

/// `region/identifier` of the source an instance of `region` names (an ARN across regions).
fn source_of(db: &DbInstance) -> Option<String> {
    let s = db.source.as_deref()?;
    Some(match s.split(':').collect::<Vec<_>>()[..] {
        ["arn", _, "rds", region, _, "db", id] => source_name(region, &id.to_ascii_lowercase()),
        _ => source_name(&db.region, &s.to_ascii_lowercase()),
    })
}

/// A member as it is, in the desired resource's terms.
fn observed(want: &Resource, db: &DbInstance) -> Observed {
    let mut a = attrs([
        ("cloud", "aws".into()),
        ("kind", "rds_instance".into()),
        ("engine", db.engine.as_str().into()),
        ("identifier", db.identifier.as_str().into()),
    ]);
    match source_of(db) {
        Some(source) => {
            a.insert("role".into(), "replica".into());
            a.insert("source".into(), source.into());
        }
        None => {
            a.insert("role".into(), "writer".into());
        }
    }
    Observed {
        resource: Resource {
            address: want.address.clone(),
            kind: Kind::Database,
            region: want.region.clone(),
            attrs: a,
        },
        id: db.arn.clone(),
    }
}

fn lag(sample: LagSample) -> Lag {
    Lag { seconds: sample.seconds.map(|s| s.ceil() as u64), at: sample.at }
}

impl AwsProvider {
    /// Every RDS member the configuration wants, as it is, with each replica's lag.
    pub(crate) async fn refresh_databases(&self, desired: &[Resource], now: i64) -> Result<Seen, ProviderError> {
        let wanted = wanted(desired);
        let reads = wanted.iter().map(|(region, members)| async move {
            let instances = self.db_instances(region).await?;
            let found: Vec<(&Resource, DbInstance)> = members
                .iter()
                .filter_map(|m| {
                    let db = instances.iter().find(|db| db.identifier.eq_ignore_ascii_case(text(m, "identifier")))?;
                    Some((*m, db.clone()))
                })
                .collect();
            let replicas: Vec<String> =
                found.iter().filter(|(_, db)| db.source.is_some()).map(|(_, db)| db.identifier.clone()).collect();
            let lags = match replicas.is_empty() {
                true => BTreeMap::new(),
                false => self.replica_lag(region, &replicas, now).await?,
            };
            Ok::<_, ProviderError>((found, lags))
        });
        let results = futures_util::future::join_all(reads).await;
        let mut seen = Seen::default();
        for ((region, _), result) in wanted.iter().zip(results) {
            match result {
                Ok((found, lags)) => {
                    for (want, db) in found {
                        if let Some(sample) = lags.get(&db.identifier) {
                            seen.replication.insert(want.address.clone(), lag(*sample));
                        }
                        seen.objects.push(observed(want, &db));
                    }
                }
                Err(e) if e.class == ErrorClass::Unreachable => {
                    seen.unreachable.insert((*region).to_string(), e.message);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(seen)
    }

    /// A change to an RDS member, or the start of a catch-up.
    pub(crate) async fn apply_database(&self, request: &ApplyRequest<'_>) -> Result<Option<Observed>, ProviderError> {
        let change = request.change;
        let region = change
            .region
            .as_deref()
            .ok_or_else(|| ProviderError::new(ErrorClass::Invalid, "a database change names no region"))?;
        let after = |k: &str| change.after.as_ref().and_then(|a| a.get(k)).and_then(Value::text).unwrap_or_default();
        if after("kind") != "rds_instance" {
            return Err(ProviderError::new(
                ErrorClass::Invalid,
                format!("drplan manages RDS instances on AWS; `{}` members are not supported yet", after("kind")),
            ));
        }
        let identifier = after("identifier");
        let want = Resource {
            address: change.address.clone(),
            kind: Kind::Database,
            region: Some(region.to_string()),
            attrs: change.after.clone().unwrap_or_default(),
        };
        let quiet = |_: String| {};
        if change.kind == Kind::CatchUp {
            // Nothing to call: the wait (`wait_ready`) is the step. The replica must exist.
            self.db_instance(region, identifier).await?.ok_or_else(|| {
                ProviderError::new(
                    ErrorClass::NotFound,
                    format!("RDS instance {identifier} in {region} does not exist"),
                )
            })?;
            let mut o = want.clone();
            o.kind = Kind::CatchUp;
            o.attrs.insert("status".into(), "running".into());
            return Ok(Some(Observed { resource: o, id: format!("{region}/{identifier}") }));
        }
        match change.action {
            Action::Adopt => {
                let db = self.db_instance(region, identifier).await?.ok_or_else(|| {
                    ProviderError::new(
                        ErrorClass::NotFound,
                        format!("RDS instance {identifier} in {region} does not exist"),
                    )
                })?;
                Ok(Some(observed(&want, &db)))
            }
            Action::Update if after("role") == "writer" => {
                self.promote_replica(region, identifier).await?;
                let db = self.wait_available(region, identifier, AVAILABLE_WITHIN, &quiet).await?;
                Ok(Some(observed(&want, &db)))
            }
            Action::Create | Action::Replace | Action::Update => {
                let (source_region, source_id) = after("source")
                    .split_once('/')
                    .ok_or_else(|| ProviderError::new(ErrorClass::Invalid, "a replica names no source"))?;
                let source = self.db_instance(source_region, source_id).await?.ok_or_else(|| {
                    ProviderError::new(
                        ErrorClass::NotFound,
                        format!("the writer {source_id} in {source_region} does not exist: nothing to replicate from"),
                    )
                })?;
                if source.source.is_some() {
                    return Err(ProviderError::new(
                        ErrorClass::Invalid,
                        format!(
                            "{source_id} in {source_region} is still a replica: it must be the writer before {identifier} replicates from it"
                        ),
                    ));
                }
                // The instance standing under the name now is fenced first: renamed and kept,
                // so that its data stays and nothing reaches it by its old endpoint.
                let like = match self.db_instance(region, identifier).await? {
                    Some(current) if change.action != Action::Create => {
                        let kept = kept_name(identifier, request.idempotency_token);
                        self.rename_instance(region, identifier, &kept).await?;
                        self.wait_available(region, &kept, AVAILABLE_WITHIN, &quiet).await?;
                        current
                    }
                    Some(current) if current.source.is_some() => return Ok(Some(observed(&want, &current))),
                    Some(_) => {
                        return Err(ProviderError::new(
                            ErrorClass::Conflict,
                            format!("{identifier} in {region} exists and is not a replica"),
                        ));
                    }
                    None => DbInstance { class: source.class.clone(), ..DbInstance::default() },
                };
                let created = self.create_replica(region, identifier, &source.arn, &like).await?;
                Ok(Some(observed(&want, &created)))
            }
            Action::Delete => Err(ProviderError::new(
                ErrorClass::Invalid,
                format!("drplan never deletes a database: {} is kept", change.address),
            )),
        }
    }

    /// Waits until the replica of a catch-up has every write: a lag sample of 0 stamped at or
    /// after the moment the wait began (the writers were stopped before it), within the
    /// step's `timeout_seconds`.
    pub(crate) async fn catch_up(&self, request: &ReadyRequest<'_>) -> Result<(), ProviderError> {
        let change: &Change = request.change;
        let after = |k: &str| change.after.as_ref().and_then(|a| a.get(k)).cloned();
        let region = change.region.clone().unwrap_or_default();
        let identifier = after("identifier").and_then(|v| v.text().map(str::to_string)).unwrap_or_default();
        let timeout = match after("timeout_seconds") {
            Some(Value::Int(s)) if s > 0 => Duration::from_secs(s as u64),
            _ => request.timeout,
        };
        // The first whole second after the writers stopped: a sample stamped then or later
        // was taken with every write sent.
        let since = now_ceil();
        let started = Instant::now();
        let mut said = String::new();
        let source = after("source").and_then(|v| v.text().map(str::to_string)).unwrap_or_default();
        let (source_region, source_id) = source.split_once('/').unwrap_or_default();
        loop {
            // The old writer's region going dark mid-switchover is a disaster now, not a
            // catch-up to wait out: stop, and let a new plan judge the data-loss window.
            if let Err(e) = self.db_instance(source_region, source_id).await
                && e.class == ErrorClass::Unreachable
            {
                return Err(ProviderError::new(
                    ErrorClass::Unreachable,
                    format!(
                        "{source_region} stopped answering during the catch-up ({}); nothing was promoted: plan again, and the plan judges the promotion as ungraceful with its data-loss window",
                        e.message
                    ),
                ));
            }
            let lags = self.replica_lag(&region, std::slice::from_ref(&identifier), now()).await?;
            let sample = lags.get(&identifier).copied().unwrap_or_default();
            if sample.seconds == Some(0.0) && sample.at.is_some_and(|at| at >= since) {
                return Ok(());
            }
            let now_text = match (sample.seconds, sample.at) {
                (Some(s), Some(at)) if at >= since => format!("{s:.0}s behind"),
                (_, Some(_)) => "waiting for a sample taken after the stop".to_string(),
                _ => "no lag sample yet".to_string(),
            };
            if now_text != said {
                (request.progress)(format!("{now_text} ({}s)", started.elapsed().as_secs()));
                said = now_text;
            }
            if started.elapsed() + catch_up_poll() > timeout {
                return Err(ProviderError::new(
                    ErrorClass::Failed,
                    format!(
                        "{identifier} in {region} did not catch up within {}s ({said}); nothing was promoted",
                        timeout.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(catch_up_poll()).await;
        }
    }
}

fn now_ceil() -> i64 {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    (ms + 999) / 1000
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
