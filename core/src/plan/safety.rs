//! Safety rules checked on every plan: never zero active, never two serving at once,
//! never delete the last backup destination, never destroy active capacity without a
//! promotion in the same plan.

use std::collections::BTreeSet;

use super::Prior;
use super::diff::{Action, Change};
use super::graph::Node;
use super::resource::{Kind, Resource, Value};
use crate::config::{Config, Role, Target};
use crate::diagnostics::{Code, Diagnostic};

pub fn check(
    config: &Config,
    prior: &Prior,
    changes: &[Change],
    graph: &[Node],
    desired: &[Resource],
    targeted: bool,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    // Evidence is never destroyed while an incident is open, whatever a plan file says.
    for c in changes {
        if let Some((i, why)) = crate::incident::destroys_evidence(c, &prior.incidents) {
            out.push(
                Diagnostic::error(Code::EvidenceDestroyed, format!("{} {why} in {}, under incident {}", c.address, i.region, i.id))
                    .help(format!("nothing that destroys evidence runs while the incident is open: plan again (the plan leaves it out), or close the incident first with `drplan incident close {}`", i.id)),
            );
        }
    }
    let Some(active) = config.active_region() else { return out };

    // Never zero active: the region that serves must have something to serve with.
    let capacity = |region: &str| -> i64 {
        desired
            .iter()
            .filter(|r| r.region.as_deref() == Some(region))
            .map(|r| super::step::capacity(r).unwrap_or(0))
            .sum()
    };
    if capacity(&active.name) == 0 {
        out.push(
            Diagnostic::error(Code::ZeroActive, "the active region would serve nothing")
                .label(
                    active.role_span.clone(),
                    format!("`{}` is active but its role gives it no instances and no replicas", active.name),
                )
                .help(
                    "give the active role capacity (`count = { active = N, ... }`, `replicas = { active = N, ... }`)",
                ),
        );
    }

    // Never two serving at once: a backup schedule must not start in one cluster while it
    // may still run in another that this plan cannot reach to suspend.
    let skipped: BTreeSet<&str> = graph.iter().filter(|n| n.skipped.is_some()).map(|n| n.id.as_str()).collect();
    let starts = changes.iter().filter(|c| {
        c.kind == Kind::BackupJob
            && c.after.as_ref().and_then(|a| a.get("suspend")) == Some(&Value::Bool(false))
            && !skipped.contains(c.address.as_str())
    });
    for up in starts {
        let name = up.after.as_ref().and_then(|a| a.get("name"));
        let other_running = prior.objects.values().filter(|o| {
            o.resource.kind == Kind::BackupJob
                && o.resource.attrs.get("name") == name
                && o.resource.address != up.address
                && o.resource.bool("suspend") == Some(false)
        });
        for other in other_running {
            let suspended_first =
                changes.iter().any(|c| c.address == other.resource.address && !skipped.contains(c.address.as_str()));
            if !suspended_first {
                let region = other.resource.region.clone().unwrap_or_default();
                out.push(
                    Diagnostic::error(Code::SplitBrain, "two regions would run the backup schedule at once").help(
                        format!(
                            "`{}` starts while `{}` may still run in {region}, which this plan cannot suspend; \
                             once {region} is known to be down, declare it lost: \
                             `drplan failover --to REGION --write --allow-unreachable` for a failover, \
                             then `drplan apply --allow-unreachable`",
                            up.address, other.resource.address
                        ),
                    ),
                );
            }
        }
    }

    // Never delete the last backup destination.
    for b in &config.backups {
        let prefix = format!("backup.{}.destination.", b.name);
        let deleting: Vec<&Change> = changes
            .iter()
            .filter(|c| c.kind == Kind::Bucket && c.action == Action::Delete && c.address.starts_with(&prefix))
            .collect();
        let surviving = desired.iter().filter(|r| r.address.starts_with(&prefix)).count()
            + b.destinations.iter().filter(|d| matches!(d.target, Target::Nas { .. })).count();
        if !deleting.is_empty() && surviving == 0 {
            out.push(Diagnostic::error(Code::LastBackupDestination, "the plan deletes every backup destination").help(
                format!(
                    "backup `{}` would have nowhere to write; add its new destination before removing the old one",
                    b.name
                ),
            ));
        }
    }
    let backups: BTreeSet<&str> = config.backups.iter().map(|b| b.name.as_str()).collect();
    let orphaned: BTreeSet<&str> = changes
        .iter()
        .filter(|c| c.kind == Kind::Bucket && c.action == Action::Delete)
        .filter_map(|c| c.address.strip_prefix("backup.").and_then(|a| a.split(".destination.").next()))
        .filter(|b| !backups.contains(b))
        .collect();
    for b in orphaned {
        out.push(Diagnostic::error(Code::LastBackupDestination, "the plan deletes every backup destination").help(format!(
            "backup `{b}` was removed from the configuration, which would delete all its buckets and the backups in them; \
             delete them by hand once they are no longer needed, or keep the backup block"
        )));
    }

    // Never destroy active capacity without a promotion in the same plan: the region that
    // served at the last apply and is being demoted may lose capacity only in a plan that
    // also moves traffic away from it. (A region that stays active scales freely; zero
    // capacity there is the zero-active rule.)
    let dns_managed = config.failover.as_ref().is_some_and(|f| f.dns.is_some());
    let moves_primary = changes.iter().any(|c| {
        c.kind == Kind::DnsRecord
            && c.after.as_ref().and_then(|a| a.get("failover")) == Some(&Value::Str("PRIMARY".into()))
            && c.after.as_ref().and_then(|a| a.get("serves")) == Some(&Value::Str(active.name.clone()))
    });
    let demoted = prior
        .roles
        .iter()
        .filter(|(name, role)| **role == Role::Active && **name != active.name)
        .map(|(n, _)| n.as_str());
    for region in demoted {
        let cuts: Vec<&str> = changes
            .iter()
            .filter(|c| c.region.as_deref() == Some(region) && is_capacity_cut(c))
            .map(|c| c.address.as_str())
            .collect();
        if cuts.is_empty() || !dns_managed || moves_primary {
            continue;
        }
        let why = if targeted { " (--target left the promotion out of this plan)" } else { "" };
        out.push(Diagnostic::error(Code::ActiveCapacityDestroyed, "the plan removes the serving region's capacity without a promotion").help(format!(
            "{region} still receives traffic and would lose capacity ({} and {} more){why}; plan the promotion of {} in the same run",
            cuts[0],
            cuts.len() - 1,
            active.name
        )));
    }
    out
}

fn is_capacity_cut(c: &Change) -> bool {
    use super::step::{Direction, Phase, direction};
    matches!(c.kind.spec().phase, Phase::Stack(l) if l.is_capacity()) && direction(c) == Direction::Down
}
