//! Aurora MySQL members of a database: a region's cluster, writer or cross-region replica
//! cluster (`ReplicationSourceIdentifier`), read in one DescribeDBClusters per region; the
//! promote (PromoteReadReplicaDBCluster), fence (a rename, ModifyDBCluster) and re-protect
//! (a replica cluster with one instance, CreateDBCluster then CreateDBInstance) calls. As
//! for RDS instances, nothing here deletes a cluster.
//!
//! A cross-region replica cluster of an encrypted source needs a pre-signed URL, which other
//! SDKs compute from a `SourceRegion` parameter and the Rust SDK does not: re-protecting an
//! encrypted Aurora database across regions is refused with that reason.

use std::time::{Duration, Instant};

use aws_sdk_rds::types::Tag;
use drplan_core::provider::{ErrorClass, ProviderError};
use drplan_retry::RetryPolicy;

use crate::client::send;

/// An Aurora cluster as drplan reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuroraCluster {
    pub identifier: String,
    pub arn: String,
    pub region: String,
    /// `aurora-mysql`.
    pub engine: String,
    pub status: String,
    /// Its source's ARN when it is a replica cluster.
    pub source: Option<String>,
    pub subnet_group: Option<String>,
    pub security_groups: Vec<String>,
    pub encrypted: bool,
    pub kms_key: Option<String>,
    /// The identifiers of its instances, the writer first.
    pub members: Vec<String>,
    pub tags: Vec<(String, String)>,
}

impl AuroraCluster {
    fn of(c: &aws_sdk_rds::types::DbCluster, region: &str) -> Option<AuroraCluster> {
        let some = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_owned);
        let mut members: Vec<(bool, String)> = c
            .db_cluster_members()
            .iter()
            .filter_map(|m| Some((!m.is_cluster_writer().unwrap_or(false), m.db_instance_identifier()?.to_owned())))
            .collect();
        members.sort();
        Some(AuroraCluster {
            identifier: some(c.db_cluster_identifier())?,
            arn: some(c.db_cluster_arn())?,
            region: region.to_owned(),
            engine: c.engine().unwrap_or_default().to_owned(),
            status: c.status().unwrap_or_default().to_owned(),
            source: some(c.replication_source_identifier()),
            subnet_group: some(c.db_subnet_group()),
            security_groups: c.vpc_security_groups().iter().filter_map(|g| some(g.vpc_security_group_id())).collect(),
            encrypted: c.storage_encrypted().unwrap_or(false),
            kms_key: some(c.kms_key_id()),
            members: members.into_iter().map(|(_, id)| id).collect(),
            tags: c.tag_list().iter().filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned()))).collect(),
        })
    }
}

/// Every Aurora cluster in `region`: DescribeDBClusters, a page of 100 at a time.
pub async fn describe(client: &aws_sdk_rds::Client, region: &str) -> Result<Vec<AuroraCluster>, ProviderError> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = send(&RetryPolicy::DEFAULT, &format!("DescribeDBClusters in {region}"), || {
            client.describe_db_clusters().max_records(100).set_marker(marker.clone()).send()
        })
        .await?;
        out.extend(page.db_clusters().iter().filter_map(|c| AuroraCluster::of(c, region)));
        marker = page.marker().filter(|m| !m.is_empty()).map(str::to_owned);
        if marker.is_none() {
            out.sort_by(|a, b| a.identifier.cmp(&b.identifier));
            return Ok(out);
        }
    }
}

/// The cluster `identifier` in `region`; `None` when there is none.
pub async fn find(
    client: &aws_sdk_rds::Client,
    region: &str,
    identifier: &str,
) -> Result<Option<AuroraCluster>, ProviderError> {
    Ok(describe(client, region).await?.into_iter().find(|c| c.identifier.eq_ignore_ascii_case(identifier)))
}

fn missing(region: &str, identifier: &str) -> ProviderError {
    ProviderError::new(ErrorClass::NotFound, format!("Aurora cluster {identifier} in {region} does not exist"))
}

/// Promotes the replica cluster `identifier` to a standalone writer; one that is already
/// standalone is returned as it is.
pub async fn promote(
    client: &aws_sdk_rds::Client,
    region: &str,
    identifier: &str,
) -> Result<AuroraCluster, ProviderError> {
    let current = find(client, region, identifier).await?.ok_or_else(|| missing(region, identifier))?;
    if current.source.is_none() {
        return Ok(current);
    }
    let what = format!("PromoteReadReplicaDBCluster {identifier} in {region}");
    send(&RetryPolicy::DEFAULT, &what, || {
        client.promote_read_replica_db_cluster().db_cluster_identifier(identifier).send()
    })
    .await?;
    find(client, region, identifier).await?.ok_or_else(|| missing(region, identifier))
}

/// Renames the cluster at once: how an old writer is fenced. Its instances and data stay.
pub async fn rename(
    client: &aws_sdk_rds::Client,
    region: &str,
    identifier: &str,
    new_identifier: &str,
) -> Result<AuroraCluster, ProviderError> {
    if let Some(done) = find(client, region, new_identifier).await? {
        return Ok(done);
    }
    let what = format!("ModifyDBCluster {identifier} (rename to {new_identifier}) in {region}");
    send(&RetryPolicy::DEFAULT, &what, || {
        client
            .modify_db_cluster()
            .db_cluster_identifier(identifier)
            .new_db_cluster_identifier(new_identifier)
            .apply_immediately(true)
            .send()
    })
    .await?;
    find(client, region, new_identifier).await?.ok_or_else(|| missing(region, new_identifier))
}

/// Creates `identifier` in `region` as a replica cluster of `source_arn`, on `like`'s subnet
/// group, security groups and key (the cluster it stands in for there), with one instance
/// of `class` so that it serves once promoted.
pub async fn create_replica(
    client: &aws_sdk_rds::Client,
    region: &str,
    identifier: &str,
    source_arn: &str,
    like: &AuroraCluster,
    class: &str,
    instance: &str,
) -> Result<AuroraCluster, ProviderError> {
    if like.encrypted && !source_arn.contains(&format!(":{region}:")) {
        return Err(ProviderError::new(
            ErrorClass::Invalid,
            format!(
                "re-protecting {identifier} in {region}: an encrypted Aurora replica cluster across regions needs a pre-signed URL, which drplan cannot make yet; create it by hand (CreateDBCluster with ReplicationSourceIdentifier {source_arn} and SourceRegion), then plan again"
            ),
        ));
    }
    if find(client, region, identifier).await?.is_none() {
        let tags: Vec<Tag> = like.tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
        let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        let request = client
            .create_db_cluster()
            .db_cluster_identifier(identifier)
            .engine(if like.engine.is_empty() { "aurora-mysql" } else { like.engine.as_str() })
            .replication_source_identifier(source_arn)
            .set_db_subnet_group_name(nonempty(&like.subnet_group))
            .set_vpc_security_group_ids(Some(like.security_groups.clone()).filter(|g| !g.is_empty()))
            .set_kms_key_id(nonempty(&like.kms_key))
            .set_tags(Some(tags).filter(|t| !t.is_empty()));
        let what = format!("CreateDBCluster {identifier} (replica of {source_arn}) in {region}");
        send(&RetryPolicy::DEFAULT, &what, || request.clone().send()).await?;
    }
    let created = find(client, region, identifier).await?.ok_or_else(|| missing(region, identifier))?;
    if created.members.is_empty() {
        let what = format!("CreateDBInstance {instance} in cluster {identifier} in {region}");
        let engine = created.engine.clone();
        send(&RetryPolicy::DEFAULT, &what, || {
            client
                .create_db_instance()
                .db_instance_identifier(instance)
                .db_cluster_identifier(identifier)
                .engine(engine.clone())
                .db_instance_class(class)
                .send()
        })
        .await?;
    }
    find(client, region, identifier).await?.ok_or_else(|| missing(region, identifier))
}

/// Polls the cluster until it is `available`, within `timeout`.
pub async fn wait_available(
    client: &aws_sdk_rds::Client,
    region: &str,
    identifier: &str,
    timeout: Duration,
) -> Result<AuroraCluster, ProviderError> {
    let started = Instant::now();
    loop {
        let now = find(client, region, identifier).await?.ok_or_else(|| missing(region, identifier))?;
        if now.status == "available" {
            return Ok(now);
        }
        if started.elapsed() > timeout {
            return Err(ProviderError::new(
                ErrorClass::Failed,
                format!(
                    "Aurora cluster {identifier} in {region} was not available within {timeout:.0?}: {}",
                    now.status
                ),
            ));
        }
        tokio::time::sleep(crate::rds::POLL).await;
    }
}
