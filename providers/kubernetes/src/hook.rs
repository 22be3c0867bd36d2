//! Hooks: the team's scripts, each run as a Job (the Job step of [`crate::job`]) in the
//! cluster of the region the hook runs in, with the hook's image, command, environment and
//! Secrets, and drplan's own `DRPLAN_*` variables saying which failover it belongs to.

use std::collections::BTreeMap;
use std::time::Duration;

use drplan_core::plan::resource::{Attrs, Value};
use drplan_core::provider::{ErrorClass, ProviderError};

use crate::job::JobStep;

/// The `drplan.io/step` of hook Jobs, and of a drill's.
pub const HOOK_STEP: &str = "hook";
pub const DRILL_HOOK_STEP: &str = "drill-hook";

/// Annotations that say what a hook Job was made for.
const ANNOTATIONS: [&str; 5] = ["hook", "at", "failover", "target", "old"];

/// The Job a hook change's attributes describe, in `namespace` unless they name one.
pub fn step(attrs: &Attrs, namespace: &str, address: &str) -> Result<JobStep, ProviderError> {
    let text = |k: &str| match attrs.get(k) {
        Some(Value::Str(s)) if !s.is_empty() => Some(s.as_str()),
        _ => None,
    };
    let need = |k: &str| {
        text(k).ok_or_else(|| {
            ProviderError::new(ErrorClass::Invalid, format!("the hook has no `{k}` attribute")).at(address)
        })
    };
    let json = |k: &str| -> Result<serde_json::Value, ProviderError> {
        match text(k) {
            None => Ok(serde_json::Value::Null),
            Some(t) => serde_json::from_str(t).map_err(|_| {
                ProviderError::new(ErrorClass::Invalid, format!("the hook's `{k}` is not JSON: {t}")).at(address)
            }),
        }
    };
    let command: Vec<String> = serde_json::from_value(json("command")?).unwrap_or_default();
    let own: BTreeMap<String, String> = serde_json::from_value(json("env")?).unwrap_or_default();
    let env_from: Vec<String> = serde_json::from_value(json("env_from_secret")?).unwrap_or_default();
    let int = |k: &str| match attrs.get(k) {
        Some(Value::Int(n)) => *n,
        _ => 0,
    };
    let mut env: Vec<(String, String)> = own.into_iter().collect();
    env.push(("DRPLAN_HOOK".to_owned(), need("hook")?.to_owned()));
    env.push(("DRPLAN_HOOK_AT".to_owned(), need("at")?.to_owned()));
    env.push(("DRPLAN_FAILOVER_TO".to_owned(), need("target")?.to_owned()));
    if let Some(old) = text("old") {
        env.push(("DRPLAN_FAILOVER_FROM".to_owned(), old.to_owned()));
    }
    if let Some(id) = text("failover") {
        env.push(("DRPLAN_FAILOVER_ID".to_owned(), id.to_owned()));
    }
    let drill = text("drill").is_some();
    if drill {
        env.push(("DRPLAN_DRILL".to_owned(), "1".to_owned()));
    }
    let timeout = match int("timeout") {
        n if n > 0 => Duration::from_secs(n as u64),
        _ => {
            return Err(ProviderError::new(ErrorClass::Invalid, "the hook has no `timeout` attribute").at(address));
        }
    };
    Ok(JobStep {
        name: need("name")?.to_owned(),
        namespace: text("namespace").unwrap_or(namespace).to_owned(),
        step: if drill { DRILL_HOOK_STEP } else { HOOK_STEP }.to_owned(),
        image: need("image")?.to_owned(),
        command,
        env,
        env_from,
        retries: i32::try_from(int("retries")).unwrap_or(0),
        volumes: Vec::new(),
        labels: BTreeMap::new(),
        annotations: ANNOTATIONS
            .iter()
            .filter_map(|k| text(k).map(|v| (format!("drplan.io/{k}"), v.to_owned())))
            .collect(),
        deadline: timeout,
    })
}

#[cfg(test)]
mod tests {
    use drplan_core::plan::resource::attrs;

    #[test]
    fn a_hook_job_carries_its_environment_secrets_and_the_failover() {
        let a = attrs([
            ("name", "drplan-hook-preflight-3f2a9c01b7de".into()),
            ("hook", "preflight".into()),
            ("at", "before_failover".into()),
            ("image", "bot-core/dr-scripts:1".into()),
            ("command", r#"["/scripts/preflight-checks.sh"]"#.into()),
            ("env", r#"{"CHECK_LEVEL":"full"}"#.into()),
            ("env_from_secret", r#"["dr-scripts"]"#.into()),
            ("timeout", 600i64.into()),
            ("retries", 0i64.into()),
            ("target", "eu-west-1".into()),
            ("old", "us-east-1".into()),
            ("failover", "3f2a9c01b7de".into()),
        ]);
        let step = super::step(&a, "bot-core", "region.eu-west-1.hook.preflight").unwrap();
        assert_eq!(step.retries, 0);
        assert_eq!(step.env_from, ["dr-scripts"]);
        let env: std::collections::BTreeMap<_, _> = step.env.iter().cloned().collect();
        assert_eq!(env["CHECK_LEVEL"], "full");
        assert_eq!(env["DRPLAN_FAILOVER_FROM"], "us-east-1");
        assert_eq!(env["DRPLAN_FAILOVER_ID"], "3f2a9c01b7de");
        assert!(!env.contains_key("DRPLAN_DRILL"));
        assert_eq!(step.annotations["drplan.io/at"], "before_failover");
    }
}
