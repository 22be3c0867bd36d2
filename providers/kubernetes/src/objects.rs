//! The mapping between drplan attributes and Kubernetes objects: the CronJob drplan
//! authors for a backup, and what is read back from it and from a Deployment.

use std::collections::BTreeMap;

use drplan_core::plan::resource::{Attrs, Value};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{Container, EnvFromSource, EnvVar, PodSpec, PodTemplateSpec, SecretEnvSource};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "drplan";
pub const PROJECT_LABEL: &str = "drplan.io/project";
pub const BACKUP_LABEL: &str = "drplan.io/backup";
/// Every backup CronJob is named with this prefix and the backup's name.
pub const CRONJOB_PREFIX: &str = "drplan-backup-";
const CONTAINER: &str = "backup";

/// The backup settings that the CronJob's container carries as environment variables,
/// with the attribute each one is read back into.
pub const ENV_ATTRS: [(&str, &str); 4] = [
    ("DRPLAN_BACKUP_TYPE", "type"),
    ("DRPLAN_RETENTION", "retention"),
    ("DRPLAN_DESTINATIONS", "destinations"),
    ("DRPLAN_GPG_RECIPIENT", "gpg_recipient"),
];

/// Set to `1` in the backup container while an incident holds retention: a tool that
/// prunes old backups by itself must not.
pub const RETENTION_HOLD: &str = "DRPLAN_RETENTION_HOLD";

/// The label selector of this project's objects.
pub fn selector(project: &str) -> String {
    format!("{MANAGED_BY_LABEL}={MANAGED_BY},{PROJECT_LABEL}={project}")
}

/// Whether `meta` carries this project's labels. Checked on every listed object as well as
/// in the list's selector: a server that ignores selectors must not leak other objects in.
pub fn is_ours(meta: &ObjectMeta, project: &str) -> bool {
    let labels = meta.labels.as_ref();
    let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    label(MANAGED_BY_LABEL) == Some(MANAGED_BY) && label(PROJECT_LABEL) == Some(project)
}

fn str_attr<'a>(attrs: &'a Attrs, name: &str) -> Option<&'a str> {
    match attrs.get(name) {
        Some(Value::Str(s)) => Some(s),
        _ => None,
    }
}

/// The CronJob for a backup job's attributes, or the name of the attribute missing.
pub fn cronjob(project: &str, namespace: &str, attrs: &Attrs) -> Result<CronJob, &'static str> {
    let name = str_attr(attrs, "name").ok_or("name")?;
    let schedule = str_attr(attrs, "schedule").ok_or("schedule")?;
    let image = str_attr(attrs, "image").ok_or("image")?;
    let suspend = match attrs.get("suspend") {
        Some(Value::Bool(b)) => *b,
        _ => return Err("suspend"),
    };
    let json = |attr: &'static str| -> Result<Option<serde_json::Value>, &'static str> {
        str_attr(attrs, attr).map(|t| serde_json::from_str(t).map_err(|_| attr)).transpose()
    };
    // The team's own variables first, then drplan's.
    let own: BTreeMap<String, String> =
        json("env")?.map(serde_json::from_value).transpose().map_err(|_| "env")?.unwrap_or_default();
    // An empty command is the image's entrypoint: no `command` at all.
    let command: Option<Vec<String>> = json("command")?
        .map(serde_json::from_value::<Vec<String>>)
        .transpose()
        .map_err(|_| "command")?
        .filter(|c| !c.is_empty());
    let secrets: Vec<String> = json("env_from_secret")?
        .map(serde_json::from_value)
        .transpose()
        .map_err(|_| "env_from_secret")?
        .unwrap_or_default();
    // While an incident holds retention, the tool is told not to prune (docs/guide/incidents.md).
    let hold =
        (attrs.get("retention_hold") == Some(&Value::Bool(true))).then(|| (RETENTION_HOLD.to_owned(), "1".to_owned()));
    let drplans = ENV_ATTRS
        .iter()
        .filter_map(|(var, attr)| str_attr(attrs, attr).map(|v| ((*var).to_owned(), v.to_owned())))
        .chain(hold);
    let env: Vec<EnvVar> = own
        .into_iter()
        .chain(drplans)
        .map(|(name, value)| EnvVar { name, value: Some(value), ..EnvVar::default() })
        .collect();
    let env_from = (!secrets.is_empty()).then(|| {
        secrets
            .into_iter()
            .map(|name| EnvFromSource {
                secret_ref: Some(SecretEnvSource { name, optional: None }),
                ..EnvFromSource::default()
            })
            .collect()
    });
    let mut labels = BTreeMap::from([
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
        (PROJECT_LABEL.to_owned(), project.to_owned()),
    ]);
    if let Some(backup) = name.strip_prefix(CRONJOB_PREFIX) {
        labels.insert(BACKUP_LABEL.to_owned(), backup.to_owned());
    }
    Ok(CronJob {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels.clone()),
            ..ObjectMeta::default()
        },
        spec: CronJobSpec {
            schedule: schedule.to_owned(),
            suspend: Some(suspend),
            // Two backups of the same database must never run at once.
            concurrency_policy: Some("Forbid".to_owned()),
            job_template: JobTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels), ..ObjectMeta::default() }),
                spec: Some(JobSpec {
                    template: PodTemplateSpec {
                        metadata: None,
                        spec: Some(PodSpec {
                            containers: vec![Container {
                                name: CONTAINER.to_owned(),
                                image: Some(image.to_owned()),
                                command,
                                env: Some(env),
                                env_from,
                                ..Container::default()
                            }],
                            restart_policy: Some("OnFailure".to_owned()),
                            ..PodSpec::default()
                        }),
                    },
                    ..JobSpec::default()
                }),
            },
            ..CronJobSpec::default()
        },
        status: None,
    })
}

/// The backup's name (the address part) of a CronJob drplan made.
pub fn backup_name(job: &CronJob) -> Option<&str> {
    job.metadata.name.as_deref()?.strip_prefix(CRONJOB_PREFIX).filter(|n| !n.is_empty())
}

/// The attributes of a backup CronJob, read from the object. Settings missing from it
/// are left out, so the diff sees them as changed and puts them back.
pub fn cronjob_attrs(context: &str, job: &CronJob) -> Attrs {
    let mut a = Attrs::new();
    a.insert("context".into(), context.into());
    if let Some(ns) = &job.metadata.namespace {
        a.insert("namespace".into(), ns.as_str().into());
    }
    if let Some(name) = &job.metadata.name {
        a.insert("name".into(), name.as_str().into());
    }
    a.insert("schedule".into(), job.spec.schedule.as_str().into());
    // The API server's default for an absent `suspend` is false.
    a.insert("suspend".into(), job.spec.suspend.unwrap_or(false).into());
    let container = job
        .spec
        .job_template
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers.iter().find(|c| c.name == CONTAINER).or(p.containers.first()));
    if let Some(c) = container {
        if let Some(image) = &c.image {
            a.insert("image".into(), image.as_str().into());
        }
        let mut own = BTreeMap::new();
        let held = c.env.iter().flatten().any(|v| v.name == RETENTION_HOLD && v.value.as_deref() == Some("1"));
        a.insert("retention_hold".into(), held.into());
        for var in c.env.iter().flatten().filter(|v| v.name != RETENTION_HOLD) {
            match (ENV_ATTRS.iter().find(|(n, _)| *n == var.name), &var.value) {
                (Some((_, attr)), Some(value)) => {
                    a.insert((*attr).into(), value.as_str().into());
                }
                (None, Some(value)) => {
                    own.insert(var.name.clone(), value.clone());
                }
                // The API server leaves an empty value out.
                (None, None) if var.value_from.is_none() => {
                    own.insert(var.name.clone(), String::new());
                }
                _ => {}
            }
        }
        // Read back as desired writes them, empty ones included, so they always compare.
        a.insert("env".into(), serde_json::to_string(&own).unwrap_or_default().into());
        let command = c.command.clone().unwrap_or_default();
        a.insert("command".into(), serde_json::to_string(&command).unwrap_or_default().into());
        let secrets: Vec<&str> =
            c.env_from.iter().flatten().filter_map(|e| e.secret_ref.as_ref().map(|s| s.name.as_str())).collect();
        a.insert("env_from_secret".into(), serde_json::to_string(&secrets).unwrap_or_default().into());
    }
    a
}

/// When the CronJob last completed a run successfully (`status.lastSuccessfulTime`), in
/// seconds since the epoch. Not an attribute: it changes with every run, and attributes are
/// recorded in state and compared for drift.
pub fn last_success(job: &CronJob) -> Option<i64> {
    job.status.as_ref()?.last_successful_time.as_ref().map(|t| t.0.as_second())
}

/// The attributes of a scaled Deployment, read from the object.
pub fn deployment_attrs(context: &str, d: &Deployment) -> Attrs {
    let mut a = Attrs::new();
    a.insert("context".into(), context.into());
    if let Some(ns) = &d.metadata.namespace {
        a.insert("namespace".into(), ns.as_str().into());
    }
    if let Some(name) = &d.metadata.name {
        a.insert("deployment".into(), name.as_str().into());
    }
    // The API server's default for an absent `replicas` is 1.
    a.insert("replicas".into(), i64::from(d.spec.replicas.unwrap_or(1)).into());
    a
}

/// The cloud id: the object's uid, or its coordinates when the server assigns none.
pub fn object_id(context: &str, kind: &str, meta: &ObjectMeta) -> String {
    match &meta.uid {
        Some(uid) if !uid.is_empty() => uid.clone(),
        _ => format!(
            "{context}/{}/{kind}/{}",
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default()
        ),
    }
}

/// How far a Deployment's rollout to `want` replicas has come, as `kubectl rollout status`
/// judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    pub want: i32,
    pub ready: i32,
    pub available: i32,
    /// The controller has seen the current spec (`observedGeneration` ≥ `generation`; a
    /// missing generation counts as 1, as an emulator without one leaves it).
    pub observed: bool,
    /// Why it will not become available: the `Progressing` condition's
    /// `ProgressDeadlineExceeded`, with its message.
    pub stuck: Option<String>,
    /// The conditions that are not true, for messages (`Available=False (MinimumReplicasUnavailable)`).
    pub conditions: Vec<String>,
}

impl Rollout {
    pub fn of(d: &Deployment, want: i32) -> Rollout {
        let status = d.status.as_ref();
        let generation = d.metadata.generation.unwrap_or(1);
        let observed = status.and_then(|s| s.observed_generation).unwrap_or(0) >= generation;
        let conditions = status.and_then(|s| s.conditions.as_ref()).map(Vec::as_slice).unwrap_or_default();
        let stuck = conditions
            .iter()
            .find(|c| {
                c.type_.as_deref() == Some("Progressing") && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
            })
            .map(|c| format!("ProgressDeadlineExceeded: {}", c.message.as_deref().unwrap_or("no progress")));
        Rollout {
            want,
            ready: status.and_then(|s| s.ready_replicas).unwrap_or(0),
            available: status.and_then(|s| s.available_replicas).unwrap_or(0),
            observed,
            stuck,
            conditions: conditions
                .iter()
                .filter(|c| c.status.as_deref() != Some("True"))
                .map(|c| {
                    let (kind, status) = (c.type_.as_deref().unwrap_or("?"), c.status.as_deref().unwrap_or("Unknown"));
                    match &c.reason {
                        Some(r) => format!("{kind}={status} ({r})"),
                        None => format!("{kind}={status}"),
                    }
                })
                .collect(),
        }
    }

    pub fn done(&self) -> bool {
        self.observed && self.ready >= self.want && self.available >= self.want
    }

    /// `2/3 ready`, with what is missing.
    pub fn describe(&self) -> String {
        let mut s = format!("{}/{} ready, {} available", self.ready, self.want, self.available);
        if !self.observed {
            s.push_str(", new spec not yet observed by the controller");
        }
        if !self.conditions.is_empty() {
            s.push_str(&format!("; {}", self.conditions.join(", ")));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drplan_core::plan::resource::attrs;

    fn backup_attrs() -> Attrs {
        attrs([
            ("context", "use1".into()),
            ("namespace", "bot-core".into()),
            ("name", "drplan-backup-database".into()),
            ("schedule", "0 */1 * * *".into()),
            ("image", "bot-core/backup-tool:latest".into()),
            ("type", "full".into()),
            ("retention", "30d".into()),
            ("destinations", "s3://b/dr/,file:///mnt/nas".into()),
            ("suspend", true.into()),
            ("retention_hold", false.into()),
            ("gpg_recipient", "dr@bot-core.com".into()),
            ("command", r#"["/scripts/backup.sh"]"#.into()),
            ("env", r#"{"BACKUP_TYPE":"full","EMPTY":"","RETENTION_DAYS":"30"}"#.into()),
            ("env_from_secret", r#"["bot-core-backup-credentials"]"#.into()),
        ])
    }

    #[test]
    fn the_teams_container_settings_read_back_even_when_empty() {
        let mut want = backup_attrs();
        want.insert("command".into(), "[]".into());
        want.insert("env".into(), "{}".into());
        want.insert("env_from_secret".into(), "[]".into());
        let job = cronjob("bot-core", "bot-core", &want).expect("complete attributes");
        assert_eq!(cronjob_attrs("use1", &job), want);
        let container = &job.spec.job_template.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0];
        assert_eq!(container.command, None, "the image's entrypoint");
        // The API server serves an empty value as no value: read back as empty.
        let mut served = cronjob("bot-core", "bot-core", &backup_attrs()).unwrap();
        let c = &mut served.spec.job_template.spec.as_mut().unwrap().template.spec.as_mut().unwrap().containers[0];
        for var in c.env.iter_mut().flatten().filter(|v| v.value.as_deref() == Some("")) {
            var.value = None;
        }
        assert_eq!(cronjob_attrs("use1", &served), backup_attrs());
    }

    #[test]
    fn a_cronjob_reads_back_the_attributes_it_was_built_from() {
        let job = cronjob("bot-core", "bot-core", &backup_attrs()).expect("complete attributes");
        assert_eq!(cronjob_attrs("use1", &job), backup_attrs());
        assert_eq!(backup_name(&job), Some("database"));
        assert!(is_ours(&job.metadata, "bot-core"));
        assert!(!is_ours(&job.metadata, "other"));
    }

    #[test]
    fn a_cronjob_without_gpg_has_no_gpg_attribute() {
        let mut want = backup_attrs();
        want.remove("gpg_recipient");
        let job = cronjob("bot-core", "bot-core", &want).expect("complete attributes");
        assert_eq!(cronjob_attrs("use1", &job), want);
    }

    #[test]
    fn a_retention_hold_reaches_the_tool_and_reads_back() {
        let mut want = backup_attrs();
        want.insert("retention_hold".into(), true.into());
        let job = cronjob("bot-core", "bot-core", &want).expect("complete attributes");
        let container = &job.spec.job_template.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0];
        let held = container.env.iter().flatten().find(|v| v.name == RETENTION_HOLD);
        assert_eq!(held.and_then(|v| v.value.as_deref()), Some("1"));
        assert_eq!(cronjob_attrs("use1", &job), want);
    }

    #[test]
    fn missing_attributes_are_named() {
        let mut want = backup_attrs();
        want.remove("schedule");
        assert_eq!(cronjob("bot-core", "bot-core", &want).err(), Some("schedule"));
    }

    fn deployment(status: serde_json::Value, generation: Option<i64>) -> Deployment {
        let mut d: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web"}, "spec": {"replicas": 3, "selector": {}, "template": {}}, "status": status
        }))
        .unwrap();
        d.metadata.generation = generation;
        d
    }

    #[test]
    fn a_rollout_is_done_when_the_controller_saw_the_spec_and_every_pod_is_available() {
        let ready = serde_json::json!({"observedGeneration": 2, "readyReplicas": 3, "availableReplicas": 3});
        assert!(Rollout::of(&deployment(ready.clone(), Some(2)), 3).done());
        assert!(!Rollout::of(&deployment(ready.clone(), Some(3)), 3).done(), "a newer spec not yet observed");
        assert!(Rollout::of(&deployment(ready, None), 3).done(), "a missing generation counts as 1");
        let partly = Rollout::of(
            &deployment(serde_json::json!({"observedGeneration": 1, "readyReplicas": 2, "availableReplicas": 1}), None),
            3,
        );
        assert!(!partly.done());
        assert_eq!(partly.describe(), "2/3 ready, 1 available");
    }

    #[test]
    fn a_progress_deadline_exceeded_is_stuck_with_its_message() {
        let status = serde_json::json!({"conditions": [
            {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "timed out"},
        ]});
        let r = Rollout::of(&deployment(status, None), 3);
        assert_eq!(r.stuck.as_deref(), Some("ProgressDeadlineExceeded: timed out"));
        assert!(
            r.describe().ends_with(
                "Available=False (MinimumReplicasUnavailable), Progressing=False (ProgressDeadlineExceeded)"
            ),
            "{}",
            r.describe()
        );
    }
}
