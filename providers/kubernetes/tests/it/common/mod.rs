//! Shared test support: kmock clusters behind a generated kubeconfig, the configuration
//! they serve, the pipeline's Deployments, and the engine's plan → apply → refresh loop.

#![allow(dead_code)] // each test binary uses a part of it

use std::collections::BTreeMap;
use std::path::PathBuf;

use drplan_core::config::Config;
use drplan_core::plan::resource::Kind;
use drplan_core::plan::{Plan, Prior, Snapshot, Step};
use drplan_core::provider::Provider;
use drplan_harness::{Emulator, Running, write_kubeconfig};
use drplan_provider_fake::FakeProvider;
use drplan_provider_fake::kit::{self, Backup, Failover, Overlay, Region, Topology};
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
    deployment_in(NAMESPACE, name, replicas, &format!("bot-core/{name}:1.0"))
}

/// A Deployment of one container running `image`, as a deploy pipeline writes it.
pub fn deployment_in(namespace: &str, name: &str, replicas: i32, image: &str) -> Deployment {
    let labels = BTreeMap::from([("app".to_owned(), name.to_owned())]);
    Deployment {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
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
                        image: Some(image.to_owned()),
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
    let mut topology = Topology::new(PROJECT)
        .objectives("2h", "1h")
        .aws(None)
        .component("ai-service", Some(1), (3, 1, 0))
        .component("dashboard", Some(2), (2, 0, 0))
        .backup(
            Backup::new("database", "0 */1 * * *", "30d", "bot-core/backup-tool:latest")
                .full()
                .gpg("disaster-recovery@bot-core.com")
                .s3("primary", "bot-core-backups", "dr/", "us-east-1", None)
                .nas("tertiary", "/mnt/nas/bot-core"),
        );
    for (name, context, role) in regions {
        topology = topology.region(
            Region::aws(name, role).endpoint(&format!("{context}.bot-core.com")).kubernetes(context, NAMESPACE),
        );
    }
    let order: Vec<&str> = regions.iter().filter(|(_, _, role)| *role != "active").map(|(n, _, _)| *n).collect();
    if !order.is_empty() {
        topology = topology
            .failover(Failover::manual(&order).dns("bot-core.com", "api.bot-core.com", 60).health_check("30s", 2));
    }
    topology.load()
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

    fn both(&self) -> Overlay<'_, KubernetesProvider, FakeProvider> {
        Overlay { first: &self.k8s, rest: &self.fake }
    }

    pub async fn refresh(&self, config: &Config) -> Snapshot {
        kit::refresh(&self.both(), config).await
    }

    pub async fn plan(&self, config: &Config, prior: &Prior) -> Plan {
        kit::plan(&self.both(), config, prior).await
    }

    /// The kit's loop through the provider that manages each change's kind.
    pub async fn converge(&mut self, config: &Config, prior: &mut Prior, plan_id: &str) -> Plan {
        let plan = kit::converge(&self.both(), config, prior, plan_id, kit::ALL).await;
        // Every change ran, in the graph's order: those of the Kubernetes kinds are its calls.
        for node in &plan.graph {
            let Step::Change(i) = node.step else { continue };
            let change = &plan.changes[i];
            if self.k8s.manages(change.kind, None) {
                self.calls.push(format!("{} {}", change.action.as_str(), change.address));
            }
        }
        plan
    }

    pub async fn assert_converged(&self, config: &Config, prior: &Prior) {
        kit::assert_converged(&self.both(), config, prior).await
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
