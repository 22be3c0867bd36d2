//! Kubernetes provider: Deployments scaled across clusters, and the backup CronJobs.
//!
//! drplan never authors Deployments: the application's deploy pipeline creates them and
//! drplan only sets `spec.replicas`. The backup CronJobs (`drplan-backup-<name>`) are
//! drplan's own, labelled with the project so a refresh finds them with one list.

pub mod client;
mod cnpg;
mod error;
mod hook;
mod isolation;
pub mod job;
mod objects;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use drplan_core::config::Config;
use drplan_core::plan::resource::{Attrs, Kind, Resource, Value, address};
use drplan_core::plan::{Action, Change, Observed, Snapshot};
use drplan_core::provider::{ApplyRequest, ErrorClass, Provider, ProviderError, ReadyRequest, RefreshRequest};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};

pub use client::{client_for_context, config_for_context, install_crypto_provider};

/// The CronJob drplan makes for a backup job's attributes (`Err` names a missing one).
pub fn backup_cronjob(project: &str, namespace: &str, attrs: &Attrs) -> Result<CronJob, ProviderError> {
    objects::cronjob(project, namespace, attrs)
        .map_err(|a| ProviderError::new(ErrorClass::Invalid, format!("the backup job has no `{a}` attribute")))
}

/// How long to wait for a cluster to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for an answer: a cluster that hangs is as unreachable as one that is down.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a rollout is polled while apply waits for it.
const ROLLOUT_POLL: Duration = Duration::from_millis(500);

/// One region's cluster.
struct Cluster {
    region: String,
    context: String,
    namespace: String,
    /// The client, or why none could be built (unknown context, unreadable kubeconfig).
    client: Result<kube::Client, String>,
}

impl Cluster {
    fn client(&self) -> Result<&kube::Client, ProviderError> {
        self.client.as_ref().map_err(|why| ProviderError::new(ErrorClass::Unreachable, why.clone()))
    }

    fn describe(&self, kind: &str, name: &str, namespace: &str) -> String {
        format!("{kind} `{name}` in namespace `{namespace}` of context `{}`", self.context)
    }
}

/// Manages [`Kind::Workload`] (the replica count of the pipeline's Deployments) and
/// [`Kind::BackupJob`] (drplan's backup CronJobs) in every region with a `kubernetes` block.
pub struct KubernetesProvider {
    clusters: Vec<Cluster>,
}

impl KubernetesProvider {
    /// One client per region with a `kubernetes` block, for its context of the kubeconfig at
    /// `kubeconfig` (default: `KUBECONFIG`, then `~/.kube/config`). A context that cannot be
    /// loaded does not fail construction: its region reports unreachable, with the reason.
    pub async fn new(config: &Config, kubeconfig: Option<&Path>) -> Result<KubernetesProvider, ProviderError> {
        install_crypto_provider();
        let mut clusters = Vec::new();
        for region in &config.regions {
            let Some(k8s) = &region.kubernetes else { continue };
            let client = match config_for_context(kubeconfig, &k8s.context).await {
                Ok(mut c) => {
                    c.connect_timeout = Some(CONNECT_TIMEOUT);
                    c.read_timeout = Some(READ_TIMEOUT);
                    kube::Client::try_from(c)
                        .map_err(|e| format!("context `{}`: {}", k8s.context, error::classify(&e).1))
                }
                Err(e) => Err(format!("context `{}`: {}", k8s.context, error::classify(&e).1)),
            };
            clusters.push(Cluster {
                region: region.name.clone(),
                context: k8s.context.clone(),
                namespace: k8s.namespace.clone(),
                client,
            });
        }
        Ok(KubernetesProvider { clusters })
    }

    /// The regions this provider serves, in configuration order.
    pub fn regions(&self) -> Vec<&str> {
        self.clusters.iter().map(|c| c.region.as_str()).collect()
    }

    fn cluster(&self, region: Option<&str>, address: &str) -> Result<&Cluster, ProviderError> {
        let region =
            region.ok_or_else(|| ProviderError::new(ErrorClass::Invalid, "the change names no region").at(address))?;
        self.clusters.iter().find(|c| c.region == region).ok_or_else(|| {
            ProviderError::new(ErrorClass::Invalid, format!("region {region} has no kubernetes block")).at(address)
        })
    }

    /// Reads one cluster: one list of Deployments, one list of the project's CronJobs. Also
    /// each backup CronJob's last successful run, kept apart from its attributes (live only).
    async fn refresh_cluster(
        &self,
        cluster: &Cluster,
        request: &RefreshRequest<'_>,
    ) -> Result<(Vec<Observed>, BTreeMap<String, i64>), ProviderError> {
        let client = cluster.client()?;
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &cluster.namespace);
        let jobs: Api<CronJob> = Api::namespaced(client.clone(), &cluster.namespace);
        let labelled = ListParams::default().labels(&objects::selector(request.project));
        let restores: Api<Job> = Api::namespaced(client.clone(), &cluster.namespace);
        let restore_jobs = ListParams::default().labels(&format!(
            "{},{}={}",
            objects::selector(request.project),
            job::STEP_LABEL,
            RESTORE_STEP
        ));
        let all = ListParams::default();
        let (deployments, jobs, restores) = futures::future::join3(
            error::send(|| deployments.list(&all)),
            error::send(|| jobs.list(&labelled)),
            error::send(|| restores.list(&restore_jobs)),
        )
        .await;
        let list_error = |e: kube::Error, kind: &str| match error::unreachable_reason(&e, &cluster.context) {
            Some(reason) => ProviderError::new(ErrorClass::Unreachable, reason),
            None => {
                let (class, cause) = error::classify(&e);
                let place = format!("namespace `{}` of context `{}`", cluster.namespace, cluster.context);
                ProviderError::new(class, format!("listing {kind} in {place}: {cause}"))
            }
        };
        let deployments = deployments.map_err(|e| list_error(e, "Deployments"))?;
        let jobs = jobs.map_err(|e| list_error(e, "CronJobs"))?;
        let restores = restores.map_err(|e| list_error(e, "Jobs"))?;

        let mut out = Vec::new();
        let by_name: BTreeMap<&str, &Deployment> =
            deployments.items.iter().filter_map(|d| d.metadata.name.as_deref().map(|n| (n, d))).collect();
        let wanted = request
            .desired
            .iter()
            .filter(|r| r.kind == Kind::Workload && r.region.as_deref() == Some(cluster.region.as_str()));
        for r in wanted {
            let Some(d) = r.str("deployment").and_then(|name| by_name.get(name)) else { continue };
            out.push(Observed {
                resource: Resource {
                    address: r.address.clone(),
                    kind: Kind::Workload,
                    region: Some(cluster.region.clone()),
                    attrs: objects::deployment_attrs(&cluster.context, d),
                },
                id: objects::object_id(&cluster.context, "deployment", &d.metadata),
            });
        }
        let mut runs = BTreeMap::new();
        for job in jobs.items.iter().filter(|j| objects::is_ours(&j.metadata, request.project)) {
            let Some(backup) = objects::backup_name(job) else { continue };
            let at = address::backup_job(&cluster.region, backup);
            if let Some(t) = objects::last_success(job) {
                runs.insert(at.clone(), t);
            }
            out.push(self.observe_job(cluster, &at, job));
        }
        // The newest restore Job of each backup: the one a promotion started (or adopts).
        let mut newest: BTreeMap<String, &Job> = BTreeMap::new();
        for j in restores.items.iter().filter(|j| objects::is_ours(&j.metadata, request.project)) {
            let Some(backup) = j.metadata.labels.as_ref().and_then(|l| l.get(objects::BACKUP_LABEL)) else { continue };
            let created = |j: &Job| j.metadata.creation_timestamp.as_ref().map(|t| t.0);
            match newest.get(backup.as_str()) {
                Some(seen) if created(seen) >= created(j) => {}
                _ => {
                    newest.insert(backup.clone(), j);
                }
            }
        }
        for (backup, j) in newest {
            out.push(observe_restore(cluster, &address::restore(&cluster.region, &backup), j));
        }
        Ok((out, runs))
    }

    async fn apply_restore(
        &self,
        cluster: &Cluster,
        project: &str,
        change: &Change,
    ) -> Result<Option<Observed>, ProviderError> {
        let address = change.address.as_str();
        let attrs = attrs_of(change)?;
        if change.action == Action::Delete {
            // A drill's scratch restore goes with the drill; a real one is history once done:
            // drplan forgets it, the cluster keeps the Job's logs. What state recorded of the
            // Job is its name and namespace, which is all a delete needs.
            if attrs.get("drill").is_none() {
                return Ok(None);
            }
            let name = required_str(attrs, "name", address)?;
            let namespace = str_or(attrs, "namespace", &cluster.namespace);
            let what = cluster.describe("job", name, namespace);
            let api: Api<Job> = Api::namespaced(cluster.client().map_err(|e| e.at(address))?.clone(), namespace);
            job::delete_named(&api, name, &what).await.map_err(|e| e.at(address))?;
            return Ok(None);
        }
        let step = restore_step(cluster, attrs, address)?;
        let (api, what) = job_api(cluster, &step).map_err(|e| e.at(address))?;
        let job = match change.action {
            Action::Adopt => {
                error::send(|| api.get(&step.name)).await.map_err(|e| error::provider_error(&e, &what).at(address))?
            }
            _ => step.start(&api, project, true, &what).await.map_err(|e| e.at(address))?,
        };
        Ok(Some(observe_restore(cluster, address, &job)))
    }

    /// Starts a hook's Job, or adopts the one of the same name (this failover's, started by
    /// a run that was killed); one that failed is started again only when the plan replaces
    /// it. A drill's hook Job goes with the drill; a failover's is history once done.
    async fn apply_hook(
        &self,
        cluster: &Cluster,
        project: &str,
        change: &Change,
    ) -> Result<Option<Observed>, ProviderError> {
        let address = change.address.as_str();
        let attrs = attrs_of(change)?;
        let step = hook::step(attrs, &cluster.namespace, address)?;
        let (api, what) = job_api(cluster, &step).map_err(|e| e.at(address))?;
        if change.action == Action::Delete {
            if attrs.get("drill").is_some() {
                job::delete_named(&api, &step.name, &what).await.map_err(|e| e.at(address))?;
            }
            return Ok(None);
        }
        // Recorded complete in this failover: it ran; its Job may be gone since.
        if change.action == Action::Adopt {
            let resource = Resource {
                address: address.to_owned(),
                kind: Kind::Hook,
                region: Some(cluster.region.clone()),
                attrs: attrs.clone(),
            };
            return Ok(Some(Observed { resource, id: change.id.clone().unwrap_or_default() }));
        }
        let job =
            step.start(&api, project, change.action == Action::Replace, &what).await.map_err(|e| e.at(address))?;
        let mut attrs = attrs.clone();
        attrs.insert("status".into(), job::Outcome::of(&job).as_str().into());
        Ok(Some(Observed {
            resource: Resource {
                address: address.to_owned(),
                kind: Kind::Hook,
                region: Some(cluster.region.clone()),
                attrs,
            },
            id: objects::object_id(&cluster.context, "job", &job.metadata),
        }))
    }

    async fn wait_hook(&self, cluster: &Cluster, request: &ReadyRequest<'_>) -> Result<(), ProviderError> {
        if request.change.action == Action::Adopt {
            return Ok(());
        }
        let address = request.change.address.as_str();
        let step = hook::step(attrs_of(request.change)?, &cluster.namespace, address)?;
        wait_job(cluster, &step, request).await
    }

    async fn wait_restore(&self, cluster: &Cluster, request: &ReadyRequest<'_>) -> Result<(), ProviderError> {
        let address = request.change.address.as_str();
        let step = restore_step(cluster, attrs_of(request.change)?, address)?;
        wait_job(cluster, &step, request).await
    }

    fn observe_job(&self, cluster: &Cluster, address: &str, job: &CronJob) -> Observed {
        Observed {
            resource: Resource {
                address: address.to_owned(),
                kind: Kind::BackupJob,
                region: Some(cluster.region.clone()),
                attrs: objects::cronjob_attrs(&cluster.context, job),
            },
            id: objects::object_id(&cluster.context, "cronjob", &job.metadata),
        }
    }

    async fn apply_workload(&self, cluster: &Cluster, change: &Change) -> Result<Option<Observed>, ProviderError> {
        let address = change.address.as_str();
        // drplan stops managing a Deployment it no longer wants; it is someone else's object.
        if change.action == Action::Delete {
            return Ok(None);
        }
        let attrs = attrs_of(change)?;
        let name = required_str(attrs, "deployment", address)?;
        let namespace = str_or(attrs, "namespace", &cluster.namespace);
        let replicas = match change.action {
            Action::Adopt => None,
            _ => match attrs.get("replicas") {
                Some(Value::Int(n)) => Some(*n),
                _ => return Err(missing("replicas", address)),
            },
        };
        let deployment = self.scale(cluster, namespace, name, replicas, address).await?;
        Ok(Some(Observed {
            resource: Resource {
                address: address.to_owned(),
                kind: Kind::Workload,
                region: Some(cluster.region.clone()),
                attrs: objects::deployment_attrs(&cluster.context, &deployment),
            },
            id: objects::object_id(&cluster.context, "deployment", &deployment.metadata),
        }))
    }

    /// Sets Deployment `name`'s replicas (`None`: reads it as it is); a missing Deployment is
    /// the pipeline's to create, and said so.
    async fn scale(
        &self,
        cluster: &Cluster,
        namespace: &str,
        name: &str,
        replicas: Option<i64>,
        address: &str,
    ) -> Result<Deployment, ProviderError> {
        let api: Api<Deployment> = Api::namespaced(cluster.client().map_err(|e| e.at(address))?.clone(), namespace);
        let not_found = || {
            ProviderError::new(
                ErrorClass::NotFound,
                format!(
                    "deployment `{name}` not found in namespace `{namespace}` of context `{}`; drplan scales \
                     Deployments that your deploy pipeline creates",
                    cluster.context
                ),
            )
            .at(address)
        };
        let fail = |e: kube::Error| {
            if error::status_code(&e) == Some(404) {
                not_found()
            } else {
                error::provider_error(&e, &cluster.describe("deployment", name, namespace)).at(address)
            }
        };
        match replicas {
            None => error::send(|| api.get(name)).await.map_err(fail),
            Some(n) => {
                let replicas = i32::try_from(n).map_err(|_| {
                    ProviderError::new(ErrorClass::Invalid, format!("replicas {n} is out of range")).at(address)
                })?;
                let patch = Patch::Merge(serde_json::json!({ "spec": { "replicas": replicas } }));
                let params = PatchParams::default();
                error::send(|| api.patch(name, &params, &patch)).await.map_err(fail)
            }
        }
    }

    /// An incident's cordon of the cluster's Nodes, or its deny-all NetworkPolicy; a delete
    /// lifts it.
    async fn apply_isolation(
        &self,
        cluster: &Cluster,
        project: &str,
        change: &Change,
    ) -> Result<Option<Observed>, ProviderError> {
        let address = change.address.as_str();
        let attrs = attrs_of(change)?;
        let incident = required_str(attrs, "incident", address)?;
        let client = cluster.client()?;
        let mut recorded = attrs.clone();
        match (change.kind, change.action) {
            (Kind::Cordon, Action::Delete) => isolation::uncordon(client, &cluster.context, incident).await?,
            (Kind::Cordon, _) => {
                let nodes = isolation::cordon(client, &cluster.context, incident).await?;
                recorded.insert("nodes".into(), nodes.join(",").into());
            }
            (_, action) => {
                let namespace = str_or(attrs, "namespace", &cluster.namespace);
                let name = required_str(attrs, "name", address)?;
                let what = cluster.describe("NetworkPolicy", name, namespace);
                match action {
                    Action::Delete => isolation::allow_again(client, name, namespace, &what).await?,
                    _ => {
                        let policy = isolation::deny_all_policy(name, namespace, project, incident);
                        isolation::deny_all(client, &policy, &what).await?;
                    }
                }
            }
        }
        Ok((change.action != Action::Delete).then(|| Observed {
            resource: Resource {
                address: change.address.clone(),
                kind: change.kind,
                region: change.region.clone(),
                attrs: recorded,
            },
            id: format!("{}/{incident}", cluster.context),
        }))
    }

    /// Stops a database's writers (each Deployment to 0) or, as its undo, starts them again
    /// at the replicas they had. Nothing is recorded: the switchover's record in state keeps
    /// the counts.
    async fn apply_writes(&self, cluster: &Cluster, change: &Change) -> Result<Option<Observed>, ProviderError> {
        let address = change.address.as_str();
        let attrs = attrs_of(change)?;
        let namespace = str_or(attrs, "namespace", &cluster.namespace);
        let list = required_str(attrs, "workloads", address)?;
        for (name, before) in drplan_core::plan::data::parse_workloads(list) {
            let replicas = if change.kind == Kind::StopWrites { 0 } else { before };
            self.scale(cluster, namespace, &name, Some(replicas), address).await?;
        }
        Ok(None)
    }

    /// Polls the Deployment until its rollout to the change's replicas is available, fails
    /// at once on `ProgressDeadlineExceeded`, and gives up after the request's timeout.
    async fn wait_rollout(&self, cluster: &Cluster, request: &ReadyRequest<'_>) -> Result<(), ProviderError> {
        let attrs = attrs_of(request.change)?;
        let address = request.change.address.as_str();
        let name = required_str(attrs, "deployment", address)?;
        let namespace = str_or(attrs, "namespace", &cluster.namespace);
        let want = match attrs.get("replicas") {
            Some(Value::Int(n)) => i32::try_from(*n).unwrap_or(i32::MAX),
            _ => return Err(missing("replicas", address)),
        };
        let api: Api<Deployment> = Api::namespaced(cluster.client()?.clone(), namespace);
        let started = std::time::Instant::now();
        let mut said = String::new();
        loop {
            let now = match api.get(name).await {
                Ok(d) => {
                    let rollout = objects::Rollout::of(&d, want);
                    if rollout.done() {
                        return Ok(());
                    }
                    // A condition left by an earlier rollout says nothing of this one until the
                    // controller has seen the new spec.
                    if let Some(why) = rollout.stuck.as_ref().filter(|_| rollout.observed) {
                        return Err(ProviderError::new(
                            ErrorClass::Failed,
                            format!("deployment `{name}` will not become available: {why} ({})", rollout.describe()),
                        ));
                    }
                    rollout.describe()
                }
                Err(e) => {
                    let e = error::provider_error(&e, &cluster.describe("deployment", name, namespace));
                    // A blip of the API server is waited out like a slow rollout; a
                    // Deployment that is gone or forbidden is not.
                    if !matches!(e.class, ErrorClass::Throttled | ErrorClass::Unreachable | ErrorClass::Failed) {
                        return Err(e);
                    }
                    format!("cannot read it: {}", e.cause())
                }
            };
            if now != said {
                (request.progress)(now.clone());
                said = now;
            }
            if started.elapsed() + ROLLOUT_POLL > request.timeout {
                return Err(ProviderError::new(
                    ErrorClass::Failed,
                    format!(
                        "deployment `{name}` was not available within {:.0?}: {said}; traffic was not moved to it. \
                         Check its pods (`kubectl --context {} -n {namespace} rollout status deployment/{name}`), \
                         or allow longer with --rollout-timeout",
                        request.timeout, cluster.context
                    ),
                ));
            }
            tokio::time::sleep(ROLLOUT_POLL).await;
        }
    }

    async fn apply_backup_job(
        &self,
        cluster: &Cluster,
        project: &str,
        change: &Change,
    ) -> Result<Option<Observed>, ProviderError> {
        let address = change.address.as_str();
        let attrs = attrs_of(change)?;
        let name = required_str(attrs, "name", address)?;
        let namespace = str_or(attrs, "namespace", &cluster.namespace);
        let what = cluster.describe("cronjob", name, namespace);
        let api: Api<CronJob> = Api::namespaced(cluster.client().map_err(|e| e.at(address))?.clone(), namespace);
        let fail = |e: kube::Error| error::provider_error(&e, &what).at(address);
        let job = match change.action {
            Action::Delete => {
                let params = DeleteParams::default();
                return match error::send(|| api.delete(name, &params)).await {
                    Ok(_) => Ok(None),
                    // Already gone: a retried delete.
                    Err(e) if error::status_code(&e) == Some(404) => Ok(None),
                    Err(e) => Err(fail(e)),
                };
            }
            Action::Adopt => error::send(|| api.get(name)).await.map_err(fail)?,
            Action::Create | Action::Replace | Action::Update => {
                let wanted = objects::cronjob(project, namespace, attrs).map_err(|a| missing(a, address))?;
                let create = matches!(change.action, Action::Create | Action::Replace);
                let created = if create {
                    let params = PostParams::default();
                    match error::send(|| api.create(&params, &wanted)).await {
                        Ok(job) => Some(job),
                        // There already: a crashed run made it, so adopt it, brought up to date;
                        // unless the name belongs to an object that is not this project's.
                        Err(e) if error::status_code(&e) == Some(409) => {
                            let existing = error::send(|| api.get(name)).await.map_err(fail)?;
                            if !objects::is_ours(&existing.metadata, project) {
                                return Err(ProviderError::new(
                                    ErrorClass::Conflict,
                                    format!("{what} already exists and is not drplan's for project `{project}`"),
                                )
                                .at(address));
                            }
                            None
                        }
                        Err(e) => return Err(fail(e)),
                    }
                } else {
                    None
                };
                match created {
                    Some(job) => job,
                    None => {
                        // A merge patch replaces lists whole: the container list becomes exactly ours.
                        let patch = Patch::Merge(serde_json::json!({
                            "metadata": { "labels": wanted.metadata.labels },
                            "spec": wanted.spec,
                        }));
                        let params = PatchParams::default();
                        error::send(|| api.patch(name, &params, &patch)).await.map_err(fail)?
                    }
                }
            }
        };
        Ok(Some(self.observe_job(cluster, address, &job)))
    }
}

/// The Jobs of a Job step's namespace in `cluster`, and how to name its Job in messages.
fn job_api(cluster: &Cluster, step: &job::JobStep) -> Result<(Api<Job>, String), ProviderError> {
    let api = Api::namespaced(cluster.client()?.clone(), &step.namespace);
    Ok((api, cluster.describe("job", &step.name, &step.namespace)))
}

/// Waits for a Job step's `Complete` or `Failed` condition, within its deadline.
async fn wait_job(cluster: &Cluster, step: &job::JobStep, request: &ReadyRequest<'_>) -> Result<(), ProviderError> {
    let (api, what) = job_api(cluster, step)?;
    job::wait(&api, &step.name, step.deadline, &what, request.progress).await
}

/// The `drplan.io/step` of restore Jobs.
const RESTORE_STEP: &str = "restore";

/// Annotations of a restore Job, read back into its attributes by a later refresh.
const RESTORE_ANNOTATIONS: [&str; 6] = ["backup", "destination", "uri", "point_name", "point", "drill"];

/// The `drplan.io/step` of a drill's restore Jobs: not listed with the restores, so a
/// promotion never takes a drill's scratch restore for its own.
const DRILL_RESTORE_STEP: &str = "drill-restore";

/// The restore Job a change's attributes describe.
fn restore_step(cluster: &Cluster, attrs: &Attrs, address: &str) -> Result<job::JobStep, ProviderError> {
    let s = |name: &str| required_str(attrs, name, address);
    let opt = |name: &str| match attrs.get(name) {
        Some(Value::Str(v)) if !v.is_empty() => Some(v.clone()),
        _ => None,
    };
    let command: Vec<String> = match opt("command") {
        Some(text) => serde_json::from_str(&text).map_err(|_| {
            ProviderError::new(ErrorClass::Invalid, format!("`command` is not a list: {text}")).at(address)
        })?,
        None => Vec::new(),
    };
    let timeout = match attrs.get("timeout") {
        Some(Value::Int(n)) if *n > 0 => Duration::from_secs(*n as u64),
        _ => return Err(missing("timeout", address)),
    };
    let mut env = vec![
        ("DRPLAN_RESTORE_URI".to_owned(), s("uri")?.to_owned()),
        ("DRPLAN_RESTORE_POINT".to_owned(), s("point")?.to_owned()),
        ("DRPLAN_BACKUP".to_owned(), s("backup")?.to_owned()),
    ];
    if let Some(t) = opt("type") {
        env.push(("DRPLAN_BACKUP_TYPE".to_owned(), t));
    }
    if let Some(g) = opt("gpg_recipient") {
        env.push(("DRPLAN_GPG_RECIPIENT".to_owned(), g));
    }
    if let Some(d) = opt("drill") {
        env.push(("DRPLAN_DRILL".to_owned(), d));
    }
    // A point in time asked for: the tool replays its log up to it (PITR).
    if let Some(t) = opt("target_time") {
        env.push(("DRPLAN_RESTORE_TARGET_TIME".to_owned(), t));
    }
    let annotations = RESTORE_ANNOTATIONS
        .iter()
        .filter_map(|k| opt(k).map(|v| (format!("drplan.io/{}", k.replace('_', "-")), v)))
        .collect();
    Ok(job::JobStep {
        name: s("name")?.to_owned(),
        namespace: str_or(attrs, "namespace", &cluster.namespace).to_owned(),
        step: if opt("drill").is_some() { DRILL_RESTORE_STEP } else { RESTORE_STEP }.to_owned(),
        image: s("image")?.to_owned(),
        command,
        env,
        env_from: Vec::new(),
        retries: 1,
        volumes: match (opt("volume_claim"), opt("mount_path")) {
            (Some(claim), Some(path)) => vec![(claim, path)],
            _ => Vec::new(),
        },
        labels: BTreeMap::from([(objects::BACKUP_LABEL.to_owned(), s("backup")?.to_owned())]),
        annotations,
        deadline: timeout,
    })
}

/// A restore Job as drplan sees it: what it restores (from its annotations) and its outcome.
fn observe_restore(cluster: &Cluster, address: &str, j: &Job) -> Observed {
    let mut attrs = Attrs::new();
    attrs.insert("context".into(), cluster.context.as_str().into());
    if let Some(ns) = &j.metadata.namespace {
        attrs.insert("namespace".into(), ns.as_str().into());
    }
    if let Some(name) = &j.metadata.name {
        attrs.insert("name".into(), name.as_str().into());
    }
    let notes = j.metadata.annotations.as_ref();
    for k in RESTORE_ANNOTATIONS {
        if let Some(v) = notes.and_then(|a| a.get(&format!("drplan.io/{}", k.replace('_', "-")))) {
            attrs.insert(k.into(), v.as_str().into());
        }
    }
    attrs.insert("status".into(), job::Outcome::of(j).as_str().into());
    Observed {
        resource: Resource {
            address: address.to_owned(),
            kind: Kind::Restore,
            region: Some(cluster.region.clone()),
            attrs,
        },
        id: objects::object_id(&cluster.context, "job", &j.metadata),
    }
}

fn attrs_of(change: &Change) -> Result<&Attrs, ProviderError> {
    change
        .after
        .as_ref()
        .or(change.before.as_ref())
        .ok_or_else(|| ProviderError::new(ErrorClass::Invalid, "the change carries no attributes").at(&change.address))
}

fn required_str<'a>(attrs: &'a Attrs, name: &str, address: &str) -> Result<&'a str, ProviderError> {
    match attrs.get(name) {
        Some(Value::Str(s)) if !s.is_empty() => Ok(s),
        _ => Err(missing(name, address)),
    }
}

fn str_or<'a>(attrs: &'a Attrs, name: &str, default: &'a str) -> &'a str {
    match attrs.get(name) {
        Some(Value::Str(s)) if !s.is_empty() => s,
        _ => default,
    }
}

fn missing(attr: &str, address: &str) -> ProviderError {
    ProviderError::new(ErrorClass::Invalid, format!("the change has no `{attr}` attribute")).at(address)
}

impl Provider for KubernetesProvider {
    fn name(&self) -> &str {
        "kubernetes"
    }

    fn manages(&self, kind: Kind, cloud: Option<&str>) -> bool {
        use drplan_core::plan::step::{Family, performed_by};
        performed_by(kind, Family::Kubernetes, None, None)
            || performed_by(kind, Family::Database, Some("kubernetes"), cloud)
    }

    async fn refresh(&self, request: &RefreshRequest<'_>) -> Result<Snapshot, ProviderError> {
        let clusters = self.clusters.iter().filter(|c| request.regions.contains(&c.region));
        let results = futures::future::join_all(clusters.map(|c| async move {
            let result = match self.refresh_cluster(c, request).await {
                Ok((mut observed, runs)) => match self.read_members(c, request.desired).await {
                    Ok(members) => {
                        observed.extend(members);
                        Ok((observed, runs))
                    }
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            (c, result)
        }))
        .await;
        let mut snapshot = Snapshot::default();
        for (cluster, result) in results {
            match result {
                Ok((observed, runs)) => {
                    for o in observed {
                        snapshot.objects.insert(o.resource.address.clone(), o);
                    }
                    snapshot.backup_runs.extend(runs);
                }
                Err(e) if e.class == ErrorClass::Unreachable => {
                    snapshot.unreachable.insert(cluster.region.clone(), e.message);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(snapshot)
    }

    async fn wait_ready(&self, request: &ReadyRequest<'_>) -> Result<(), ProviderError> {
        let change = request.change;
        if change.kind == Kind::CatchUp {
            return self.await_demotion(request).await.map_err(|e| e.at(&change.address));
        }
        if change.action == Action::Delete || !matches!(change.kind, Kind::Workload | Kind::Restore | Kind::Hook) {
            return Ok(());
        }
        let cluster = self.cluster(change.region.as_deref(), &change.address)?;
        match change.kind {
            Kind::Restore => self.wait_restore(cluster, request).await,
            Kind::Hook => self.wait_hook(cluster, request).await,
            _ => self.wait_rollout(cluster, request).await,
        }
        .map_err(|e| e.at(&change.address))
    }

    async fn apply(&self, request: &ApplyRequest<'_>) -> Result<Option<Observed>, ProviderError> {
        let change = request.change;
        let cluster = self.cluster(change.region.as_deref(), &change.address)?;
        drplan_retry::applying(async {
            match change.kind {
                Kind::Workload => self.apply_workload(cluster, change).await,
                Kind::BackupJob => self.apply_backup_job(cluster, request.project, change).await,
                Kind::Restore => self.apply_restore(cluster, request.project, change).await,
                Kind::Hook => self.apply_hook(cluster, request.project, change).await,
                Kind::StopWrites | Kind::ResumeWrites => self.apply_writes(cluster, change).await,
                Kind::Database | Kind::CatchUp => self.apply_member(change).await,
                Kind::Cordon | Kind::DenyAll => self.apply_isolation(cluster, request.project, change).await,
                other => Err(ProviderError::new(ErrorClass::Invalid, format!("kubernetes does not manage {other}"))
                    .at(&change.address)),
            }
        })
        .await
    }
}
