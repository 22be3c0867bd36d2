//! The Job step against kmock: created under its deterministic name, adopted when a crashed
//! run left it, a failed one replaced when asked, and waited on through its conditions
//! within a timeout. kmock runs no pods, so the test plays the Job controller: it writes the
//! Job's `status` through the `/status` subresource, as the real controller would.

use crate::common;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use drplan_core::provider::ErrorClass;
use drplan_provider_kubernetes::job::{JobStep, Outcome, wait};
use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use kube::api::{Patch, PatchParams};

use common::{Clusters, NAMESPACE, PROJECT};

fn step(name: &str) -> JobStep {
    JobStep {
        name: name.to_owned(),
        namespace: NAMESPACE.to_owned(),
        step: "restore".to_owned(),
        image: "bot-core/backup-tool:latest".to_owned(),
        command: vec!["restore-database".to_owned()],
        env: vec![("DRPLAN_RESTORE_URI".to_owned(), "s3://b/dr/p/".to_owned())],
        env_from: Vec::new(),
        retries: 1,
        volumes: Vec::new(),
        labels: BTreeMap::from([("drplan.io/backup".to_owned(), "database".to_owned())]),
        annotations: BTreeMap::new(),
        deadline: Duration::from_secs(60),
    }
}

/// Plays the Job controller for one Job: sets its status as the controller would.
async fn controller_sets(api: &Api<Job>, name: &str, status: serde_json::Value) {
    let patch = serde_json::json!({ "status": status });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await.expect("status written");
}

#[tokio::test]
async fn a_job_step_is_created_once_adopted_after_a_crash_and_replaced_when_failed() {
    let clusters = Clusters::start(&["apac"], &[]);
    let api: Api<Job> = Api::namespaced(clusters.client("apac").await, NAMESPACE);
    let s = step("drplan-restore-database-20261201-070000");

    let first = s.start(&api, PROJECT, true, "the job").await.expect("created");
    let spec = first.spec.as_ref().unwrap();
    assert_eq!(spec.backoff_limit, Some(1));
    assert_eq!(spec.active_deadline_seconds, Some(60));
    let container = &spec.template.spec.as_ref().unwrap().containers[0];
    assert_eq!(container.command.as_deref(), Some(&["restore-database".to_owned()][..]));
    assert_eq!(first.metadata.labels.as_ref().unwrap()["drplan.io/step"], "restore");

    // kmock gives objects no uid: a mark on the first Job tells it from a new one.
    let mark = serde_json::json!({"metadata": {"annotations": {"drplan.test/which": "first"}}});
    api.patch(&s.name, &PatchParams::default(), &Patch::Merge(&mark)).await.expect("marked");
    let is_first = |j: &Job| j.metadata.annotations.as_ref().and_then(|a| a.get("drplan.test/which")).is_some();
    assert!(!is_first(&first));

    // A second start (a run that crashed after creating it) adopts the Job, running or done.
    controller_sets(&api, &s.name, serde_json::json!({"active": 1})).await;
    let again = s.start(&api, PROJECT, true, "the job").await.expect("adopted");
    assert!(is_first(&again), "the same Job, not a second one");
    assert_eq!(Outcome::of(&again), Outcome::Running { active: 1, failed: 0 });

    // A failed one is kept for its logs unless asked to retry; then it is replaced.
    controller_sets(
        &api,
        &s.name,
        serde_json::json!({"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]}),
    )
    .await;
    let kept = s.start(&api, PROJECT, false, "the job").await.expect("kept");
    assert!(is_first(&kept));
    let replaced = s.start(&api, PROJECT, true, "the job").await.expect("replaced");
    assert!(!is_first(&replaced), "a new Job under the same name");
    assert_eq!(Outcome::of(&replaced), Outcome::Running { active: 0, failed: 0 });

    // A Job of that name that is not this project's is never adopted.
    let other = s.start(&api, "another-project", true, "the job").await.unwrap_err();
    assert_eq!(other.class, ErrorClass::Conflict, "{other}");
}

#[tokio::test]
async fn waiting_ends_on_the_jobs_conditions_or_its_timeout_with_progress() {
    let clusters = Clusters::start(&["apac"], &[]);
    let api: Api<Job> = Api::namespaced(clusters.client("apac").await, NAMESPACE);
    let lines = Mutex::new(Vec::<String>::new());
    let progress = |l: String| lines.lock().unwrap().push(l);

    // Completes while waited on.
    let done = step("drplan-restore-database-a");
    done.start(&api, PROJECT, true, "the job").await.unwrap();
    let (waited, ()) = tokio::join!(wait(&api, &done.name, Duration::from_secs(20), "the job", &progress), async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        controller_sets(&api, &done.name, serde_json::json!({"active": 1})).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        controller_sets(
            &api,
            &done.name,
            serde_json::json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}),
        )
        .await;
    });
    waited.expect("complete");
    let said = lines.lock().unwrap().clone();
    assert!(said.iter().any(|l| l.starts_with("waiting for its pod")), "{said:?}");
    assert!(said.iter().any(|l| l.starts_with("1 pod running")), "{said:?}");

    // Fails: the condition's reason and message are the error.
    let failing = step("drplan-restore-database-b");
    failing.start(&api, PROJECT, true, "the job").await.unwrap();
    controller_sets(
        &api,
        &failing.name,
        serde_json::json!({"failed": 2, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}),
    )
    .await;
    let err = wait(&api, &failing.name, Duration::from_secs(20), "the job", &progress).await.unwrap_err();
    assert!(err.message.contains("BackoffLimitExceeded: Job has reached the specified backoff limit"), "{err}");

    // Never finishes: the timeout says so, within it.
    let stuck = step("drplan-restore-database-c");
    stuck.start(&api, PROJECT, true, "the job").await.unwrap();
    let started = std::time::Instant::now();
    let err = wait(&api, &stuck.name, Duration::from_secs(2), "the job", &progress).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    assert!(err.message.contains("did not finish within 2s"), "{err}");

    // Deleted underneath: not waited on for ever.
    stuck.delete(&api, "the job").await.unwrap();
    let err = wait(&api, &stuck.name, Duration::from_secs(20), "the job", &progress).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::NotFound, "{err}");
}
