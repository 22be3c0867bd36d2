//! Direct calls to a running moto, beside drplan: the setup other tooling would have done
//! (a hosted zone, a state bucket, a database and the network it stands on, CloudWatch
//! samples) and the ground truth tests check against (live instances, RDS instances).
//!
//! moto reads the service and region from the credential scope and does not check
//! signatures, so plain requests with a placeholder `Authorization` header are enough.

use crate::{Emulator, HarnessError, Running};
use std::collections::{BTreeMap, BTreeSet};

/// What an RDS instance stands on in one region, as a team's network tooling would have made
/// it: a VPC with two subnets in two zones, a security group, a DB subnet group, a parameter
/// group of family `postgres16` and a KMS key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbNetwork {
    pub region: String,
    pub vpc: String,
    pub subnets: Vec<String>,
    pub security_group: String,
    pub subnet_group: String,
    pub parameter_group: String,
    /// The key's ARN.
    pub kms_key: String,
}

/// An RDS instance as moto holds it, read with a plain DescribeDBInstances (ground truth).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbTruth {
    pub identifier: String,
    pub arn: String,
    pub status: String,
    pub class: String,
    pub endpoint: String,
    /// `ReadReplicaSourceDBInstanceIdentifier`: the source's id, or its ARN across regions.
    pub source: Option<String>,
    /// `ReadReplicaDBInstanceIdentifiers`: ids, or ARNs across regions.
    pub replicas: Vec<String>,
    pub subnet_group: String,
    pub parameter_group: String,
    pub security_groups: Vec<String>,
    pub kms_key: String,
    pub tags: BTreeMap<String, String>,
}

impl Running {
    /// One request to moto as `service` in `region`; the status code and body.
    pub fn aws_request(
        &self,
        service: &str,
        region: &str,
        method: &str,
        path: &str,
        body: &str,
    ) -> Result<(u16, String), HarnessError> {
        // The query APIs (EC2, RDS) take a form body; Route 53 and S3 take XML or bytes.
        let content_type =
            if matches!(service, "ec2" | "rds") { "application/x-www-form-urlencoded" } else { "text/xml" };
        self.signed(service, region, method, path, &[("Content-Type", content_type)], body)
    }

    /// One request to moto with the `Authorization` header of `service` in `region` (moto
    /// routes on its credential scope) and `headers`.
    fn signed(
        &self,
        service: &str,
        region: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<(u16, String), HarnessError> {
        if self.kind() != Emulator::Moto {
            return Err(HarnessError::NotMoto { operation: "aws_request", emulator: self.kind() });
        }
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=x/20260101/{region}/{service}/aws4_request, SignedHeaders=host, Signature=0"
        );
        let mut all = vec![("Authorization", auth.as_str())];
        all.extend_from_slice(headers);
        crate::request(self.url(), method, path, &all, body)
    }

    /// One call of a JSON-protocol API (CloudWatch, KMS): `target` is the `X-Amz-Target`,
    /// `version` the protocol's (`1.0`, `1.1`). Fails unless the answer is a 2xx.
    fn aws_json(
        &self,
        service: &str,
        region: &str,
        version: &str,
        target: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, HarnessError> {
        let content_type = format!("application/x-amz-json-{version}");
        let headers = [("Content-Type", content_type.as_str()), ("X-Amz-Target", target)];
        let (status, answer) = self.signed(service, region, "POST", "/", &headers, &body.to_string())?;
        if !(200..300).contains(&status) {
            return Err(HarnessError::HttpStatus {
                url: format!("{} ({target})", self.url()),
                status_line: format!("{status}: {}", &answer[..answer.len().min(500)]),
            });
        }
        Ok(serde_json::from_str(&answer).unwrap_or(serde_json::Value::Null))
    }

    /// One call of a query-protocol API (EC2, RDS): `params` form-encoded after `Action`
    /// and `Version`. Fails unless the answer is a 2xx.
    fn aws_query(
        &self,
        service: &str,
        region: &str,
        action: &str,
        version: &str,
        params: &[(String, String)],
    ) -> Result<String, HarnessError> {
        let mut body = format!("Action={action}&Version={version}");
        for (k, v) in params {
            body += &format!("&{}={}", form_encode(k), form_encode(v));
        }
        self.aws_ok(service, region, "POST", "/", &body)
    }

    /// Like [`Running::aws_request`], failing unless the answer is a 2xx.
    fn aws_ok(
        &self,
        service: &str,
        region: &str,
        method: &str,
        path: &str,
        body: &str,
    ) -> Result<String, HarnessError> {
        let (status, answer) = self.aws_request(service, region, method, path, body)?;
        if (200..300).contains(&status) {
            Ok(answer)
        } else {
            Err(HarnessError::HttpStatus {
                url: format!("{}{path}", self.url()),
                status_line: format!("{status}: {}", &answer[..answer.len().min(500)]),
            })
        }
    }

    /// Creates an S3 bucket (in us-east-1).
    pub fn create_bucket(&self, bucket: &str) -> Result<(), HarnessError> {
        self.aws_ok("s3", "us-east-1", "PUT", &format!("/{bucket}"), "").map(drop)
    }

    /// Puts an object's bytes as they are, e.g. a damaged state.
    pub fn put_object(&self, bucket: &str, key: &str, body: &str) -> Result<(), HarnessError> {
        self.aws_ok("s3", "us-east-1", "PUT", &format!("/{bucket}/{key}"), body).map(drop)
    }

    /// Puts an object written in storage class `class` (`GLACIER`, `DEEP_ARCHIVE`), as a
    /// backup tool's `aws s3 cp --storage-class` does: moto then refuses to GetObject it
    /// until RestoreObject thaws it.
    pub fn put_object_in_class(&self, bucket: &str, key: &str, body: &str, class: &str) -> Result<(), HarnessError> {
        let (status, answer) = self.signed(
            "s3",
            "us-east-1",
            "PUT",
            &format!("/{bucket}/{key}"),
            &[("Content-Type", "application/octet-stream"), ("x-amz-storage-class", class)],
            body,
        )?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(HarnessError::HttpStatus {
                url: format!("{}/{bucket}/{key}", self.url()),
                status_line: format!("{status}: {answer}"),
            })
        }
    }

    /// Puts many objects into an existing bucket at once, straight into moto's S3 backend
    /// (ETags and times as PutObject gives them): `(key, content)`, the content one line of
    /// text without tabs. For tests that need tens of thousands of objects.
    pub fn seed_objects(&self, bucket: &str, objects: &[(String, String)]) -> Result<(), HarnessError> {
        let body: String = objects.iter().map(|(key, content)| format!("{key}\t{content}\n")).collect();
        self.aws_ok("s3", "us-east-1", "POST", &format!("/drplan-harness/s3-objects?bucket={bucket}"), &body).map(drop)
    }

    /// Creates a public hosted zone named `zone`, as the team owning the domain would have.
    pub fn create_hosted_zone(&self, zone: &str) -> Result<(), HarnessError> {
        let body = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><CreateHostedZoneRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Name>{zone}</Name><CallerReference>harness-{zone}</CallerReference></CreateHostedZoneRequest>"#
        );
        self.aws_ok("route53", "us-east-1", "POST", "/2013-04-01/hostedzone", &body).map(drop)
    }

    /// Where the failover record set with role `failover` (`PRIMARY`, `SECONDARY`) of the
    /// first hosted zone points: its first value, `None` when there is no such record.
    pub fn failover_record(&self, failover: &str) -> Result<Option<String>, HarnessError> {
        let zones = self.aws_ok("route53", "us-east-1", "GET", "/2013-04-01/hostedzone", "")?;
        let Some(id) = between(&zones, "<Id>", "</Id>") else { return Ok(None) };
        let id = id.trim_start_matches("/hostedzone/");
        let sets = self.aws_ok("route53", "us-east-1", "GET", &format!("/2013-04-01/hostedzone/{id}/rrset"), "")?;
        let role = format!("<Failover>{failover}</Failover>");
        Ok(sets
            .split("<ResourceRecordSet>")
            .find(|s| s.contains(&role))
            .and_then(|s| between(s, "<Value>", "</Value>")))
    }

    /// Ids of the instances moto holds in `region` that are not terminated (or terminating).
    pub fn live_instances(&self, region: &str) -> Result<BTreeSet<String>, HarnessError> {
        let body = "Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=instance-state-name&Filter.1.Value.1=pending&Filter.1.Value.2=running&Filter.1.Value.3=stopping&Filter.1.Value.4=stopped";
        let answer = self.aws_ok("ec2", region, "POST", "/", body)?;
        Ok(answer
            .split("<instanceId>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</instanceId>").map(|(id, _)| id.to_owned()))
            .collect())
    }

    /// The EBS snapshots moto holds in `region`, by id, with their tags.
    pub fn snapshots(&self, region: &str) -> Result<BTreeMap<String, BTreeMap<String, String>>, HarnessError> {
        let answer =
            self.aws_ok("ec2", region, "POST", "/", "Action=DescribeSnapshots&Version=2016-11-15&Owner.1=self")?;
        let mut out = BTreeMap::new();
        for item in answer.split("<snapshotId>").skip(1) {
            let Some((id, rest)) = item.split_once("</snapshotId>") else { continue };
            // The tags of this snapshot: those before the next snapshot's id.
            let tags = between(rest, "<tagSet>", "</tagSet>").unwrap_or_default();
            let tags = tags
                .split("<item>")
                .skip(1)
                .filter_map(|t| {
                    Some((between(t, "<key>", "</key>")?, between(t, "<value>", "</value>").unwrap_or_default()))
                })
                .collect();
            out.insert(id.to_owned(), tags);
        }
        Ok(out)
    }

    /// The security groups instance `id` in `region` is in, by id, as AWS reports them: the
    /// instance's own, which are its primary network interface's (moto keeps an instance
    /// launched without groups at none of its own, its interface in the default group).
    pub fn instance_groups(&self, region: &str, id: &str) -> Result<Vec<String>, HarnessError> {
        let ids = |xml: &str| -> Vec<String> {
            let mut out: Vec<String> = xml
                .split("<groupId>")
                .skip(1)
                .filter_map(|g| g.split_once("</groupId>").map(|(i, _)| i.to_owned()))
                .collect();
            out.sort();
            out.dedup();
            out
        };
        let body = format!("Action=DescribeInstanceAttribute&Version=2016-11-15&InstanceId={id}&Attribute=groupSet");
        let own = ids(&self.aws_ok("ec2", region, "POST", "/", &body)?);
        if !own.is_empty() {
            return Ok(own);
        }
        let body = format!(
            "Action=DescribeNetworkInterfaces&Version=2016-11-15&Filter.1.Name=attachment.instance-id&Filter.1.Value.1={id}"
        );
        Ok(ids(&self.aws_ok("ec2", region, "POST", "/", &body)?))
    }

    /// The number of ingress and egress rules of security group `id` in `region`.
    pub fn group_rules(&self, region: &str, id: &str) -> Result<(usize, usize), HarnessError> {
        let body = format!("Action=DescribeSecurityGroups&Version=2016-11-15&GroupId.1={id}");
        let answer = self.aws_ok("ec2", region, "POST", "/", &body)?;
        let count = |tag: &str| {
            let open = format!("<{tag}>");
            let close = format!("</{tag}>");
            between(&answer, &open, &close).map_or(0, |rules| rules.matches("<ipProtocol>").count())
        };
        Ok((count("ipPermissions"), count("ipPermissionsEgress")))
    }

    /// The status (`Enabled`, `Disabled`) of each lifecycle rule of `bucket`, by rule id.
    pub fn lifecycle_status(&self, bucket: &str) -> Result<BTreeMap<String, String>, HarnessError> {
        let answer = self.aws_ok("s3", "us-east-1", "GET", &format!("/{bucket}?lifecycle"), "")?;
        Ok(answer
            .split("<Rule>")
            .skip(1)
            .filter_map(|r| Some((between(r, "<ID>", "</ID>")?, between(r, "<Status>", "</Status>")?)))
            .collect())
    }

    /// Creates what an RDS instance stands on in `region` (see [`DbNetwork`]), its groups
    /// named after `name`.
    pub fn create_db_network(&self, region: &str, name: &str) -> Result<DbNetwork, HarnessError> {
        const EC2: &str = "2016-11-15";
        let p = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        let answer = self.aws_query("ec2", region, "CreateVpc", EC2, &p(&[("CidrBlock", "10.0.0.0/16")]))?;
        let vpc = required(&answer, "vpcId", "CreateVpc")?;
        let mut subnets = Vec::new();
        for (i, zone) in ["a", "b"].iter().enumerate() {
            let cidr = format!("10.0.{}.0/24", i + 1);
            let az = format!("{region}{zone}");
            let params = p(&[("VpcId", &vpc), ("CidrBlock", &cidr), ("AvailabilityZone", &az)]);
            let answer = self.aws_query("ec2", region, "CreateSubnet", EC2, &params)?;
            subnets.push(required(&answer, "subnetId", "CreateSubnet")?);
        }
        let params = p(&[("VpcId", &vpc), ("GroupName", name), ("GroupDescription", "database clients")]);
        let answer = self.aws_query("ec2", region, "CreateSecurityGroup", EC2, &params)?;
        let security_group = required(&answer, "groupId", "CreateSecurityGroup")?;

        let subnet_group = format!("{name}-subnets");
        let mut params = p(&[("DBSubnetGroupName", &subnet_group), ("DBSubnetGroupDescription", name)]);
        for (i, s) in subnets.iter().enumerate() {
            params.push((format!("SubnetIds.SubnetIdentifier.{}", i + 1), s.clone()));
        }
        self.aws_query("rds", region, "CreateDBSubnetGroup", RDS, &params)?;
        let parameter_group = format!("{name}-params");
        let params = p(&[
            ("DBParameterGroupName", &parameter_group),
            ("DBParameterGroupFamily", "postgres16"),
            ("Description", name),
        ]);
        self.aws_query("rds", region, "CreateDBParameterGroup", RDS, &params)?;

        let key = self.aws_json("kms", region, "1.1", "TrentService.CreateKey", &serde_json::json!({}))?;
        let kms_key =
            key["KeyMetadata"]["Arn"].as_str().map(str::to_owned).ok_or_else(|| HarnessError::HttpStatus {
                url: format!("{} (CreateKey)", self.url()),
                status_line: format!("no KeyMetadata.Arn in {key}"),
            })?;
        Ok(DbNetwork {
            region: region.to_owned(),
            vpc,
            subnets,
            security_group,
            subnet_group,
            parameter_group,
            kms_key,
        })
    }

    /// Creates an encrypted PostgreSQL 16 instance of `class` on `network` (its subnet group,
    /// parameter group, security group and key), tagged with `tags`; its ARN.
    pub fn create_db_instance(
        &self,
        network: &DbNetwork,
        identifier: &str,
        class: &str,
        tags: &[(&str, &str)],
    ) -> Result<String, HarnessError> {
        let mut params: Vec<(String, String)> = [
            ("DBInstanceIdentifier", identifier),
            ("Engine", "postgres"),
            ("EngineVersion", "16.3"),
            ("DBInstanceClass", class),
            ("AllocatedStorage", "20"),
            ("MasterUsername", "ledger"),
            ("MasterUserPassword", "not-a-secret-1"),
            ("DBSubnetGroupName", &network.subnet_group),
            ("DBParameterGroupName", &network.parameter_group),
            ("VpcSecurityGroupIds.VpcSecurityGroupId.1", &network.security_group),
            ("StorageEncrypted", "true"),
            ("KmsKeyId", &network.kms_key),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        for (i, (k, v)) in tags.iter().enumerate() {
            params.push((format!("Tags.Tag.{}.Key", i + 1), (*k).to_owned()));
            params.push((format!("Tags.Tag.{}.Value", i + 1), (*v).to_owned()));
        }
        let answer = self.aws_query("rds", &network.region, "CreateDBInstance", RDS, &params)?;
        required(&answer, "DBInstanceArn", "CreateDBInstance")
    }

    /// Creates `identifier` on `network` (in its region) as a read replica of `source_arn`,
    /// as an operator would have set a standby up before drplan managed it; its ARN.
    pub fn create_db_replica(
        &self,
        network: &DbNetwork,
        identifier: &str,
        source_arn: &str,
    ) -> Result<String, HarnessError> {
        let params: Vec<(String, String)> = [
            ("DBInstanceIdentifier", identifier),
            ("SourceDBInstanceIdentifier", source_arn),
            ("DBSubnetGroupName", &network.subnet_group),
            ("DBParameterGroupName", &network.parameter_group),
            ("VpcSecurityGroupIds.VpcSecurityGroupId.1", &network.security_group),
            ("KmsKeyId", &network.kms_key),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let answer = self.aws_query("rds", &network.region, "CreateDBInstanceReadReplica", RDS, &params)?;
        required(&answer, "DBInstanceArn", "CreateDBInstanceReadReplica")
    }

    /// Creates an Aurora MySQL cluster `identifier` in `region` with one instance
    /// `{identifier}-1` of `class`; its ARN. With `source`, a cross-region replica cluster of
    /// that cluster's ARN.
    pub fn create_aurora_cluster(
        &self,
        region: &str,
        identifier: &str,
        class: &str,
        source: Option<&str>,
    ) -> Result<String, HarnessError> {
        let mut params: Vec<(String, String)> = [
            ("DBClusterIdentifier", identifier),
            ("Engine", "aurora-mysql"),
            ("EngineVersion", "8.0.mysql_aurora.3.05.2"),
            ("MasterUsername", "ledger"),
            ("MasterUserPassword", "not-a-secret-1"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        if let Some(source) = source {
            params.push(("ReplicationSourceIdentifier".to_owned(), source.to_owned()));
        }
        let answer = self.aws_query("rds", region, "CreateDBCluster", RDS, &params)?;
        let arn = required(&answer, "DBClusterArn", "CreateDBCluster")?;
        let instance: Vec<(String, String)> = [
            ("DBInstanceIdentifier", format!("{identifier}-1")),
            ("DBClusterIdentifier", identifier.to_owned()),
            ("Engine", "aurora-mysql".to_owned()),
            ("DBInstanceClass", class.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        self.aws_query("rds", region, "CreateDBInstance", RDS, &instance)?;
        Ok(arn)
    }

    /// Every Aurora cluster moto holds in `region`: identifier → its replication source, if any.
    pub fn db_clusters(&self, region: &str) -> Result<BTreeMap<String, Option<String>>, HarnessError> {
        let answer = self.aws_query("rds", region, "DescribeDBClusters", RDS, &[])?;
        Ok(answer
            .split("<DBCluster>")
            .skip(1)
            .filter_map(|item| {
                let item = item.split("</DBCluster>").next().unwrap_or_default();
                let id = between(item, "<DBClusterIdentifier>", "</DBClusterIdentifier>")?;
                let source = between(item, "<ReplicationSourceIdentifier>", "</ReplicationSourceIdentifier>")
                    .filter(|s| !s.is_empty());
                Some((id, source))
            })
            .collect())
    }

    /// Every RDS instance moto holds in `region`, by identifier.
    pub fn db_instances(&self, region: &str) -> Result<BTreeMap<String, DbTruth>, HarnessError> {
        let mut out = BTreeMap::new();
        let mut marker: Option<String> = None;
        loop {
            let mut params = vec![("MaxRecords".to_owned(), "100".to_owned())];
            params.extend(marker.take().map(|m| ("Marker".to_owned(), m)));
            let answer = self.aws_query("rds", region, "DescribeDBInstances", RDS, &params)?;
            for item in answer.split("<DBInstance>").skip(1) {
                let item = item.split("</DBInstance>").next().unwrap_or_default();
                let db = db_truth(item);
                out.insert(db.identifier.clone(), db);
            }
            let result = answer.rsplit("</DBInstances>").next().unwrap_or_default();
            match between(result, "<Marker>", "</Marker>").filter(|m| !m.is_empty()) {
                Some(m) => marker = Some(m),
                None => return Ok(out),
            }
        }
    }

    /// Puts one CloudWatch sample as the service that publishes it would: `value` of
    /// `metric` in `namespace` (`AWS/RDS`) with `dimensions`, stamped `timestamp` (Unix
    /// seconds), in `region`.
    pub fn put_metric(
        &self,
        region: &str,
        namespace: &str,
        metric: &str,
        dimensions: &[(&str, &str)],
        value: f64,
        timestamp: i64,
    ) -> Result<(), HarnessError> {
        let dimensions: Vec<serde_json::Value> =
            dimensions.iter().map(|(n, v)| serde_json::json!({ "Name": n, "Value": v })).collect();
        let body = serde_json::json!({
            "Namespace": namespace,
            "MetricData": [{ "MetricName": metric, "Dimensions": dimensions, "Timestamp": timestamp, "Value": value }],
        });
        self.aws_json("monitoring", region, "1.0", "GraniteServiceVersion20100801.PutMetricData", &body).map(drop)
    }

    /// The `Maximum` of `metric` with `dimensions` in `namespace` per 60-second period from
    /// `start` (inclusive) to `end` (exclusive), as `(period start, value)`, oldest first.
    pub fn metric_maxima(
        &self,
        region: &str,
        namespace: &str,
        metric: &str,
        dimensions: &[(&str, &str)],
        start: i64,
        end: i64,
    ) -> Result<Vec<(i64, f64)>, HarnessError> {
        let dimensions: Vec<serde_json::Value> =
            dimensions.iter().map(|(n, v)| serde_json::json!({ "Name": n, "Value": v })).collect();
        let body = serde_json::json!({
            "MetricDataQueries": [{
                "Id": "q0",
                "MetricStat": {
                    "Metric": { "Namespace": namespace, "MetricName": metric, "Dimensions": dimensions },
                    "Period": 60,
                    "Stat": "Maximum",
                },
            }],
            "StartTime": start,
            "EndTime": end,
            "ScanBy": "TimestampAscending",
        });
        let answer =
            self.aws_json("monitoring", region, "1.0", "GraniteServiceVersion20100801.GetMetricData", &body)?;
        let result = &answer["MetricDataResults"][0];
        let empty = Vec::new();
        let times = result["Timestamps"].as_array().unwrap_or(&empty);
        let values = result["Values"].as_array().unwrap_or(&empty);
        Ok(times.iter().zip(values).filter_map(|(t, v)| Some((t.as_f64()? as i64, v.as_f64()?))).collect())
    }
}

/// The RDS API version of the query protocol.
const RDS: &str = "2014-10-31";

/// One `<DBInstance>` element's fields.
fn db_truth(xml: &str) -> DbTruth {
    let text = |name: &str| between(xml, &format!("<{name}>"), &format!("</{name}>")).map(|s| unescape(&s));
    let all = |name: &str| all_between(xml, &format!("<{name}>"), &format!("</{name}>"));
    let tags = between(xml, "<TagList>", "</TagList>").unwrap_or_default();
    DbTruth {
        identifier: text("DBInstanceIdentifier").unwrap_or_default(),
        arn: text("DBInstanceArn").unwrap_or_default(),
        status: text("DBInstanceStatus").unwrap_or_default(),
        class: text("DBInstanceClass").unwrap_or_default(),
        endpoint: between(xml, "<Endpoint>", "</Endpoint>")
            .and_then(|e| between(&e, "<Address>", "</Address>"))
            .unwrap_or_default(),
        source: text("ReadReplicaSourceDBInstanceIdentifier").filter(|s| !s.is_empty()),
        replicas: all("ReadReplicaDBInstanceIdentifier"),
        subnet_group: text("DBSubnetGroupName").unwrap_or_default(),
        parameter_group: text("DBParameterGroupName").unwrap_or_default(),
        security_groups: all("VpcSecurityGroupId"),
        kms_key: text("KmsKeyId").unwrap_or_default(),
        tags: tags
            .split("<Tag>")
            .skip(1)
            .filter_map(|t| {
                Some((unescape(&between(t, "<Key>", "</Key>")?), unescape(&between(t, "<Value>", "</Value>")?)))
            })
            .collect(),
    }
}

/// The text of the element `name` in a query API's answer, or an error naming `operation`.
fn required(answer: &str, name: &str, operation: &str) -> Result<String, HarnessError> {
    between(answer, &format!("<{name}>"), &format!("</{name}>")).ok_or_else(|| HarnessError::HttpStatus {
        url: operation.to_owned(),
        status_line: format!("no <{name}> in the answer: {}", &answer[..answer.len().min(500)]),
    })
}

/// `s` percent-encoded for a form body: unreserved characters kept, everything else escaped.
fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// XML text with its five predefined entities replaced.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

/// The text of every `open`…`close` element, in order.
fn all_between(text: &str, open: &str, close: &str) -> Vec<String> {
    text.split(open).skip(1).filter_map(|rest| rest.split_once(close).map(|(inside, _)| unescape(inside))).collect()
}

/// The text between the first `open` and the `close` after it.
fn between(text: &str, open: &str, close: &str) -> Option<String> {
    let rest = text.split_once(open)?.1;
    rest.split_once(close).map(|(inside, _)| inside.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_up_and_reads_back_from_moto() {
        let moto = Running::start(Emulator::Moto).unwrap();
        moto.create_bucket("state").unwrap();
        moto.put_object("state", "a/b.json", "{}").unwrap();
        let (status, body) = moto.aws_request("s3", "us-east-1", "GET", "/state/a/b.json", "").unwrap();
        assert_eq!((status, body.as_str()), (200, "{}"));
        moto.create_hosted_zone("example.com").unwrap();
        let (_, zones) = moto.aws_request("route53", "us-east-1", "GET", "/2013-04-01/hostedzone", "").unwrap();
        assert!(zones.contains("<Name>example.com.</Name>"), "{zones}");
        assert!(moto.live_instances("us-east-1").unwrap().is_empty());
        let err = moto.aws_request("ec2", "us-east-1", "POST", "/", "Action=Nonsense").map(|r| r.0).unwrap();
        assert!(err >= 400, "an unknown action is refused");
    }

    #[test]
    fn seeds_a_database_and_its_lag_samples() {
        let moto = Running::start(Emulator::Moto).unwrap();
        let net = moto.create_db_network("us-east-1", "ledger").unwrap();
        assert_eq!((net.subnets.len(), net.subnet_group.as_str()), (2, "ledger-subnets"));
        assert!(net.kms_key.starts_with("arn:aws:kms:us-east-1:"), "{}", net.kms_key);
        let arn = moto.create_db_instance(&net, "ledger", "db.r6g.large", &[("drplan:project", "p&q")]).unwrap();
        assert!(arn.ends_with(":db:ledger"), "{arn}");

        let all = moto.db_instances("us-east-1").unwrap();
        let db = &all["ledger"];
        assert_eq!(db.arn, arn);
        assert_eq!((db.status.as_str(), db.class.as_str()), ("available", "db.r6g.large"));
        assert_eq!((db.subnet_group.as_str(), db.parameter_group.as_str()), ("ledger-subnets", "ledger-params"));
        assert_eq!(db.security_groups, vec![net.security_group.clone()]);
        assert_eq!(db.kms_key, net.kms_key);
        assert_eq!(db.tags.get("drplan:project").map(String::as_str), Some("p&q"));
        assert_eq!((db.source.as_deref(), db.replicas.len()), (None, 0));
        assert!(db.endpoint.starts_with("ledger."), "{}", db.endpoint);
        assert!(moto.db_instances("us-west-2").unwrap().is_empty());

        // 2026-01-01T00:00:00Z and the minute after; another region holds nothing.
        let t = 1_767_225_600;
        let dims = [("DBInstanceIdentifier", "ledger")];
        moto.put_metric("us-east-1", "AWS/RDS", "ReplicaLag", &dims, 4.0, t + 5).unwrap();
        moto.put_metric("us-east-1", "AWS/RDS", "ReplicaLag", &dims, 1.5, t + 70).unwrap();
        let got = moto.metric_maxima("us-east-1", "AWS/RDS", "ReplicaLag", &dims, t, t + 600).unwrap();
        assert_eq!(got, vec![(t, 4.0), (t + 60, 1.5)]);
        assert!(moto.metric_maxima("us-west-2", "AWS/RDS", "ReplicaLag", &dims, t, t + 600).unwrap().is_empty());
    }

    #[test]
    fn form_values_are_percent_encoded() {
        assert_eq!(form_encode("AWS/RDS a:b&c=d~e"), "AWS%2FRDS%20a%3Ab%26c%3Dd~e");
        assert_eq!(unescape("a&amp;lt;b&lt;"), "a&lt;b<");
    }
}
