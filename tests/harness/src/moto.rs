//! Direct calls to a running moto, beside drplan: the setup other tooling would have done
//! (a hosted zone, a state bucket) and the ground truth tests check against (live instances).
//!
//! moto reads the service and region from the credential scope and does not check
//! signatures, so plain requests with a placeholder `Authorization` header are enough.

use crate::{Emulator, HarnessError, Running};
use std::collections::BTreeSet;

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
        if self.kind() != Emulator::Moto {
            return Err(HarnessError::NotMoto { operation: "aws_request", emulator: self.kind() });
        }
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=x/20260101/{region}/{service}/aws4_request, SignedHeaders=host, Signature=0"
        );
        // The query APIs (EC2) take a form body; Route 53 and S3 take XML or bytes.
        let content_type = if service == "ec2" { "application/x-www-form-urlencoded" } else { "text/xml" };
        crate::request(self.url(), method, path, &[("Authorization", &auth), ("Content-Type", content_type)], body)
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
}
