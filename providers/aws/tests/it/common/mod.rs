//! Shared by the moto tests: an emulator, an AWS-only configuration, and an interceptor
//! that records every request the provider sends.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_config::SdkConfig;
use aws_sdk_ec2::config::interceptors::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_ec2::config::{ConfigBag, Intercept, RuntimeComponents, SharedInterceptor};
use aws_sdk_ec2::error::BoxError;
use aws_sdk_ec2::operation::run_instances::RunInstancesInput;
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
use drplan_core::config::Config;
use drplan_core::plan::{self, Prior};
use drplan_harness::{Emulator, Running};
use drplan_provider_aws::pace::{Pace, ROUTE53_REQUESTS, ROUTE53_WINDOW};
use drplan_provider_aws::{AwsProvider, sdk_config};
use drplan_provider_fake::kit::{Backup, Failover, Region, Topology};

/// One of the AMIs moto ships in every region.
pub const AMI: &str = "ami-12c6146b";
pub const ZONE: &str = "shop.example.com";

/// Every request sent (one line each: the EC2 action or the HTTP method and path), when it
/// left, and the ClientToken of every RunInstances.
#[derive(Debug, Default)]
pub struct Recorder {
    pub requests: Mutex<Vec<String>>,
    pub sent_at: Mutex<Vec<Instant>>,
    pub run_tokens: Mutex<Vec<String>>,
}

impl Recorder {
    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    pub fn since(&self, start: usize) -> Vec<String> {
        self.requests.lock().unwrap()[start..].to_vec()
    }

    /// When each Route 53 request left (its paths start with the API version), in order.
    pub fn route53_times(&self) -> Vec<Instant> {
        let requests = self.requests.lock().unwrap();
        let times = self.sent_at.lock().unwrap();
        let mut out: Vec<Instant> =
            requests.iter().zip(times.iter()).filter(|(r, _)| r.contains("/2013-04-01/")).map(|(_, t)| *t).collect();
        out.sort();
        out
    }

    pub fn tokens(&self) -> Vec<String> {
        self.run_tokens.lock().unwrap().clone()
    }
}

#[derive(Debug)]
struct Recording(Arc<Recorder>);

impl Intercept for Recording {
    fn name(&self) -> &'static str {
        "drplan-test-recorder"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(run) = context.input().downcast_ref::<RunInstancesInput>() {
            self.0.run_tokens.lock().unwrap().push(run.client_token().unwrap_or_default().to_owned());
        }
        Ok(())
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let body = request.body().bytes().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
        let action = body.split('&').find_map(|p| p.strip_prefix("Action=")).map(str::to_owned);
        let line = action.unwrap_or_else(|| format!("{} {}", request.method(), request.uri()));
        // One lock for both, so the two lists stay aligned under concurrent requests.
        let mut requests = self.0.requests.lock().unwrap();
        self.0.sent_at.lock().unwrap().push(Instant::now());
        requests.push(line);
        Ok(())
    }
}

pub struct Env {
    pub moto: Running,
    pub sdk: SdkConfig,
    /// Route 53's pace for this emulator: each stands for its own account, so tests running
    /// side by side in one process do not wait on one another.
    pub route53_pace: Arc<Pace>,
}

pub async fn moto() -> Env {
    let moto = Running::start(Emulator::Moto).expect("moto should start");
    let cfg = sdk_config(Some(moto.url()), "us-east-1").await;
    // Static credentials on the config, not in the environment parallel tests share.
    // Plain HTTP: moto listens on loopback without TLS.
    let inner = aws_smithy_http_client::Builder::new().build_http();
    let sdk = cfg
        .to_builder()
        .http_client(inner)
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "drplan-test",
        )))
        .build();
    Env { moto, sdk, route53_pace: Arc::new(Pace::new(ROUTE53_REQUESTS, ROUTE53_WINDOW)) }
}

impl Env {
    pub fn provider(&self, config: &Config) -> (AwsProvider, Arc<Recorder>) {
        let (provider, recorder) = self.provider_paced_by_process(config);
        (provider.with_route53_pace(Arc::clone(&self.route53_pace)), recorder)
    }

    /// A provider as the binary builds it: Route 53 paced by the process-wide limiter.
    pub fn provider_paced_by_process(&self, config: &Config) -> (AwsProvider, Arc<Recorder>) {
        let recorder = Arc::new(Recorder::default());
        let interceptor = SharedInterceptor::new(Recording(Arc::clone(&recorder)));
        (AwsProvider::with_sdk_config(config, &self.sdk, vec![interceptor]), recorder)
    }

    pub fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        let conf = aws_sdk_ec2::config::Builder::from(&self.sdk).region(aws_config::Region::new(region.to_owned()));
        aws_sdk_ec2::Client::from_conf(conf.build())
    }

    pub fn route53(&self) -> aws_sdk_route53::Client {
        aws_sdk_route53::Client::new(&self.sdk)
    }

    pub fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk)
            .region(aws_config::Region::new(region.to_owned()))
            .force_path_style(true);
        aws_sdk_s3::Client::from_conf(conf.build())
    }

    /// The hosted zone, as the pipeline that owns the domain would create it.
    pub async fn create_zone(&self, zone: &str) -> String {
        let out = self
            .route53()
            .create_hosted_zone()
            .name(zone)
            .caller_reference(format!("test-{zone}"))
            .send()
            .await
            .expect("CreateHostedZone");
        out.hosted_zone().expect("zone").id().trim_start_matches("/hostedzone/").to_owned()
    }

    /// `config(active, standby)` with this emulator's endpoint.
    pub fn config(&self, active: &str, standby: &str) -> Config {
        load(&shop_hcl(self.moto.url(), active, standby))
    }
}

#[allow(unused_imports, reason = "each test binary uses a part of it")]
pub use drplan_provider_fake::kit::{assert_converged, load, refresh};

/// An AWS-only topology: two regions with compute pools, failover DNS with health checks,
/// an S3 backup destination. No Kubernetes, no GCP.
pub fn shop_hcl(endpoint: &str, active: &str, standby: &str) -> String {
    let short = |name: &str| if name == "us-east-1" { "use1" } else { "euw1" };
    let (first, second) = if active == "us-east-1" { (active, standby) } else { (standby, active) };
    let region = |name: &str| {
        let role = if name == active { "active" } else { "standby" };
        Region::aws(name, role).endpoint(&format!("{}.{ZONE}", short(name))).compute(
            "nodes",
            "t3.micro",
            AMI,
            (2, 1, 0),
        )
    };
    Topology::new("shop")
        .aws(Some(endpoint))
        .component("web", Some(1), (2, 1, 0))
        .region(region(first))
        .region(region(second))
        .backup(Backup::new("database", "0 */1 * * *", "30d", "shop/backup-tool:1").full().s3(
            "primary",
            "shop-backups",
            "dr/",
            "eu-west-1",
            Some("GLACIER"),
        ))
        .failover(Failover::manual(&[standby]).dns(ZONE, &format!("api.{ZONE}"), 60).health_check("30s", 2))
        .hcl()
}

/// Plans against moto and runs the first `limit` changes in graph order (health gates
/// skipped), recording results in `prior` as state would. Returns the plan's changes.
pub async fn converge(
    provider: &AwsProvider,
    config: &Config,
    prior: &mut Prior,
    plan_id: &str,
    limit: usize,
) -> Vec<plan::Change> {
    drplan_provider_fake::kit::converge(provider, config, prior, plan_id, limit).await.changes
}

/// Creates `bucket` in `region`, as the pipeline that keeps the backups would.
pub async fn create_bucket(s3: &aws_sdk_s3::Client, bucket: &str, region: &str) {
    s3.create_bucket()
        .bucket(bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
                .build(),
        )
        .send()
        .await
        .expect("CreateBucket");
}

/// Writes `content` at `key`, as a backup run would.
pub async fn put_object(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, content: Vec<u8>) {
    s3.put_object().bucket(bucket).key(key).body(content.into()).send().await.unwrap_or_else(|e| {
        panic!("PutObject {key}: {}", aws_sdk_s3::error::DisplayErrorContext(&e));
    });
}
