//! RDS instances of a data tier: the writer and its cross-region read replicas as they are,
//! their replication lag from CloudWatch, and the promote, rename and create-replica calls
//! a failover is made of. Nothing here deletes an instance: an old writer is fenced by
//! renaming it, so that its data stays until a person decides otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
use aws_sdk_rds::types::Tag;
use drplan_core::provider::{ErrorClass, ProviderError};
use drplan_retry::RetryPolicy;

use crate::TAG_REGION;
use crate::client::send;

/// An RDS instance as drplan reads it: plain data, no SDK types.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DbInstance {
    /// The `DBInstanceIdentifier` (AWS keeps identifiers in lowercase).
    pub identifier: String,
    pub arn: String,
    /// The region it was read in.
    pub region: String,
    /// `postgres`, `mysql`...
    pub engine: String,
    /// `DBInstanceStatus`: `available`, `creating`, `modifying`, `renaming`...
    pub status: String,
    /// `DBInstanceClass`, e.g. `db.r6g.large`.
    pub class: String,
    /// The endpoint's address; none while it is being created.
    pub endpoint: Option<String>,
    pub port: Option<i32>,
    /// When it is a read replica, its source as AWS names it: an identifier within one
    /// region, an ARN across regions (see [`DbInstance::is_named_by`]).
    pub source: Option<String>,
    /// Its read replicas, named the same way (identifiers, or ARNs across regions).
    pub replicas: Vec<String>,
    pub subnet_group: Option<String>,
    /// The first (for RDS instances, the only) parameter group.
    pub parameter_group: Option<String>,
    /// The VPC security groups' ids.
    pub security_groups: Vec<String>,
    pub encrypted: bool,
    /// The KMS key's ARN, when its storage is encrypted.
    pub kms_key: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl DbInstance {
    /// Whether `name`, as another instance in `from_region` holds it (a [`DbInstance::source`]
    /// or one of [`DbInstance::replicas`]), is this instance: its ARN, or its identifier
    /// when both are in one region.
    pub fn is_named_by(&self, name: &str, from_region: &str) -> bool {
        name.eq_ignore_ascii_case(&self.arn)
            || (from_region == self.region && name.eq_ignore_ascii_case(&self.identifier))
    }

    /// Whether this instance is a read replica of `source`.
    pub fn replicates_from(&self, source: &DbInstance) -> bool {
        self.source.as_deref().is_some_and(|s| source.is_named_by(s, &self.region))
    }

    /// Whether `replica` is among the replicas this instance lists.
    pub fn lists_replica(&self, replica: &DbInstance) -> bool {
        self.replicas.iter().any(|r| replica.is_named_by(r, &self.region))
    }

    /// The instance in an SDK answer read in `region`; `None` without an identifier or an
    /// ARN, which AWS always sends (a malformed answer is left out, not a panic).
    fn of(db: &aws_sdk_rds::types::DbInstance, region: &str) -> Option<DbInstance> {
        let text = |s: Option<&str>| s.unwrap_or_default().to_owned();
        let some = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_owned);
        Some(DbInstance {
            identifier: some(db.db_instance_identifier())?,
            arn: some(db.db_instance_arn())?,
            region: region.to_owned(),
            engine: text(db.engine()),
            status: text(db.db_instance_status()),
            class: text(db.db_instance_class()),
            endpoint: some(db.endpoint().and_then(|e| e.address())),
            port: db.endpoint().and_then(|e| e.port()),
            source: some(db.read_replica_source_db_instance_identifier()),
            replicas: db.read_replica_db_instance_identifiers().to_vec(),
            subnet_group: some(db.db_subnet_group().and_then(|g| g.db_subnet_group_name())),
            parameter_group: some(db.db_parameter_groups().first().and_then(|g| g.db_parameter_group_name())),
            security_groups: db.vpc_security_groups().iter().filter_map(|g| some(g.vpc_security_group_id())).collect(),
            encrypted: db.storage_encrypted().unwrap_or(false),
            kms_key: some(db.kms_key_id()),
            tags: db.tag_list().iter().filter_map(|t| Some((t.key()?.to_owned(), text(t.value())))).collect(),
        })
    }
}

/// The newest `ReplicaLag` datapoint of one instance.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LagSample {
    /// Seconds behind the source; `None` when unknown: no datapoint in the window, or one of
    /// `-1` (RDS's "replication is not running"). Never 0 for unknown: 0 is what a failover
    /// waits for.
    pub seconds: Option<f64>,
    /// When the datapoint's period starts (Unix seconds; periods are [`lag_period`] long,
    /// so a sample taken at `t` is stamped at most a period before `t`); `None` without one.
    pub at: Option<i64>,
}

/// How far back [`replica_lag`] looks: older datapoints are stale, and count as none.
pub const LAG_WINDOW: i64 = 600;
/// The period of the `ReplicaLag` statistics read, in seconds: RDS publishes every minute.
pub const LAG_PERIOD: i32 = 60;
/// Overrides [`LAG_PERIOD`] (1 to 60 seconds) for an emulator whose publisher is faster
/// than RDS's: a catch-up waits for a sample stamped a whole period after the stop, so a
/// minute on AWS. Ignored when out of range.
pub const LAG_PERIOD_ENV: &str = "DRPLAN_AWS_LAG_PERIOD";

/// The period lag is read in: [`LAG_PERIOD`], or [`LAG_PERIOD_ENV`] when set and valid.
pub fn lag_period() -> i32 {
    static PERIOD: std::sync::OnceLock<i32> = std::sync::OnceLock::new();
    *PERIOD.get_or_init(|| {
        std::env::var(LAG_PERIOD_ENV)
            .ok()
            .and_then(|v| v.parse::<i32>().ok())
            .filter(|p| (1..=LAG_PERIOD).contains(p))
            .unwrap_or(LAG_PERIOD)
    })
}
/// How often [`wait_available`] polls: creating or promoting an instance takes minutes.
pub const POLL: Duration = Duration::from_secs(10);

/// DescribeDBInstances' largest page.
const PAGE: i32 = 100;
/// GetMetricData's most queries in one request.
const QUERIES_PER_CALL: usize = 500;

/// Every RDS instance in `region`, by identifier: one DescribeDBInstances, a page at a
/// time (each page retried on its own).
pub async fn describe(client: &aws_sdk_rds::Client, region: &str) -> Result<Vec<DbInstance>, ProviderError> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = send(&RetryPolicy::DEFAULT, &format!("DescribeDBInstances in {region}"), || {
            client.describe_db_instances().max_records(PAGE).set_marker(marker.clone()).send()
        })
        .await?;
        out.extend(page.db_instances().iter().filter_map(|db| DbInstance::of(db, region)));
        marker = page.marker().filter(|m| !m.is_empty()).map(str::to_owned);
        if marker.is_none() {
            out.sort_by(|a, b| a.identifier.cmp(&b.identifier));
            return Ok(out);
        }
    }
}

/// The instance `identifier` in `region`; `None` when there is none.
pub async fn find(
    client: &aws_sdk_rds::Client,
    region: &str,
    identifier: &str,
) -> Result<Option<DbInstance>, ProviderError> {
    let out = send(&RetryPolicy::DEFAULT, &format!("DescribeDBInstances {identifier} in {region}"), || {
        client.describe_db_instances().db_instance_identifier(identifier).send()
    })
    .await;
    match out {
        Ok(out) => Ok(out
            .db_instances()
            .iter()
            .filter_map(|db| DbInstance::of(db, region))
            .find(|db| db.identifier.eq_ignore_ascii_case(identifier))),
        Err(e) if e.class == ErrorClass::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The newest `AWS/RDS` `ReplicaLag` of each of `identifiers` in `region` over the
/// [`LAG_WINDOW`] before `now` (Unix seconds): one GetMetricData for all of them (one per
/// 500), every identifier in the answer, unknown ones as [`LagSample::default`].
pub async fn replica_lag(
    client: &aws_sdk_cloudwatch::Client,
    region: &str,
    identifiers: &[String],
    now: i64,
) -> Result<BTreeMap<String, LagSample>, ProviderError> {
    lag_of(client, region, identifiers, now, LagMetric::INSTANCE).await
}

/// Which CloudWatch metric holds a member's replication lag, and its dimension.
#[derive(Debug, Clone, Copy)]
pub struct LagMetric {
    pub name: &'static str,
    pub dimension: &'static str,
}

impl LagMetric {
    /// An RDS read replica's.
    pub const INSTANCE: LagMetric = LagMetric { name: "ReplicaLag", dimension: "DBInstanceIdentifier" };
    /// An Aurora MySQL cross-region replica cluster's, from its binlog replication.
    pub const AURORA: LagMetric = LagMetric { name: "AuroraBinlogReplicaLag", dimension: "DBClusterIdentifier" };
}

/// The newest datapoint of `metric` for each of `identifiers` in `region`, in one
/// GetMetricData per 500 of them (see [`replica_lag`]).
pub async fn lag_of(
    client: &aws_sdk_cloudwatch::Client,
    region: &str,
    identifiers: &[String],
    now: i64,
    metric: LagMetric,
) -> Result<BTreeMap<String, LagSample>, ProviderError> {
    let ids: Vec<&str> = identifiers.iter().map(String::as_str).collect::<BTreeSet<_>>().into_iter().collect();
    let mut out: BTreeMap<String, LagSample> = ids.iter().map(|id| ((*id).to_owned(), LagSample::default())).collect();
    let (start, end) = lag_window(now);
    for chunk in ids.chunks(QUERIES_PER_CALL) {
        let queries: Vec<MetricDataQuery> = chunk.iter().enumerate().map(|(i, id)| lag_query(i, id, metric)).collect();
        let mut token: Option<String> = None;
        loop {
            let page = send(&RetryPolicy::DEFAULT, &format!("GetMetricData {} in {region}", metric.name), || {
                client
                    .get_metric_data()
                    .set_metric_data_queries(Some(queries.clone()))
                    .start_time(DateTime::from_secs(start))
                    .end_time(DateTime::from_secs(end))
                    .scan_by(ScanBy::TimestampDescending)
                    .set_next_token(token.clone())
                    .send()
            })
            .await?;
            for result in page.metric_data_results() {
                // Results come back by query id; an id this request did not send is ignored.
                let index = result.id().and_then(|id| id.strip_prefix('q')).and_then(|n| n.parse::<usize>().ok());
                let Some(id) = index.and_then(|i| chunk.get(i)) else { continue };
                let sample = newest(result.timestamps().iter().map(DateTime::secs), result.values());
                let held = out.entry((*id).to_owned()).or_default();
                if sample.at > held.at {
                    *held = sample;
                }
            }
            token = page.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
    }
    Ok(out)
}

/// The query window for `now`: [`LAG_WINDOW`] seconds of whole periods ending after the
/// minute `now` is in (the end is exclusive), so a sample stamped `now` is in it and the
/// periods line up with CloudWatch's minutes.
pub fn lag_window(now: i64) -> (i64, i64) {
    let period = i64::from(lag_period());
    let end = now.div_euclid(period) * period + period;
    (end - LAG_WINDOW, end)
}

fn lag_query(index: usize, identifier: &str, lag: LagMetric) -> MetricDataQuery {
    let metric = Metric::builder()
        .namespace("AWS/RDS")
        .metric_name(lag.name)
        .dimensions(Dimension::builder().name(lag.dimension).value(identifier).build())
        .build();
    // Ids must start with a lowercase letter; the index maps a result back to its instance.
    MetricDataQuery::builder()
        .id(format!("q{index}"))
        .metric_stat(MetricStat::builder().metric(metric).period(lag_period()).stat("Maximum").build())
        .return_data(true)
        .build()
}

/// The newest of datapoints given as parallel lists (extra entries of the longer one are
/// ignored). A negative or non-finite value is unknown.
pub fn newest(timestamps: impl Iterator<Item = i64>, values: &[f64]) -> LagSample {
    let Some((at, value)) = timestamps.zip(values.iter().copied()).max_by_key(|(t, _)| *t) else {
        return LagSample::default();
    };
    LagSample { seconds: Some(value).filter(|v| v.is_finite() && *v >= 0.0), at: Some(at) }
}

/// Promotes the read replica `identifier` to a standalone writer (PromoteReadReplica); the
/// instance as the call's answer describes it (on AWS still `modifying`: wait with
/// [`wait_available`]). An instance that is already standalone is returned as it is
/// without a call, so a run resumed after a lost answer goes on.
pub async fn promote(
    client: &aws_sdk_rds::Client,
    region: &str,
    identifier: &str,
) -> Result<DbInstance, ProviderError> {
    let current = find(client, region, identifier).await?.ok_or_else(|| missing(region, identifier))?;
    if current.source.is_none() {
        return Ok(current);
    }
    let what = format!("PromoteReadReplica {identifier} in {region}");
    match send(&RetryPolicy::DEFAULT, &what, || client.promote_read_replica().db_instance_identifier(identifier).send())
        .await
    {
        Ok(out) => answered(client, region, identifier, out.db_instance()).await,
        // A retry after an attempt that went through finds it no longer a replica.
        Err(e) if e.class == ErrorClass::Conflict => match find(client, region, identifier).await? {
            Some(db) if db.source.is_none() => Ok(db),
            _ => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// Renames `identifier` to `new_identifier` at once (ModifyDBInstance with
/// `NewDBInstanceIdentifier` and `ApplyImmediately`): the instance, its data and its links
/// stay, its endpoint changes. How an old writer is fenced: whatever still connects to it
/// by name fails. A retry after an attempt that went through finds the old name gone and
/// the new one taken, which counts as done.
pub async fn rename(
    client: &aws_sdk_rds::Client,
    region: &str,
    identifier: &str,
    new_identifier: &str,
) -> Result<DbInstance, ProviderError> {
    if identifier.eq_ignore_ascii_case(new_identifier) {
        return Err(ProviderError::new(
            ErrorClass::Invalid,
            format!("renaming RDS instance {identifier} in {region}: the new identifier is the same"),
        ));
    }
    let what = format!("ModifyDBInstance {identifier} (rename to {new_identifier}) in {region}");
    let sent = send(&RetryPolicy::DEFAULT, &what, || {
        client
            .modify_db_instance()
            .db_instance_identifier(identifier)
            .new_db_instance_identifier(new_identifier)
            .apply_immediately(true)
            .send()
    })
    .await;
    match sent {
        Ok(out) => answered(client, region, new_identifier, out.db_instance()).await,
        Err(e) if e.class == ErrorClass::NotFound => match find(client, region, new_identifier).await? {
            Some(db) => Ok(db),
            None => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// Creates `identifier` in `region` as a read replica of `source_arn` (an ARN, which a
/// cross-region source needs; an identifier also does within one region), sent to the
/// replica's region (CreateDBInstanceReadReplica). It takes `like`'s class, subnet group,
/// parameter group, security groups and KMS key (all of `region`: `like` is the instance it
/// stands in for, such as a fenced old writer there), and its `drplan:` tags with
/// `drplan:region` set to `region`. An instance already there that replicates from
/// `source_arn` is one a lost answer hid, and is returned; any other holder of the name is
/// a conflict.
pub async fn create_replica(
    client: &aws_sdk_rds::Client,
    region: &str,
    identifier: &str,
    source_arn: &str,
    like: &DbInstance,
) -> Result<DbInstance, ProviderError> {
    let tags: Vec<Tag> =
        replica_tags(like, region).into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
    let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    let request = client
        .create_db_instance_read_replica()
        .db_instance_identifier(identifier)
        .source_db_instance_identifier(source_arn)
        .set_db_instance_class(Some(like.class.clone()).filter(|c| !c.is_empty()))
        .set_db_subnet_group_name(nonempty(&like.subnet_group))
        .set_db_parameter_group_name(nonempty(&like.parameter_group))
        .set_vpc_security_group_ids(Some(like.security_groups.clone()).filter(|g| !g.is_empty()))
        .set_kms_key_id(nonempty(&like.kms_key))
        .set_tags(Some(tags).filter(|t| !t.is_empty()));
    let what = format!("CreateDBInstanceReadReplica {identifier} in {region}");
    match send(&RetryPolicy::DEFAULT, &what, || request.clone().send()).await {
        Ok(out) => answered(client, region, identifier, out.db_instance()).await,
        Err(e) if e.class == ErrorClass::Conflict => match find(client, region, identifier).await? {
            Some(db) if db.source.as_deref().is_some_and(|s| same_source(s, source_arn, region)) => Ok(db),
            _ => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// The tags a replica standing in for `like` in `region` gets: `like`'s `drplan:` tags, its
/// region tag (when it has one) naming `region`.
pub fn replica_tags(like: &DbInstance, region: &str) -> BTreeMap<String, String> {
    like.tags
        .iter()
        .filter(|(k, _)| k.starts_with("drplan:"))
        .map(|(k, v)| (k.clone(), if k == TAG_REGION { region.to_owned() } else { v.clone() }))
        .collect()
}

/// Whether `source` and `wanted`, each an ARN or an identifier as a replica in `region`
/// names its source (an identifier names an instance of `region`), are one instance.
fn same_source(source: &str, wanted: &str, region: &str) -> bool {
    // arn:aws:rds:REGION:ACCOUNT:db:ID
    let place = |s: &str| -> (String, String) {
        match s.split(':').collect::<Vec<_>>()[..] {
            ["arn", _, "rds", r, _, "db", id] => (r.to_ascii_lowercase(), id.to_ascii_lowercase()),
            _ => (region.to_ascii_lowercase(), s.to_ascii_lowercase()),
        }
    };
    place(source) == place(wanted)
}

/// Polls `identifier` every `every` until it is `available`, telling `progress` each new
/// status. A status it will not leave by itself (failed, stopped, storage full...) fails at
/// once; so does the instance disappearing. Blips of the API are waited out.
pub async fn wait_available(
    client: &aws_sdk_rds::Client,
    region: &str,
    identifier: &str,
    every: Duration,
    timeout: Duration,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<DbInstance, ProviderError> {
    let started = Instant::now();
    let mut said = String::new();
    loop {
        let now = match find(client, region, identifier).await {
            Ok(Some(db)) if db.status == "available" => return Ok(db),
            Ok(Some(db)) if STUCK.contains(&db.status.as_str()) => {
                return Err(ProviderError::new(
                    ErrorClass::Failed,
                    format!(
                        "RDS instance {identifier} in {region} is {}: it will not become available by waiting",
                        db.status
                    ),
                ));
            }
            Ok(Some(db)) => db.status,
            Ok(None) => return Err(missing(region, identifier)),
            Err(e) if matches!(e.class, ErrorClass::Throttled | ErrorClass::Unreachable | ErrorClass::Failed) => {
                format!("cannot read it: {}", e.cause())
            }
            Err(e) => return Err(e),
        };
        if now != said {
            progress(format!("{now} ({}s)", started.elapsed().as_secs()));
            said = now;
        }
        if started.elapsed() + every > timeout {
            return Err(ProviderError::new(
                ErrorClass::Failed,
                format!("RDS instance {identifier} in {region} was not available within {timeout:.0?}: {said}"),
            ));
        }
        tokio::time::sleep(every).await;
    }
}

/// Statuses an instance does not leave without someone acting.
const STUCK: &[&str] = &[
    "failed",
    "incompatible-network",
    "incompatible-option-group",
    "incompatible-parameters",
    "incompatible-restore",
    "inaccessible-encryption-credentials",
    "restore-error",
    "storage-full",
    "stopping",
    "stopped",
    "deleting",
];

/// The instance in a call's answer, or, when the answer lacks it, as DescribeDBInstances
/// has it.
async fn answered(
    client: &aws_sdk_rds::Client,
    region: &str,
    identifier: &str,
    db: Option<&aws_sdk_rds::types::DbInstance>,
) -> Result<DbInstance, ProviderError> {
    match db.and_then(|db| DbInstance::of(db, region)) {
        Some(db) => Ok(db),
        None => find(client, region, identifier).await?.ok_or_else(|| missing(region, identifier)),
    }
}

fn missing(region: &str, identifier: &str) -> ProviderError {
    ProviderError::new(ErrorClass::NotFound, format!("RDS instance {identifier} in {region} does not exist"))
}

/// The data tier's calls on the provider, which its database steps (`databases.rs`) are
/// built on.
impl crate::AwsProvider {
    /// Every RDS instance in `region`, sorted by identifier: DescribeDBInstances, one request
    /// per 100 instances. Read-only.
    pub async fn db_instances(&self, region: &str) -> Result<Vec<DbInstance>, ProviderError> {
        describe(&self.rds_client(region), region).await
    }

    /// The RDS instance `identifier` in `region`, `None` when there is none. Read-only.
    pub async fn db_instance(&self, region: &str, identifier: &str) -> Result<Option<DbInstance>, ProviderError> {
        find(&self.rds_client(region), region, identifier).await
    }

    /// The newest `ReplicaLag` of each of `identifiers` (RDS instances in `region`) over the
    /// ten minutes before `now_seconds` (Unix seconds): one CloudWatch GetMetricData for all
    /// of them. Every identifier is in the answer; no datapoint in the window, or one of -1,
    /// is unknown (`seconds: None`), never 0. A failover compares [`LagSample::at`] with when
    /// it stopped the writers: only a sample stamped after that says the replica caught up.
    pub async fn replica_lag(
        &self,
        region: &str,
        identifiers: &[String],
        now_seconds: i64,
    ) -> Result<BTreeMap<String, LagSample>, ProviderError> {
        replica_lag(&self.cloudwatch_client(region), region, identifiers, now_seconds).await
    }

    /// The newest datapoint of `metric` for each of `identifiers` in `region` (see
    /// [`AwsProvider::replica_lag`]).
    pub async fn lag_of(
        &self,
        region: &str,
        identifiers: &[String],
        now_seconds: i64,
        metric: LagMetric,
    ) -> Result<BTreeMap<String, LagSample>, ProviderError> {
        lag_of(&self.cloudwatch_client(region), region, identifiers, now_seconds, metric).await
    }

    /// Promotes the read replica `identifier` in `region` to a writer (PromoteReadReplica):
    /// it stops replicating and its source no longer lists it. An instance that is already
    /// standalone is returned as it is, so a resumed run goes on. Sent as an apply's request.
    pub async fn promote_replica(&self, region: &str, identifier: &str) -> Result<DbInstance, ProviderError> {
        drplan_retry::applying(promote(&self.rds_client(region), region, identifier)).await
    }

    /// Renames the RDS instance `identifier` in `region` to `new_identifier`, applied at once:
    /// how an old writer is fenced. The instance and its data stay (drplan never deletes a
    /// database); its endpoint follows the new name. A taken name is a conflict. Sent as an
    /// apply's request.
    pub async fn rename_instance(
        &self,
        region: &str,
        identifier: &str,
        new_identifier: &str,
    ) -> Result<DbInstance, ProviderError> {
        drplan_retry::applying(rename(&self.rds_client(region), region, identifier, new_identifier)).await
    }

    /// Creates `identifier` in `region` as a read replica of `source_arn` (the writer's ARN,
    /// in any region), with `like`'s class, subnet group, parameter group, security groups,
    /// KMS key and `drplan:` tags; `like` is an instance of `region`, such as the fenced old
    /// writer a re-protection stands in for. A taken name is a conflict, unless it already
    /// replicates from `source_arn` (a create whose answer was lost), which is returned.
    /// Sent as an apply's request.
    pub async fn create_replica(
        &self,
        region: &str,
        identifier: &str,
        source_arn: &str,
        like: &DbInstance,
    ) -> Result<DbInstance, ProviderError> {
        drplan_retry::applying(create_replica(&self.rds_client(region), region, identifier, source_arn, like)).await
    }

    /// Waits until the RDS instance `identifier` in `region` is `available`, polling
    /// DescribeDBInstances every [`POLL`] and telling `progress` each new status; fails on
    /// a status it will not leave by itself, or after `timeout`.
    pub async fn wait_available(
        &self,
        region: &str,
        identifier: &str,
        timeout: std::time::Duration,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<DbInstance, ProviderError> {
        wait_available(&self.rds_client(region), region, identifier, POLL, timeout, progress).await
    }

    pub(crate) fn rds_client(&self, region: &str) -> aws_sdk_rds::Client {
        let mut b = aws_sdk_rds::config::Builder::from(&self.base).region(aws_config::Region::new(region.to_owned()));
        for i in &self.interceptors {
            b = b.interceptor(i.clone());
        }
        aws_sdk_rds::Client::from_conf(b.build())
    }

    fn cloudwatch_client(&self, region: &str) -> aws_sdk_cloudwatch::Client {
        let mut b =
            aws_sdk_cloudwatch::config::Builder::from(&self.base).region(aws_config::Region::new(region.to_owned()));
        for i in &self.interceptors {
            b = b.interceptor(i.clone());
        }
        aws_sdk_cloudwatch::Client::from_conf(b.build())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use aws_config::{BehaviorVersion, Region};
    use drplan_core::provider::ErrorClass;

    use super::{DbInstance, LagSample, lag_window, newest, replica_tags, same_source};

    #[test]
    fn the_newest_datapoint_wins_and_minus_one_is_unknown() {
        let sample = |ts: &[i64], vs: &[f64]| newest(ts.iter().copied(), vs);
        assert_eq!(sample(&[], &[]), LagSample { seconds: None, at: None });
        assert_eq!(sample(&[60, 180, 120], &[5.0, 0.0, 2.0]), LagSample { seconds: Some(0.0), at: Some(180) });
        assert_eq!(sample(&[60, 120], &[0.0, -1.0]), LagSample { seconds: None, at: Some(120) });
        assert_eq!(sample(&[60], &[f64::NAN]), LagSample { seconds: None, at: Some(60) });
        // Lists of different lengths (a malformed answer): pairs only.
        assert_eq!(sample(&[60, 120], &[3.0]), LagSample { seconds: Some(3.0), at: Some(60) });
    }

    #[test]
    fn the_window_is_ten_whole_minutes_ending_after_now() {
        assert_eq!(lag_window(1_820), (1_260, 1_860));
        assert_eq!(lag_window(1_800), (1_260, 1_860), "a sample stamped now is in");
        assert_eq!(lag_window(1_799), (1_200, 1_800));
    }

    #[test]
    fn names_across_regions_are_arns() {
        let db = DbInstance {
            identifier: "ledger".into(),
            arn: "arn:aws:rds:us-east-1:123456789012:db:ledger".into(),
            region: "us-east-1".into(),
            ..DbInstance::default()
        };
        assert!(db.is_named_by("ledger", "us-east-1"));
        assert!(db.is_named_by("arn:aws:rds:us-east-1:123456789012:db:ledger", "us-west-2"));
        assert!(!db.is_named_by("ledger", "us-west-2"), "an identifier names an instance of its own region only");
        let east = "arn:aws:rds:us-east-1:123456789012:db:ledger";
        assert!(same_source(east, "Ledger", "us-east-1"));
        assert!(same_source("ledger", "ledger", "us-west-2"));
        assert!(!same_source(east, "ledger", "us-west-2"), "an identifier names an instance of the replica's region");
        assert!(!same_source(east, "arn:aws:rds:us-west-2:123456789012:db:ledger", "us-west-2"));
    }

    #[test]
    fn a_replica_takes_the_drplan_tags_with_its_own_region() {
        let like = DbInstance {
            tags: [
                ("drplan:project", "p"),
                ("drplan:region", "us-east-1"),
                ("drplan:database", "ledger"),
                ("team", "x"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            ..DbInstance::default()
        };
        let tags: Vec<(String, String)> = replica_tags(&like, "us-west-2").into_iter().collect();
        assert_eq!(
            tags,
            [("drplan:database", "ledger"), ("drplan:project", "p"), ("drplan:region", "us-west-2")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    /// Serves DescribeDBInstances answers with the statuses of `statuses` in turn (the last
    /// one again and again); an instance without an ARN is in every answer and left out.
    fn status_server(statuses: &'static [&'static str]) -> String {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(mut stream) = stream else { return };
                crate::client::read_request(&stream);
                let status = statuses[n.min(statuses.len() - 1)];
                let xml = format!(
                    "<DescribeDBInstancesResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\">\
                     <DescribeDBInstancesResult><DBInstances>\
                     <DBInstance><DBInstanceIdentifier>ledger</DBInstanceIdentifier></DBInstance>\
                     <DBInstance><DBInstanceIdentifier>ledger</DBInstanceIdentifier>\
                     <DBInstanceArn>arn:aws:rds:us-east-1:123456789012:db:ledger</DBInstanceArn>\
                     <DBInstanceStatus>{status}</DBInstanceStatus></DBInstance>\
                     </DBInstances></DescribeDBInstancesResult>\
                     <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DescribeDBInstancesResponse>"
                );
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                    xml.len()
                );
            }
        });
        url
    }

    fn client(endpoint: &str) -> aws_sdk_rds::Client {
        let base = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_rds::config::SharedCredentialsProvider::new(
                aws_sdk_rds::config::Credentials::new("testing", "testing", None, None, "test"),
            ))
            .build();
        aws_sdk_rds::Client::new(&crate::client::with_policy(&base))
    }

    async fn wait(statuses: &'static [&'static str], timeout: Duration) -> (Result<DbInstance, String>, Vec<String>) {
        let said = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&said);
        let progress = move |line: String| log.lock().unwrap().push(line);
        let client = client(&status_server(statuses));
        let got = super::wait_available(&client, "us-east-1", "ledger", Duration::from_millis(5), timeout, &progress)
            .await
            .map_err(|e| {
                assert_eq!(e.class, ErrorClass::Failed, "{e}");
                e.message
            });
        let said = said.lock().unwrap().iter().map(|l| l.split(" (").next().unwrap_or_default().to_owned()).collect();
        (got, said)
    }

    #[tokio::test]
    async fn waits_through_transient_statuses_telling_each_once() {
        let (got, said) = wait(&["creating", "creating", "backing-up", "available"], Duration::from_secs(30)).await;
        let db = got.expect("available in the end");
        assert_eq!((db.identifier.as_str(), db.status.as_str()), ("ledger", "available"));
        assert_eq!(said, ["creating", "backing-up"]);
    }

    #[tokio::test]
    async fn a_status_it_will_not_leave_fails_at_once_and_slowness_times_out() {
        let (got, said) = wait(&["modifying", "incompatible-parameters"], Duration::from_secs(30)).await;
        let why = got.expect_err("stuck");
        assert_eq!(
            why,
            "RDS instance ledger in us-east-1 is incompatible-parameters: it will not become available by waiting"
        );
        assert_eq!(said, ["modifying"]);

        let (got, _) = wait(&["modifying"], Duration::from_millis(100)).await;
        let why = got.expect_err("never available");
        assert!(why.starts_with("RDS instance ledger in us-east-1 was not available within "), "{why}");
        assert!(why.ends_with(": modifying"), "{why}");
    }
}
