//! The Job step: a one-off Kubernetes Job that a plan runs and waits for (a restore today;
//! a final data sync, a database promotion or a validation run use the same step).
//!
//! Created with a deterministic name, so a run that crashed while waiting finds its Job
//! again and adopts it instead of starting a second one; waited on through its `Complete` and
//! `Failed` conditions, within a timeout, with progress.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, EnvFromSource, EnvVar, PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, SecretEnvSource,
    Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{DeleteParams, PostParams, PropagationPolicy};

use crate::error;
use crate::objects::{MANAGED_BY, MANAGED_BY_LABEL, PROJECT_LABEL, is_ours};
use drplan_core::provider::{ErrorClass, ProviderError};

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStep {
    pub name: String,
    pub namespace: String,
    /// The step's kind, as the `drplan.io/step` label (`restore`).
    pub step: String,
    pub image: String,
    /// Empty: the image's entrypoint.
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Secrets whose keys become environment variables (`envFrom`), by name.
    pub env_from: Vec<String>,
    /// Attempts after a failed one (`backoffLimit`).
    pub retries: i32,
    /// PersistentVolumeClaims mounted into the container: `(claim, mount path)`.
    pub volumes: Vec<(String, String)>,
    /// Labels beyond drplan's own (`drplan.io/backup`).
    pub labels: BTreeMap<String, String>,
    /// Annotations that let a later run read back what the Job was made for.
    pub annotations: BTreeMap<String, String>,
    /// Kubernetes stops the Job after this long, whether or not anyone waits for it.
    pub deadline: Duration,
}

pub const STEP_LABEL: &str = "drplan.io/step";

/// Where a Job stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Running { active: i32, failed: i32 },
    Complete,
    Failed(String),
}

impl Outcome {
    pub fn of(job: &Job) -> Outcome {
        let status = job.status.as_ref();
        let condition = |kind: &str| {
            status
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == kind && c.status == "True"))
        };
        if condition("Complete").is_some() {
            return Outcome::Complete;
        }
        if let Some(c) = condition("Failed") {
            let why = [c.reason.as_deref(), c.message.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(": ");
            return Outcome::Failed(if why.is_empty() { "the Job failed".to_string() } else { why });
        }
        Outcome::Running {
            active: status.and_then(|s| s.active).unwrap_or(0),
            failed: status.and_then(|s| s.failed).unwrap_or(0),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Running { .. } => "running",
            Outcome::Complete => "complete",
            Outcome::Failed(_) => "failed",
        }
    }

    fn describe(&self) -> String {
        match self {
            Outcome::Running { active: 0, failed: 0 } => "waiting for its pod".to_string(),
            Outcome::Running { active, failed: 0 } => format!("{active} pod running"),
            Outcome::Running { active, failed } => format!("{active} pod running, {failed} failed attempt(s)"),
            Outcome::Complete => "complete".to_string(),
            Outcome::Failed(why) => format!("failed: {why}"),
        }
    }
}

impl JobStep {
    /// The Job object for this step.
    pub fn object(&self, project: &str) -> Job {
        let mut labels = BTreeMap::from([
            (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
            (PROJECT_LABEL.to_owned(), project.to_owned()),
            (STEP_LABEL.to_owned(), self.step.clone()),
        ]);
        labels.extend(self.labels.clone());
        let env = self
            .env
            .iter()
            .map(|(k, v)| EnvVar { name: k.clone(), value: Some(v.clone()), ..EnvVar::default() })
            .collect();
        Job {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(labels.clone()),
                annotations: Some(self.annotations.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(JobSpec {
                // As many attempts as the step allows: a restore one more (a second run over a
                // half-restored database is the backup tool's to allow), a hook none unless
                // its `retries` says so.
                backoff_limit: Some(self.retries.max(0)),
                active_deadline_seconds: Some(self.deadline.as_secs().max(1) as i64),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta { labels: Some(labels), ..ObjectMeta::default() }),
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: self.step.clone(),
                            image: Some(self.image.clone()),
                            command: (!self.command.is_empty()).then(|| self.command.clone()),
                            env: Some(env),
                            volume_mounts: (!self.volumes.is_empty()).then(|| {
                                self.volumes
                                    .iter()
                                    .enumerate()
                                    .map(|(i, (_, path))| VolumeMount {
                                        name: format!("share-{i}"),
                                        mount_path: path.clone(),
                                        read_only: Some(true),
                                        ..VolumeMount::default()
                                    })
                                    .collect()
                            }),
                            env_from: (!self.env_from.is_empty()).then(|| {
                                self.env_from
                                    .iter()
                                    .map(|name| EnvFromSource {
                                        secret_ref: Some(SecretEnvSource { name: name.clone(), optional: None }),
                                        ..EnvFromSource::default()
                                    })
                                    .collect()
                            }),
                            ..Container::default()
                        }],
                        restart_policy: Some("Never".to_owned()),
                        volumes: (!self.volumes.is_empty()).then(|| {
                            self.volumes
                                .iter()
                                .enumerate()
                                .map(|(i, (claim, _))| Volume {
                                    name: format!("share-{i}"),
                                    persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                                        claim_name: claim.clone(),
                                        read_only: Some(true),
                                    }),
                                    ..Volume::default()
                                })
                                .collect()
                        }),
                        ..PodSpec::default()
                    }),
                },
                ..JobSpec::default()
            }),
            status: None,
        }
    }

    /// Creates the Job, or adopts the one a previous run created under the same name.
    /// A Job of that name that failed is deleted and created again when `retry_failed`.
    pub async fn start(
        &self,
        api: &Api<Job>,
        project: &str,
        retry_failed: bool,
        what: &str,
    ) -> Result<Job, ProviderError> {
        let fail = |e: kube::Error| error::provider_error(&e, what);
        let (post, object) = (PostParams::default(), self.object(project));
        match error::send(|| api.create(&post, &object)).await {
            Ok(job) => Ok(job),
            Err(e) if error::status_code(&e) == Some(409) => {
                let existing = error::send(|| api.get(&self.name)).await.map_err(fail)?;
                if !is_ours(&existing.metadata, project) {
                    return Err(ProviderError::new(
                        ErrorClass::Conflict,
                        format!("{what} already exists and is not drplan's for project `{project}`"),
                    ));
                }
                match Outcome::of(&existing) {
                    Outcome::Failed(_) if retry_failed => {
                        self.delete(api, what).await?;
                        error::send(|| api.create(&post, &object)).await.map_err(fail)
                    }
                    _ => Ok(existing),
                }
            }
            Err(e) => Err(fail(e)),
        }
    }

    /// Deletes the Job and its pods, and waits until the name is free again.
    pub async fn delete(&self, api: &Api<Job>, what: &str) -> Result<(), ProviderError> {
        delete_named(api, &self.name, what).await
    }
}

/// Deletes the Job `name` and its pods, and waits until the name is free again.
pub async fn delete_named(api: &Api<Job>, name: &str, what: &str) -> Result<(), ProviderError> {
    let params = DeleteParams { propagation_policy: Some(PropagationPolicy::Background), ..DeleteParams::default() };
    match error::send(|| api.delete(name, &params)).await {
        Ok(_) => {}
        Err(e) if error::status_code(&e) == Some(404) => return Ok(()),
        Err(e) => return Err(error::provider_error(&e, what)),
    }
    for _ in 0..100 {
        match find(api, name).await {
            Ok(None) => return Ok(()),
            Ok(Some(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => return Err(error::provider_error(&e, what)),
        }
    }
    Err(ProviderError::new(ErrorClass::Failed, format!("{what} is still being deleted after 10 s")))
}

/// The Job `name`, `None` when there is none. By status code: `Api::get_opt` trusts the
/// `reason` of the answer, which not every API server spells `NotFound`.
async fn find(api: &Api<Job>, name: &str) -> Result<Option<Job>, kube::Error> {
    match error::send(|| api.get(name)).await {
        Ok(job) => Ok(Some(job)),
        Err(e) if error::status_code(&e) == Some(404) => Ok(None),
        Err(e) => Err(e),
    }
}

/// How often a Job is polled while apply waits for it.
const POLL: Duration = Duration::from_millis(500);

/// Waits for the Job `name` to complete, fails on its `Failed` condition, and gives up after
/// `timeout`. Blips of the API server are waited out; a Job that disappears is an error.
pub async fn wait(
    api: &Api<Job>,
    name: &str,
    timeout: Duration,
    what: &str,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<(), ProviderError> {
    let started = std::time::Instant::now();
    let mut said = String::new();
    loop {
        let now = match find(api, name).await {
            Ok(Some(job)) => match Outcome::of(&job) {
                Outcome::Complete => return Ok(()),
                Outcome::Failed(why) => {
                    return Err(ProviderError::new(ErrorClass::Failed, format!("{what} failed: {why}")));
                }
                running => running.describe(),
            },
            Ok(None) => {
                return Err(ProviderError::new(ErrorClass::NotFound, format!("{what} disappeared while running")));
            }
            Err(e) => {
                let e = error::provider_error(&e, what);
                if !matches!(e.class, ErrorClass::Throttled | ErrorClass::Unreachable | ErrorClass::Failed) {
                    return Err(e);
                }
                format!("cannot read it: {}", e.cause())
            }
        };
        if now != said {
            progress(format!("{now} ({}s)", started.elapsed().as_secs()));
            said = now;
        }
        if started.elapsed() + POLL > timeout {
            return Err(ProviderError::new(
                ErrorClass::Failed,
                format!("{what} did not finish within {:.0?}: {said}; allow longer with the step's `timeout`", timeout),
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}
