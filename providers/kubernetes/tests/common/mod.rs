//! Shared test support: kmock clusters behind a generated kubeconfig, the configuration
//! they serve, the pipeline's Deployments, and the engine's plan → apply → refresh loop.

#![allow(dead_code)] // each test binary uses a part of it

use std::collections::BTreeMap;
use std::path::PathBuf;

use drplan_core::SourceFile;
use drplan_core::config::{self, Config};
use drplan_core::plan::resource::Kind;
use drplan_core::plan::{self, Options, Plan, Prior, Snapshot, Step, desired};
use drplan_core::provider::{ApplyRequest, Provider, RefreshRequest, idempotency_token};
use drplan_harness::{Emulator, Running, write_kubeconfig};
use drplan_provider_fake::FakeProvider;
use drplan_provider_kubernetes::{KubernetesProvider, client_for_context};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};

pub const NAMESPACE: &str = "bot-core";
pub const PROJECT: &str = "bot-core";

/// kmock servers, one per context, and the kubeconfig that names them.
pub struct Clusters {
    pub kmocks: BTreeMap<String, Running>,
    pub kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Clusters {
    /// Starts one kmock per context (in parallel: each takes a moment to import) and writes
    /// a kubeconfig with a context for each, plus `extra` contexts pointing elsewhere.
    pub fn start(contexts: &[&str], extra: &[(&str, &str)]) -> Clusters {
        let handles: Vec<_> = contexts
            .iter()
            .map(|c| {
                let c = c.to_string();
                std::thread::spawn(move || (c, Running::start(Emulator::Kmock).expect("kmock should start")))
            })
            .collect();
        let kmocks: BTreeMap<String, Running> = handles.into_iter().map(|h| h.join().expect("kmock thread")).collect();
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        let mut entries: Vec<(&str, &str)> = kmocks.iter().map(|(c, k)| (c.as_str(), k.url())).collect();
        entries.extend_from_slice(extra);
        write_kubeconfig(&kubeconfig, &entries).expect("write kubeconfig");
        Clusters { kmocks, kubeconfig, _dir: dir }
    }

    pub async fn client(&self, context: &str) -> kube::Client {
        client_for_context(Some(&self.kubeconfig), context).await.expect("kube client")
    }

    pub async fn deployments(&self, context: &str) -> Api<Deployment> {
        Api::namespaced(self.client(context).await, NAMESPACE)
    }

    pub async fn cronjobs(&self, context: &str) -> Api<CronJob> {
        Api::namespaced(self.client(context).await, NAMESPACE)
    }

    /// Creates the Deployments a deploy pipeline would, before drplan ever runs.
    pub async fn pipeline_deploys(&self, context: &str, names: &[&str], replicas: i32) {
        let api = self.deployments(context).await;
        for name in names {
            api.create(&PostParams::default(), &deployment(name, replicas)).await.expect("create Deployment");
        }
    }

    pub async fn replicas(&self, context: &str, name: &str) -> Option<i32> {
        self.deployments(context).await.get(name).await.expect("get Deployment").spec.replicas
    }

    pub async fn scale_by_hand(&self, context: &str, name: &str, replicas: i32) {
        let patch = serde_json::json!({ "spec": { "replicas": replicas } });
        self.deployments(context)
            .await
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("scale by hand");
    }

    pub async fn suspended(&self, context: &str, name: &str) -> Option<bool> {
        self.cronjobs(context).await.get(name).await.expect("get CronJob").spec.suspend
    }
}

pub fn deployment(name: &str, replicas: i32) -> Deployment {
    let labels = BTreeMap::from([("app".to_owned(), name.to_owned())]);
    Deployment {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(NAMESPACE.to_owned()),
            ..ObjectMeta::default()
        },
        spec: DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector { match_labels: Some(labels.clone()), ..LabelSelector::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels), ..ObjectMeta::default() }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: name.to_owned(),
                        image: Some(format!("bot-core/{name}:1.0")),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        },
        ..Deployment::default()
    }
}

/// A region of the test configuration: name, kubeconfig context, role.
pub type RegionSpec<'a> = (&'a str, &'a str, &'a str);

/// The bot-core shape, small: two components, one backup, DNS failover, and a
/// `kubernetes` block in each region.
pub fn config(regions: &[RegionSpec<'_>]) -> Config {
    let mut text = String::from(
        r#"
drplan {
  project = "bot-core"
}

objectives {
  rto = "2h"
  rpo = "1h"
}

provider "aws" {}

component "ai-service" {
  priority = 1
  replicas = { active = 3, standby = 1, cold = 0 }
}

component "dashboard" {
  priority = 2
  replicas = { active = 2, standby = 0, cold = 0 }
}

backup "database" {
  schedule  = "0 */1 * * *"
  type      = "full"
  retention = "30d"
  image     = "bot-core/backup-tool:latest"

  encryption {
    gpg_recipient = "disaster-recovery@bot-core.com"
  }

  destination "primary" {
    s3 {
      bucket = "bot-core-backups"
      prefix = "dr/"
      region = "us-east-1"
    }
  }

  destination "tertiary" {
    nas {
      path = "/mnt/nas/bot-core"
    }
  }
}
"#,
    );
    for (name, context, role) in regions {
        text += &format!(
            r#"
region "{name}" {{
  cloud    = "aws"
  role     = "{role}"
  endpoint = "{context}.bot-core.com"

  kubernetes {{
    context   = "{context}"
    namespace = "{NAMESPACE}"
  }}
}}
"#
        );
    }
    let order: Vec<String> =
        regions.iter().filter(|(_, _, role)| *role != "active").map(|(n, _, _)| format!("\"{n}\"")).collect();
    if !order.is_empty() {
        text += &format!(
            r#"
failover {{
  mode  = "manual"
  order = [{}]

  dns {{
    zone   = "bot-core.com"
    record = "api.bot-core.com"
    ttl    = 60
  }}

  health_check {{
    protocol  = "HTTPS"
    port      = 443
    path      = "/health"
    interval  = "30s"
    threshold = 2
  }}
}}
"#,
            order.join(", ")
        );
    }
    let loaded = config::load(&[SourceFile::new("main.hcl", text)], &|_| None);
    loaded.config.unwrap_or_else(|| panic!("{:#?}", loaded.diagnostics))
}

/// The provider under test, with the fake standing in for the clouds behind the kinds it
/// does not manage (DNS, health checks, buckets), so plans keep their real shape.
pub struct World {
    pub k8s: KubernetesProvider,
    pub fake: FakeProvider,
    /// `<action> <address>` of every change sent to the Kubernetes provider, in order.
    pub calls: Vec<String>,
}

impl World {
    pub async fn new(config: &Config, clusters: &Clusters) -> World {
        let k8s = KubernetesProvider::new(config, Some(&clusters.kubeconfig)).await.expect("provider");
        let others =
            Kind::ALL.iter().filter(|k| !matches!(k, Kind::Workload | Kind::BackupJob)).map(|k| (*k, None)).collect();
        World { k8s, fake: FakeProvider::new("clouds", others), calls: Vec::new() }
    }

    pub async fn refresh(&self, config: &Config) -> Snapshot {
        let regions: Vec<String> = config.regions.iter().map(|r| r.name.clone()).collect();
        let want = desired::desired(config);
        let request = RefreshRequest { project: &config.project, regions: &regions, desired: &want };
        let mut live = self.k8s.refresh(&request).await.expect("kubernetes refresh");
        let other = self.fake.refresh(&request).await.expect("fake refresh");
        live.objects.extend(other.objects);
        live.unreachable.extend(other.unreachable);
        live
    }

    pub async fn plan(&self, config: &Config, prior: &Prior) -> Plan {
        let live = self.refresh(config).await;
        plan::plan(config, prior, Some(&live), &Options::default()).expect("plan")
    }

    /// Plans, then runs every change in the graph's order through the provider that
    /// manages its kind, recording each result in `prior` as state would.
    pub async fn converge(&mut self, config: &Config, prior: &mut Prior, plan_id: &str) -> Plan {
        let plan = self.plan(config, prior).await;
        assert!(plan.can_apply(false), "{:#?}", plan.safety);
        for node in &plan.graph {
            // The fake's health checks are always healthy: gates pass.
            let Step::Change(i) = node.step else { continue };
            let change = &plan.changes[i];
            let token = idempotency_token(plan_id, &change.address);
            let request = ApplyRequest { project: &config.project, change, idempotency_token: &token };
            let result = if self.k8s.manages(change.kind, None) {
                self.calls.push(format!("{} {}", change.action.as_str(), change.address));
                self.k8s.apply(&request).await
            } else {
                self.fake.apply(&request).await
            };
            match result.unwrap_or_else(|e| panic!("{e}")) {
                Some(o) => prior.objects.insert(change.address.clone(), o),
                None => prior.objects.remove(&change.address),
            };
        }
        for a in &plan.forget {
            prior.objects.remove(a);
        }
        prior.roles = config.regions.iter().map(|r| (r.name.clone(), r.role)).collect();
        plan
    }

    pub async fn assert_converged(&self, config: &Config, prior: &Prior) {
        let plan = self.plan(config, prior).await;
        assert!(!plan.has_changes(), "left over: {:#?}", plan.changes);
        assert!(plan.drift.is_empty(), "drift: {:#?}", plan.drift);
    }
}

/// A TCP proxy in front of an emulator that records the request line of every HTTP request
/// through it, to count the API calls a provider makes.
pub struct CountingProxy {
    pub url: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl CountingProxy {
    pub fn start(upstream_url: &str) -> CountingProxy {
        use std::io::{Read, Write};
        use std::net::{TcpListener, TcpStream};

        let upstream = upstream_url.trim_start_matches("http://").trim_end_matches('/').to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = std::sync::Arc::clone(&requests);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { return };
                let Ok(mut server) = TcpStream::connect(&upstream) else { return };
                let (Ok(mut client_back), Ok(mut server_back)) = (client.try_clone(), server.try_clone()) else {
                    return;
                };
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut server_back, &mut client_back);
                    let _ = client_back.shutdown(std::net::Shutdown::Both);
                });
                let log = std::sync::Arc::clone(&log);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n) = client.read(&mut buf) {
                        if n == 0 || server.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        // Request lines start a line and end in the HTTP version; JSON bodies never do.
                        for line in String::from_utf8_lossy(&buf[..n]).lines() {
                            let mut parts = line.split(' ');
                            let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next())
                            else {
                                continue;
                            };
                            if version.starts_with("HTTP/") && method.chars().all(|c| c.is_ascii_uppercase()) {
                                log.lock().unwrap_or_else(|e| e.into_inner()).push(format!("{method} {path}"));
                            }
                        }
                    }
                    let _ = server.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        CountingProxy { url, requests }
    }

    /// The requests so far, as `METHOD /path?query`, sorted; then forgets them.
    pub fn take(&self) -> Vec<String> {
        let mut r = std::mem::take(&mut *self.requests.lock().unwrap_or_else(|e| e.into_inner()));
        r.sort();
        r
    }
}
