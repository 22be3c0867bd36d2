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
use crate::aurora::{self, AuroraCluster};
use crate::rds::{DbInstance, LagMetric, LagSample};

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

/// The RDS and Aurora members the configuration wants, by region.
fn wanted(desired: &[Resource]) -> BTreeMap<&str, Vec<&Resource>> {
    let mut out: BTreeMap<&str, Vec<&Resource>> = BTreeMap::new();
    let ours = |r: &&Resource| matches!(r.str("kind"), Some("rds_instance" | "aurora_cluster"));
    for r in desired.iter().filter(|r| r.kind == Kind::Database).filter(ours) {
        if let Some(region) = r.region.as_deref() {
            out.entry(region).or_default().push(r);
        }
    }
    out
}

/// `region/identifier` of a source as a member of `region` names it (an ARN across regions,
/// of an instance or a cluster).
fn source_named(source: Option<&str>, region: &str) -> Option<String> {
    let s = source?;
    Some(match s.split(':').collect::<Vec<_>>()[..] {
        ["arn", _, "rds", region, _, "db" | "cluster", id] => source_name(region, &id.to_ascii_lowercase()),
        _ => source_name(region, &s.to_ascii_lowercase()),
    })
}

/// An Aurora cluster as a member, in the desired resource's terms (`aurora-mysql` is the
/// `mysql` engine).
fn observed_cluster(want: &Resource, c: &AuroraCluster) -> Observed {
    let engine = c.engine.strip_prefix("aurora-").unwrap_or(&c.engine);
    member(want, "aurora_cluster", engine, &c.identifier, c.source.as_deref(), &c.region, &c.arn)
}

/// An RDS instance as a member, in the desired resource's terms.
fn observed(want: &Resource, db: &DbInstance) -> Observed {
    member(want, "rds_instance", &db.engine, &db.identifier, db.source.as_deref(), &db.region, &db.arn)
}

/// A member of `kind` read in `region`: a replica when it names a source, else the writer.
fn member(
    want: &Resource,
    kind: &str,
    engine: &str,
    identifier: &str,
    source: Option<&str>,
    region: &str,
    arn: &str,
) -> Observed {
    let mut a = attrs([
        ("cloud", "aws".into()),
        ("kind", kind.into()),
        ("engine", engine.into()),
        ("identifier", identifier.into()),
    ]);
    match source_named(source, region) {
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
        id: arn.to_string(),
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
            let is = |k: &'static str| move |m: &&&Resource| m.str("kind") == Some(k);
            let any = |k: &'static str| members.iter().any(|m| m.str("kind") == Some(k));
            let mut found: Vec<Observed> = Vec::new();
            let mut lags: BTreeMap<String, LagSample> = BTreeMap::new();
            if any("rds_instance") {
                let instances = self.db_instances(region).await?;
                let mut replicas = Vec::new();
                for m in members.iter().filter(is("rds_instance")) {
                    let Some(db) =
                        instances.iter().find(|db| db.identifier.eq_ignore_ascii_case(text(m, "identifier")))
                    else {
                        continue;
                    };
                    if db.source.is_some() {
                        replicas.push((m.address.clone(), db.identifier.clone()));
                    }
                    found.push(observed(m, db));
                }
                let ids: Vec<String> = replicas.iter().map(|(_, id)| id.clone()).collect();
                if !ids.is_empty() {
                    let read = self.replica_lag(region, &ids, now).await?;
                    lags.extend(replicas.into_iter().filter_map(|(a, id)| Some((a, *read.get(&id)?))));
                }
            }
            if any("aurora_cluster") {
                let clusters = aurora::describe(&self.rds_client(region), region).await?;
                let mut replicas = Vec::new();
                for m in members.iter().filter(is("aurora_cluster")) {
                    let Some(c) = clusters.iter().find(|c| c.identifier.eq_ignore_ascii_case(text(m, "identifier")))
                    else {
                        continue;
                    };
                    if c.source.is_some() {
                        replicas.push((m.address.clone(), c.identifier.clone()));
                    }
                    found.push(observed_cluster(m, c));
                }
                let ids: Vec<String> = replicas.iter().map(|(_, id)| id.clone()).collect();
                if !ids.is_empty() {
                    let read = self.lag_of(region, &ids, now, LagMetric::AURORA).await?;
                    lags.extend(replicas.into_iter().filter_map(|(a, id)| Some((a, *read.get(&id)?))));
                }
            }
            Ok::<_, ProviderError>((found, lags))
        });
        let results = futures_util::future::join_all(reads).await;
        let mut seen = Seen::default();
        for ((region, _), result) in wanted.iter().zip(results) {
            match result {
                Ok((found, lags)) => {
                    seen.replication.extend(lags.into_iter().map(|(a, sample)| (a, lag(sample))));
                    seen.objects.extend(found);
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
        if after("kind") == "aurora_cluster" {
            return self.apply_cluster(request, region).await;
        }
        if after("kind") != "rds_instance" {
            return Err(ProviderError::new(
                ErrorClass::Invalid,
                format!("the aws provider manages RDS instances and Aurora clusters, not `{}` members", after("kind")),
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

    /// A change to an Aurora member, or the start of a catch-up: the same steps as an RDS
    /// instance's, on clusters.
    async fn apply_cluster(&self, request: &ApplyRequest<'_>, region: &str) -> Result<Option<Observed>, ProviderError> {
        let change = request.change;
        let after = |k: &str| change.after.as_ref().and_then(|a| a.get(k)).and_then(Value::text).unwrap_or_default();
        let client = self.rds_client(region);
        let identifier = after("identifier");
        let want = Resource {
            address: change.address.clone(),
            kind: Kind::Database,
            region: Some(region.to_string()),
            attrs: change.after.clone().unwrap_or_default(),
        };
        let missing = || {
            ProviderError::new(ErrorClass::NotFound, format!("Aurora cluster {identifier} in {region} does not exist"))
        };
        if change.kind == Kind::CatchUp {
            aurora::find(&client, region, identifier).await?.ok_or_else(missing)?;
            let mut o = want.clone();
            o.kind = Kind::CatchUp;
            o.attrs.insert("status".into(), "running".into());
            return Ok(Some(Observed { resource: o, id: format!("{region}/{identifier}") }));
        }
        match change.action {
            Action::Adopt => Ok(Some(observed_cluster(
                &want,
                &aurora::find(&client, region, identifier).await?.ok_or_else(missing)?,
            ))),
            Action::Update if after("role") == "writer" => {
                drplan_retry::applying(aurora::promote(&client, region, identifier)).await?;
                let c = aurora::wait_available(&client, region, identifier, AVAILABLE_WITHIN).await?;
                Ok(Some(observed_cluster(&want, &c)))
            }
            Action::Create | Action::Replace | Action::Update => {
                let (source_region, source_id) = after("source")
                    .split_once('/')
                    .ok_or_else(|| ProviderError::new(ErrorClass::Invalid, "a replica names no source"))?;
                let source_client = self.rds_client(source_region);
                let source = aurora::find(&source_client, source_region, source_id).await?.ok_or_else(|| {
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
                let like = match aurora::find(&client, region, identifier).await? {
                    Some(current) if change.action != Action::Create => {
                        let kept = kept_name(identifier, request.idempotency_token);
                        drplan_retry::applying(aurora::rename(&client, region, identifier, &kept)).await?;
                        aurora::wait_available(&client, region, &kept, AVAILABLE_WITHIN).await?;
                        current
                    }
                    Some(current) if current.source.is_some() => return Ok(Some(observed_cluster(&want, &current))),
                    Some(_) => {
                        return Err(ProviderError::new(
                            ErrorClass::Conflict,
                            format!("{identifier} in {region} exists and is not a replica"),
                        ));
                    }
                    None => AuroraCluster { engine: source.engine.clone(), ..AuroraCluster::default() },
                };
                // The new cluster's instance: the class of the one it stands in for (or of the writer's).
                let model = like.members.first().or(source.members.first()).cloned().unwrap_or_default();
                let class = match model.is_empty() {
                    true => String::new(),
                    false => {
                        let home = if like.members.is_empty() { source_region } else { region };
                        self.db_instance(home, &model).await?.map(|i| i.class).unwrap_or_default()
                    }
                };
                let class = if class.is_empty() { "db.r6g.large".to_string() } else { class };
                let instance = kept_name(&format!("{identifier}-1"), request.idempotency_token);
                let created = drplan_retry::applying(aurora::create_replica(
                    &client,
                    region,
                    identifier,
                    &source.arn,
                    &like,
                    &class,
                    &instance,
                ))
                .await?;
                Ok(Some(observed_cluster(&want, &created)))
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
            let alive = match after("kind").and_then(|v| v.text().map(str::to_string)).as_deref() {
                Some("aurora_cluster") => {
                    aurora::find(&self.rds_client(source_region), source_region, source_id).await.map(drop)
                }
                _ => self.db_instance(source_region, source_id).await.map(drop),
            };
            if let Err(e) = alive
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
            let metric = match after("kind").and_then(|v| v.text().map(str::to_string)).as_deref() {
                Some("aurora_cluster") => LagMetric::AURORA,
                _ => LagMetric::INSTANCE,
            };
            let lags = self.lag_of(&region, std::slice::from_ref(&identifier), now(), metric).await?;
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
