//! The Job controller kmock lacks, played by its launcher (`launchers/kmock_server.py`),
//! steered from a test: what a Job that has not finished becomes, and every Job name the
//! controller has seen. The outcome travels through a ConfigMap on kmock's own API, so the
//! played controller reads it as a real one would read its configuration.

use crate::{Emulator, HarnessError, Running};

const CONFIG_MAP: &str = "/api/v1/namespaces/default/configmaps/drplan-test-job-controller";

/// What the played Job controller makes of a Job that has not finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    /// Leave it running (the default: no Job ever completes on its own).
    Hold,
    /// Its pod exited 0: `Complete`.
    Complete,
    /// Its pod kept failing: `Failed` (`BackoffLimitExceeded`).
    Fail,
}

impl JobOutcome {
    fn as_str(self) -> &'static str {
        match self {
            JobOutcome::Hold => "hold",
            JobOutcome::Complete => "complete",
            JobOutcome::Fail => "fail",
        }
    }
}

impl Running {
    /// From now on, Jobs in this cluster that have not finished become `outcome` (within
    /// 0.1 s, as the launcher polls).
    pub fn play_jobs(&self, outcome: JobOutcome) -> Result<(), HarnessError> {
        self.kmock_only("play_jobs")?;
        let data = serde_json::json!({"data": {"outcome": outcome.as_str()}}).to_string();
        let (code, _) = self.kube_request("PATCH", CONFIG_MAP, "application/merge-patch+json", &data)?;
        if code == 404 {
            let create = serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "drplan-test-job-controller", "namespace": "default"},
                "data": {"outcome": outcome.as_str(), "seen": ""},
            })
            .to_string();
            let path = "/api/v1/namespaces/default/configmaps";
            let (code, body) = self.kube_request("POST", path, "application/json", &create)?;
            if !(200..300).contains(&code) {
                return Err(HarnessError::HttpStatus { url: path.into(), status_line: format!("{code} {body}") });
            }
        }
        Ok(())
    }

    /// From now on, Jobs whose name starts with `prefix` become `outcome`, whatever
    /// [`Running::play_jobs`] says for the others (the longest matching prefix wins).
    pub fn play_jobs_named(&self, prefix: &str, outcome: JobOutcome) -> Result<(), HarnessError> {
        self.kmock_only("play_jobs_named")?;
        if self.kube_request("GET", CONFIG_MAP, "application/json", "")?.0 == 404 {
            self.play_jobs(JobOutcome::Hold)?;
        }
        let data = serde_json::json!({"data": {format!("outcome.{prefix}"): outcome.as_str()}}).to_string();
        let (code, body) = self.kube_request("PATCH", CONFIG_MAP, "application/merge-patch+json", &data)?;
        if !(200..300).contains(&code) {
            return Err(HarnessError::HttpStatus {
                url: CONFIG_MAP.to_string(),
                status_line: format!("{code}: {body}"),
            });
        }
        Ok(())
    }

    /// Every Job name the played controller has seen in this cluster since a test first
    /// called [`Running::play_jobs`], in the order seen.
    pub fn jobs_seen(&self) -> Result<Vec<String>, HarnessError> {
        self.kmock_only("jobs_seen")?;
        let (_, body) = self.kube_request("GET", CONFIG_MAP, "application/json", "")?;
        let map: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let seen = map["data"]["seen"].as_str().unwrap_or_default();
        Ok(seen.lines().filter(|n| !n.is_empty()).map(String::from).collect())
    }

    fn kmock_only(&self, operation: &'static str) -> Result<(), HarnessError> {
        match self.kind() {
            Emulator::Kmock => Ok(()),
            other => Err(HarnessError::NotKmock { operation, emulator: other }),
        }
    }

    fn kube_request(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> Result<(u16, String), HarnessError> {
        crate::request(self.url(), method, path, &[("Content-Type", content_type)], body)
    }
}
