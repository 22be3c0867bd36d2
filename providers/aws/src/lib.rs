//! AWS provider: EC2 instance pools, Route 53 failover records and health checks, S3 backup buckets,
//! and RDS writers and read replicas with their CloudWatch replication lag.

pub mod aurora;
pub mod client;
mod databases;
mod ec2;
pub mod error;
pub mod incident;
mod nas;
pub mod pace;
mod points;
pub mod rds;
mod route53;
mod s3;
mod thaw;

pub use nas::NasStore;

use std::collections::BTreeMap;

use aws_config::{Region, SdkConfig};
use aws_sdk_ec2::config::SharedInterceptor;
use drplan_core::config::{Cloud, Config, Target};
use drplan_core::plan::resource::Kind;
use drplan_core::plan::{Change, Observed, Resource, Snapshot};
use drplan_core::provider::{ApplyRequest, ErrorClass, Provider, ProviderError, RefreshRequest, cloud_of};
use drplan_core::recovery::PointContents;

use crate::pace::Pace;

pub use client::{s3_client, sdk_config};
pub use rds::{DbInstance, LagSample};
pub use route53::Observation;

/// Tags drplan puts on the objects it creates, and finds them by.
pub const TAG_PROJECT: &str = "drplan:project";
pub const TAG_REGION: &str = "drplan:region";
pub const TAG_POOL: &str = "drplan:pool";
pub const TAG_INDEX: &str = "drplan:index";
pub const TAG_SERVES: &str = "drplan:serves";
pub const TAG_DATABASE: &str = "drplan:database";
/// The ID of the one lifecycle rule drplan owns in a backup bucket; other rules are left alone.
pub const LIFECYCLE_RULE_ID: &str = "drplan-retention";

/// Route 53 is a global service signed in us-east-1.
const GLOBAL_REGION: &str = "us-east-1";

/// The AWS provider: one EC2 client per AWS region of the configuration (RDS and
/// CloudWatch clients are made per call), one Route 53 client (paced by the process-wide
/// [`Pace::route53`]), and S3 clients per bucket region.
pub struct AwsProvider {
    base: SdkConfig,
    interceptors: Vec<SharedInterceptor>,
    path_style: bool,
    ec2: BTreeMap<String, aws_sdk_ec2::Client>,
    route53: route53::Route53,
    s3: BTreeMap<String, aws_sdk_s3::Client>,
}

impl AwsProvider {
    /// Builds the provider from the `provider "aws"` block: its `endpoint` and `profile`.
    /// Credentials come from aws-config's usual chain.
    pub async fn new(config: &Config) -> AwsProvider {
        let endpoint = config.aws.as_ref().and_then(|a| a.endpoint.as_deref());
        let profile = config.aws.as_ref().and_then(|a| a.profile.as_deref());
        let base = client::load(endpoint, profile, GLOBAL_REGION).await;
        AwsProvider::with_sdk_config(config, &base, Vec::new())
    }

    /// Waits until `region`'s Route 53 health check passes on observations taken since
    /// `since` (the gate apply passes before moving DNS); see [`route53::Verdict`].
    pub async fn wait_healthy(
        &self,
        project: &str,
        region: &str,
        since: std::time::SystemTime,
        every: std::time::Duration,
        timeout: std::time::Duration,
    ) -> Result<(), String> {
        route53::wait_healthy(&self.route53, project, region, since, every, timeout).await
    }

    /// Route 53's checkers' latest observations of health check `id`: one
    /// `GetHealthCheckStatus`, paced like every Route 53 request. Read-only (`drplan status`).
    pub async fn health_check_status(&self, id: &str) -> Result<Vec<Observation>, ProviderError> {
        route53::observations(&self.route53, id).await
    }

    /// Builds the provider from an already loaded SDK configuration (credentials, endpoint),
    /// adding `interceptors` to every client (request metrics; tests count requests with it).
    pub fn with_sdk_config(config: &Config, base: &SdkConfig, interceptors: Vec<SharedInterceptor>) -> AwsProvider {
        let base = client::with_policy(base);
        let path_style = base.endpoint_url().is_some();
        let mut provider = AwsProvider {
            route53: route53::Route53::new(route53_client(&base, &interceptors), Pace::route53()),
            base,
            interceptors,
            path_style,
            ec2: BTreeMap::new(),
            s3: BTreeMap::new(),
        };
        for region in config.regions.iter().filter(|r| r.cloud == Cloud::Aws) {
            let client = provider.ec2_client(&region.name);
            provider.ec2.insert(region.name.clone(), client);
        }
        for backup in &config.backups {
            for d in &backup.destinations {
                if let Target::S3 { region, .. } = &d.target {
                    let client = provider.s3_client(region);
                    provider.s3.insert(region.clone(), client);
                }
            }
        }
        provider
    }

    /// The same provider with Route 53 requests paced by `pace` instead of the process-wide
    /// limiter (tests that should not wait on one another, or measure another rate).
    pub fn with_route53_pace(mut self, pace: std::sync::Arc<Pace>) -> AwsProvider {
        self.route53 = route53::Route53::new(route53_client(&self.base, &self.interceptors), pace);
        self
    }

    /// The AWS regions this provider serves.
    pub fn regions(&self) -> impl Iterator<Item = &str> {
        self.ec2.keys().map(String::as_str)
    }

    fn ec2_client(&self, region: &str) -> aws_sdk_ec2::Client {
        if let Some(c) = self.ec2.get(region) {
            return c.clone();
        }
        let mut b = aws_sdk_ec2::config::Builder::from(&self.base).region(Region::new(region.to_owned()));
        for i in &self.interceptors {
            b = b.interceptor(i.clone());
        }
        aws_sdk_ec2::Client::from_conf(b.build())
    }

    fn s3_client(&self, region: &str) -> aws_sdk_s3::Client {
        if let Some(c) = self.s3.get(region) {
            return c.clone();
        }
        let mut b = aws_sdk_s3::config::Builder::from(&self.base)
            .region(Region::new(region.to_owned()))
            .force_path_style(self.path_style);
        for i in &self.interceptors {
            b = b.interceptor(i.clone());
        }
        aws_sdk_s3::Client::from_conf(b.build())
    }
}

fn route53_client(base: &SdkConfig, interceptors: &[SharedInterceptor]) -> aws_sdk_route53::Client {
    // Route 53 is global: no lost region stands behind it, so its requests are retried
    // under `RetryPolicy::GLOBAL`, connect failures included (see `route53::Route53::send`).
    let mut b = aws_sdk_route53::config::Builder::from(base).region(Region::new(GLOBAL_REGION));
    for i in interceptors {
        b = b.interceptor(i.clone());
    }
    aws_sdk_route53::Client::from_conf(b.build())
}

impl Provider for AwsProvider {
    fn name(&self) -> &str {
        "aws"
    }

    fn manages(&self, kind: Kind, cloud: Option<&str>) -> bool {
        use drplan_core::plan::step::{Family, performed_by};
        [Family::Compute, Family::Storage, Family::Dns, Family::Database]
            .into_iter()
            .any(|f| performed_by(kind, f, Some("aws"), cloud))
    }

    async fn refresh(&self, request: &RefreshRequest<'_>) -> Result<Snapshot, ProviderError> {
        let regions: Vec<(String, aws_sdk_ec2::Client)> =
            request.regions.iter().filter_map(|r| self.ec2.get(r).map(|c| (r.clone(), c.clone()))).collect();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let (instances, route53, buckets, databases) = tokio::join!(
            ec2::refresh_regions(regions, request.project),
            route53::refresh(&self.route53, request.project, request.desired),
            s3::refresh(|r| self.s3_client(r), request.desired),
            // Boxed, as the other reads' futures are large: together they would not fit a
            // thread's stack in a debug build.
            Box::pin(self.refresh_databases(request.desired, now)),
        );
        let mut snapshot = Snapshot::default();
        for (region, result) in instances {
            match result {
                Ok(objects) => snapshot.objects.extend(objects.into_iter().map(|o| (o.resource.address.clone(), o))),
                Err(e) if e.class == ErrorClass::Unreachable => {
                    snapshot.unreachable.insert(region, e.message);
                }
                Err(e) => return Err(e),
            }
        }
        for o in route53? {
            snapshot.objects.insert(o.resource.address.clone(), o);
        }
        let buckets = buckets?;
        for o in buckets.objects {
            snapshot.objects.insert(o.resource.address.clone(), o);
        }
        snapshot.newest_backup_age = buckets.ages;
        snapshot.unreachable_objects = buckets.unreachable;
        let databases = databases?;
        for o in databases.objects {
            snapshot.objects.insert(o.resource.address.clone(), o);
        }
        snapshot.replication = databases.replication;
        for (region, why) in databases.unreachable {
            snapshot.unreachable.entry(region).or_insert(why);
        }
        Ok(snapshot)
    }

    async fn apply(&self, request: &ApplyRequest<'_>) -> Result<Option<Observed>, ProviderError> {
        drplan_retry::applying(self.apply_change(request)).await
    }

    async fn wait_ready(&self, request: &drplan_core::provider::ReadyRequest<'_>) -> Result<(), ProviderError> {
        match request.change.kind {
            Kind::CatchUp => self.catch_up(request).await.map_err(|e| e.at(&request.change.address)),
            Kind::Thaw if request.change.action != drplan_core::plan::Action::Delete => {
                let client = self.s3_client(thaw_location(request.change));
                thaw::wait(&client, request).await.map_err(|e| e.at(&request.change.address))
            }
            _ => Ok(()),
        }
    }

    async fn list_points(&self, bucket: &Resource) -> Result<(Vec<String>, u32), ProviderError> {
        let (client, name, prefix) = self.destination(bucket)?;
        points::list_points(&client, name, &prefix).await.map_err(|e| e.at(&bucket.address))
    }

    async fn read_point(
        &self,
        bucket: &Resource,
        point: &str,
        manifest: Option<&str>,
    ) -> Result<PointContents, ProviderError> {
        let (client, name, prefix) = self.destination(bucket)?;
        points::read_point(&client, name, &prefix, point, manifest).await.map_err(|e| e.at(&bucket.address))
    }
}

impl AwsProvider {
    /// [`Provider::apply`], its requests sent in the apply phase of the retry policy.
    async fn apply_change(&self, request: &ApplyRequest<'_>) -> Result<Option<Observed>, ProviderError> {
        let change = request.change;
        let address = change.address.as_str();
        if !self.manages(change.kind, cloud_of(change)) {
            return Err(ProviderError::new(
                ErrorClass::Invalid,
                format!("the aws provider does not manage {}", change.kind),
            )
            .at(address));
        }
        let result = match change.kind {
            Kind::Instance => {
                let region = change
                    .region
                    .as_deref()
                    .ok_or_else(|| ProviderError::new(ErrorClass::Invalid, "an instance change names no region"))?;
                ec2::apply(&self.ec2_client(region), region, request).await
            }
            Kind::HealthCheck => route53::apply_health_check(&self.route53, request).await,
            Kind::DnsRecord => route53::apply_record(&self.route53, request).await,
            Kind::Bucket => {
                let location = change
                    .after
                    .as_ref()
                    .or(change.before.as_ref())
                    .and_then(|a| match a.get("location") {
                        Some(drplan_core::plan::Value::Str(s)) => Some(s.clone()),
                        _ => None,
                    })
                    .unwrap_or_else(|| GLOBAL_REGION.to_owned());
                s3::apply(&self.s3_client(&location), &location, request).await
            }
            Kind::Database | Kind::CatchUp => Box::pin(self.apply_database(request)).await,
            // A drill's thaw is forgotten with its restore: the thawed copies expire by
            // themselves after the days asked for, and the archived objects stay.
            Kind::Thaw if change.action == drplan_core::plan::Action::Delete => Ok(None),
            Kind::Thaw => thaw::apply(&self.s3_client(thaw_location(change)), change).await,
            Kind::Evidence | Kind::Quarantine => {
                let region = change
                    .region
                    .as_deref()
                    .ok_or_else(|| ProviderError::new(ErrorClass::Invalid, "an incident's change names no region"))?;
                let client = self.ec2_client(region);
                match change.kind {
                    Kind::Evidence => {
                        let to = change.after.as_ref().and_then(|a| a.get("copy_region")).and_then(|v| v.text());
                        let copy = to.filter(|r| !r.is_empty()).map(|r| self.ec2_client(r));
                        incident::evidence(&client, copy.as_ref(), region, request.project, change).await
                    }
                    _ => incident::quarantine(&client, request.project, change).await,
                }
            }
            Kind::Workload
            | Kind::BackupJob
            | Kind::Restore
            | Kind::StopWrites
            | Kind::ResumeWrites
            | Kind::Hook
            | Kind::Cordon
            | Kind::DenyAll => Err(ProviderError::new(
                ErrorClass::Invalid,
                format!("the aws provider does not manage {}", change.kind),
            )),
        };
        result.map_err(|e| if e.address.is_none() { e.at(address) } else { e })
    }
}

/// The region of the bucket a thaw reads (`location`).
fn thaw_location(change: &Change) -> &str {
    match change.after.as_ref().and_then(|a| a.get("location")) {
        Some(drplan_core::plan::Value::Str(s)) => s,
        _ => GLOBAL_REGION,
    }
}

impl AwsProvider {
    /// The S3 client of a destination's region, its bucket and its prefix as a folder; only
    /// for S3 destinations (`cloud = "aws"`).
    fn destination<'a>(&self, bucket: &'a Resource) -> Result<(aws_sdk_s3::Client, &'a str, String), ProviderError> {
        if bucket.kind != Kind::Bucket || bucket.str("cloud") != Some("aws") {
            return Err(ProviderError::new(ErrorClass::Invalid, "the aws provider holds recovery points only in S3")
                .at(&bucket.address));
        }
        let (name, prefix) = points::location(bucket)?;
        let client = self.s3_client(bucket.str("location").unwrap_or(GLOBAL_REGION));
        Ok((client, name, prefix))
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::config::{Credentials, SharedCredentialsProvider};
    use drplan_core::SourceFile;
    use drplan_core::plan::desired::desired;
    use drplan_core::provider::{Provider, RefreshRequest};
    use drplan_harness::{Emulator, Running};

    use super::AwsProvider;

    /// One region whose endpoint refuses connections is reported unreachable; the other
    /// region and Route 53 are still read.
    #[tokio::test]
    async fn an_unreachable_region_goes_into_the_snapshot() {
        let moto = Running::start(Emulator::Moto).expect("moto should start");
        let hcl = format!(
            r#"
drplan {{
  project = "p"
}}
provider "aws" {{
  endpoint = "{url}"
}}
region "us-east-1" {{
  cloud = "aws"
  role  = "active"
  compute "nodes" {{
    instance_type = "t3.micro"
    image         = "ami-12c6146b"
    count         = {{ active = 1, standby = 0, cold = 0 }}
  }}
}}
region "eu-west-1" {{
  cloud = "aws"
  role  = "standby"
}}
"#,
            url = moto.url()
        );
        let loaded = drplan_core::config::load(&[SourceFile::new("main.hcl", hcl)], &|_| None);
        let Some(config) = loaded.config else { panic!("{:#?}", loaded.diagnostics) };
        let sdk = crate::client::sdk_config(Some(moto.url()), "us-east-1")
            .await
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new("t", "t", None, None, "test")))
            .build();
        let mut provider = AwsProvider::with_sdk_config(&config, &sdk, Vec::new());
        let closed = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
        let dead = sdk.to_builder().endpoint_url(format!("http://{closed}")).build();
        provider.ec2.insert(
            "eu-west-1".into(),
            aws_sdk_ec2::Client::from_conf(
                aws_sdk_ec2::config::Builder::from(&crate::client::with_policy(&dead))
                    .region(aws_config::Region::new("eu-west-1"))
                    .build(),
            ),
        );
        provider
            .ec2_client("us-east-1")
            .run_instances()
            .image_id("ami-12c6146b")
            .min_count(1)
            .max_count(1)
            .tag_specifications(
                aws_sdk_ec2::types::TagSpecification::builder()
                    .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                    .tags(aws_sdk_ec2::types::Tag::builder().key("drplan:project").value("p").build())
                    .tags(aws_sdk_ec2::types::Tag::builder().key("drplan:region").value("us-east-1").build())
                    .tags(aws_sdk_ec2::types::Tag::builder().key("drplan:pool").value("nodes").build())
                    .tags(aws_sdk_ec2::types::Tag::builder().key("drplan:index").value("0").build())
                    .build(),
            )
            .send()
            .await
            .expect("RunInstances");

        let regions = vec!["us-east-1".to_owned(), "eu-west-1".to_owned()];
        let want = desired(&config);
        let snapshot = provider
            .refresh(&RefreshRequest { project: "p", regions: &regions, desired: &want })
            .await
            .expect("an unreachable region does not fail the refresh");
        assert_eq!(snapshot.objects.keys().collect::<Vec<_>>(), vec!["region.us-east-1.compute.nodes[0]"]);
        assert_eq!(snapshot.unreachable.keys().collect::<Vec<_>>(), vec!["eu-west-1"]);
        let why = &snapshot.unreachable["eu-west-1"];
        assert!(why.starts_with("DescribeInstances in region eu-west-1: "), "{why}");
        assert!(!why.contains('\n'), "{why}");
    }
}
