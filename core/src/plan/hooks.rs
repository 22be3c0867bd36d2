//! Hooks in the plan: when the active role moves, each `hook` block becomes
//! `region.R.hook.NAME`, a Kubernetes Job in the cluster of the region it runs in, at its
//! point of the failover (the graph's rules for [`super::step::Phase::Hook`]).
//!
//! A hook is planned once per failover. Its Job's name carries the failover's own id, so a
//! run killed while the Job ran finds it again and a later failover never adopts an earlier,
//! finished Job. The id is kept in state with the switchover while the failover is under way
//! (`watch::Switchover::id`); a hook recorded complete under it is adopted, never run again.

use super::diff::{Action, Change};
use super::resource::{Attrs, Kind, address, attrs};
use super::step::HookPoint;
use super::{Options, Prior};
use crate::config::{Config, Hook, Role};
use crate::diagnostics::{Code, Diagnostic};

/// The hooks a plan runs, and what keeps one from running.
#[derive(Debug, Default)]
pub struct Hooks {
    pub changes: Vec<Change>,
    pub findings: Vec<Diagnostic>,
    /// The failover's id, when the plan makes one.
    pub failover_id: Option<String>,
}

/// The failover this plan makes, `(old active, new active)`: the active role moves from
/// where state last recorded it. None on a first apply (nothing was active before).
pub fn failover<'a>(config: &'a Config, prior: &'a Prior) -> Option<(Option<&'a str>, &'a str)> {
    let target = config.active_region()?.name.as_str();
    if prior.roles.is_empty() {
        return None;
    }
    let old = prior.roles.iter().find(|(_, r)| **r == Role::Active).map(|(n, _)| n.as_str());
    (old != Some(target)).then_some((old, target))
}

/// The id of the failover from `old` to `target`: the one recorded with the switchover under
/// way (or the watcher's override) when it is this failover, else a new one from `now`.
pub fn failover_id(prior: &Prior, old: Option<&str>, target: &str, now: Option<i64>) -> String {
    let old = old.unwrap_or_default();
    if let Some(s) = &prior.switchover
        && s.to == target
        && s.from == old
        && let Some(id) = &s.id
    {
        return id.clone();
    }
    let started = match &prior.override_ {
        Some(o) if o.active == target && o.previous == old => o.at.clone(),
        _ => crate::recovery::rfc3339(now.unwrap_or_default()),
    };
    let token = crate::provider::idempotency_token(&format!("{old}>{target}"), &started);
    token[..12.min(token.len())].to_string()
}

/// The Job name of hook `hook` in failover `id` (`drplan-hook-preflight-3f2a9c01b7de`): a
/// valid Kubernetes name of 63 characters at most.
pub fn job_name(prefix: &str, hook: &str, id: &str) -> String {
    let keep = 63 - prefix.len() - id.len() - 2;
    let hook: String = hook.chars().take(keep).collect();
    format!("{prefix}-{}-{id}", hook.trim_end_matches('-'))
}

/// A hook's Job attributes (what the Kubernetes provider runs), in `region`'s cluster.
pub fn job_attrs(hook: &Hook, region: &crate::config::Region, name: &str, old: Option<&str>, target: &str) -> Attrs {
    let (context, namespace) =
        region.kubernetes.as_ref().map(|k| (k.context.as_str(), k.namespace.as_str())).unwrap_or_default();
    let mut a = attrs([
        ("context", context.into()),
        ("namespace", namespace.into()),
        ("name", name.into()),
        ("hook", hook.name.as_str().into()),
        ("at", hook.at.as_str().into()),
        ("image", hook.image.as_str().into()),
        ("command", serde_json::to_string(&hook.command).unwrap_or_default().into()),
        ("env", serde_json::to_string(&hook.env).unwrap_or_default().into()),
        ("env_from_secret", serde_json::to_string(&hook.env_from_secret).unwrap_or_default().into()),
        ("timeout", (hook.timeout.as_secs() as i64).into()),
        ("retries", i64::from(hook.retries).into()),
        ("on_failure", if hook.stop { "stop" } else { "continue" }.into()),
        ("target", target.into()),
        ("status", super::restore::COMPLETE.into()),
    ]);
    if let Some(old) = old {
        a.insert("old".into(), old.into());
    }
    a
}

pub fn plan(config: &Config, prior: &Prior, options: &Options) -> Hooks {
    let mut out = Hooks::default();
    if config.hooks.is_empty() || options.restore_only.is_some() {
        return out;
    }
    let Some((old, target)) = failover(config, prior) else { return out };
    let id = failover_id(prior, old, target, options.now);
    for hook in &config.hooks {
        let Some(region_name) = hook.region.resolve(target, old) else {
            out.findings.push(
                Diagnostic::warning(Code::HookNotRun, format!("hook `{}` does not run: no region was active before", hook.name))
                    .help("it runs in the old active region (`region = \"old\"`), and state records none: nothing was active before this failover"),
            );
            continue;
        };
        let Some(region) = config.region(region_name).filter(|r| r.kubernetes.is_some()) else {
            out.findings.push(
                Diagnostic::error(
                    Code::HookWithoutCluster,
                    format!("hook `{}` runs in {region_name}, which has no cluster", hook.name),
                )
                .help(format!("a hook runs as a Kubernetes Job: add a `kubernetes` block to region `{region_name}`, or run the hook in another region (`region = ...`)")),
            );
            continue;
        };
        let at = address::hook(region_name, &hook.name);
        let name = job_name("drplan-hook", &hook.name, &id);
        let mut a = job_attrs(hook, region, &name, old, target);
        a.insert("failover".into(), id.as_str().into());
        let recorded = prior.objects.get(&at).filter(|o| o.resource.str("failover") == Some(id.as_str()));
        let action = match recorded.and_then(|o| o.resource.str("status")) {
            Some(super::restore::COMPLETE) => Action::Adopt,
            // Failed in this failover: applying again runs it again, and the plan says so.
            Some(super::restore::FAILED) => Action::Replace,
            _ => Action::Create,
        };
        out.changes.push(Change {
            address: at,
            kind: Kind::Hook,
            region: Some(region_name.to_string()),
            action,
            // As recorded (without when and how long it ran): a re-run shows its outcome
            // changing, nothing else.
            before: recorded.map(|o| {
                o.resource
                    .attrs
                    .iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "duration_seconds" | "finished"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            }),
            after: Some(a),
            id: recorded.map(|o| o.id.clone()),
            replace_paths: match action {
                Action::Replace => vec!["status".to_string()],
                _ => Vec::new(),
            },
        });
    }
    out.failover_id = Some(id);
    out
}

/// The hooks a drill of `region` runs: those that opted in (`drill = true`) at the serving
/// side's points (`after_restore`, `after_capacity`) and run in the drilled region, under
/// the drill's addresses, with `DRPLAN_DRILL=1`.
pub fn drill(config: &Config, region: &str, drill_id: &str) -> Vec<Change> {
    let Some(r) = config.region(region).filter(|r| r.kubernetes.is_some()) else { return Vec::new() };
    config
        .hooks
        .iter()
        .filter(|h| h.drill && matches!(h.at, HookPoint::AfterRestore | HookPoint::AfterCapacity))
        .filter(|h| h.region.resolve(region, None) == Some(region))
        .map(|h| {
            let id = crate::provider::idempotency_token(drill_id, &h.name);
            let name = job_name("drplan-drill-hook", &h.name, &id[..8]);
            let mut a = job_attrs(h, r, &name, None, region);
            a.insert("drill".into(), "1".into());
            Change {
                address: format!("region.{region}.drill.hook.{}", h.name),
                kind: Kind::Hook,
                region: Some(region.to_string()),
                action: Action::Create,
                before: None,
                after: Some(a),
                id: None,
                replace_paths: Vec::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::job_name;

    #[test]
    fn job_names_carry_the_failover_and_stay_valid() {
        assert_eq!(job_name("drplan-hook", "preflight", "3f2a9c01b7de"), "drplan-hook-preflight-3f2a9c01b7de");
        let long = job_name("drplan-hook", &"x".repeat(80), "3f2a9c01b7de");
        assert!(long.len() <= 63 && long.ends_with("-3f2a9c01b7de"), "{long}");
    }
}
