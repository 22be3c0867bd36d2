//! Restores in the plan: when a region is promoted to active from a role a backup's
//! `restore` block lists, the plan gains `region.R.restore.B`, a Kubernetes Job in that
//! region's cluster that restores the chosen recovery point before workloads and traffic
//! come.
//!
//! A restore is not diffed like the other resources: it is wanted once per promotion. The
//! finished Job is recorded in state at its address and kept there while the region stays
//! active, so re-applying the same promotion does not restore twice; a Job found in the
//! cluster (an apply killed while it waited) is adopted by its name, never started again.

use super::diff::{Action, Change};
use super::resource::{Attrs, Kind, Value, address, attrs};
use super::{Options, Prior, Snapshot};
use crate::config::{Backup, Config, Role, Target};
use crate::diagnostics::{Code, Diagnostic};
use crate::recovery::{self, Catalog, Choice};

/// Status values of a restore Job, as providers report them and state records them.
pub const RUNNING: &str = "running";
pub const COMPLETE: &str = "complete";
pub const FAILED: &str = "failed";

/// One restore the plan carries out, with what a reviewer needs to judge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestorePlan {
    pub address: String,
    pub region: String,
    pub backup: String,
    /// The Job's name in the region's cluster.
    pub job: String,
    pub choice: Choice,
    /// The point's age when planned, in seconds.
    pub age: Option<i64>,
    /// The RPO it is judged against, in seconds.
    pub rpo: Option<u64>,
    /// A Job of this name is already in the cluster (running or complete) and is adopted.
    pub adopted: bool,
    /// `--restore-point`, when one was given.
    pub requested: Option<i64>,
    /// The thaw planned before the Job (`region.R.thaw.B`), when the point is archived.
    pub thaw: Option<String>,
}

impl RestorePlan {
    pub fn within_rpo(&self) -> Option<bool> {
        Some(self.age? <= self.rpo? as i64)
    }

    /// `restore database into asia-pacific-1 from gs://…/dr/20261201_070000/ (43m old, RPO 1h ✓, 12 objects, verified)`.
    pub fn summary(&self) -> String {
        let mut facts = Vec::new();
        if let Some(age) = self.age {
            facts.push(format!("{} old", recovery::age_text(age)));
        }
        if let (Some(rpo), Some(ok)) = (self.rpo, self.within_rpo()) {
            let rpo = crate::config::Duration::from_secs(rpo);
            facts.push(format!("RPO {rpo} {}", if ok { "✓" } else { "✗ data loss beyond the RPO" }));
        }
        if let Some(n) = self.choice.point.objects {
            facts.push(recovery::objects_text(n));
        }
        facts.push(self.choice.point.status.as_str().to_string());
        if let Some(thaw) = &self.choice.thaw {
            facts.push(thaw.clone());
        }
        if self.adopted {
            facts.push(format!("resuming Job {}", self.job));
        }
        format!("restore {} into {} from {} ({})", self.backup, self.region, self.choice.uri, facts.join(", "))
    }
}

/// The Job name for `backup` at `point`: deterministic, a valid Kubernetes name (63 at most).
pub fn job_name(backup: &str, point: &str) -> String {
    let clean: String = point
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let name = format!("drplan-restore-{backup}-{clean}");
    if name.len() <= 63 {
        return name;
    }
    let token = crate::provider::idempotency_token(backup, point);
    let keep = 63 - 9;
    format!("{}-{}", name[..keep].trim_end_matches('-'), &token[..8])
}

/// What `plan` needs: the restore changes, their review lines, and the findings that make
/// the plan not applyable (no usable point, data loss beyond the RPO).
#[derive(Debug, Default)]
pub struct Restores {
    pub changes: Vec<Change>,
    pub plans: Vec<RestorePlan>,
    pub findings: Vec<Diagnostic>,
}

/// The destinations of `backup` a restore can read: the clouds' buckets, and a NAS whose
/// share the restore Jobs reach (`restore_from`).
pub fn catalogs<'a>(backup: &Backup, live: &'a Snapshot) -> Vec<&'a Catalog> {
    backup
        .destinations
        .iter()
        .filter(|d| !matches!(d.target, Target::Nas { restore_from: false, .. }))
        .filter_map(|d| live.points.get(&address::bucket(&backup.name, &d.name)))
        .collect()
}

/// A restore asked for outside a promotion (`drplan restore`): into `region` (default: the
/// active one) from `backup` (default: the only one with a `restore` block).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Explicit {
    pub region: Option<String>,
    pub backup: Option<String>,
}

/// One restore to plan: where, what, and whether it was asked for explicitly.
struct Wanted<'a> {
    region: &'a crate::config::Region,
    k8s: &'a crate::config::Kubernetes,
    backup: &'a Backup,
    restore: &'a crate::config::Restore,
    explicit: bool,
}

/// The restores promotions need: a region active now that state records in a role the
/// backup's `restore` lists.
fn promotions<'a>(config: &'a Config, prior: &Prior) -> Vec<Wanted<'a>> {
    let mut out = Vec::new();
    for region in config.regions.iter().filter(|r| r.role == Role::Active) {
        let Some(k8s) = &region.kubernetes else { continue };
        let Some(from) = prior.roles.get(&region.name).copied() else { continue };
        for backup in &config.backups {
            // During an incident elsewhere, whatever the role it is promoted from: replication
            // may have carried the attacker's writes into its data.
            let incident =
                from != Role::Active && crate::incident::open(&prior.incidents).any(|i| i.region != region.name);
            let Some(restore) = backup.restore.as_ref().filter(|r| r.when.contains(&from) || incident) else {
                continue;
            };
            // Done for this promotion: recorded complete.
            let at = address::restore(&region.name, &backup.name);
            if prior.objects.get(&at).is_some_and(|o| o.resource.str("status") == Some(COMPLETE)) {
                continue;
            }
            out.push(Wanted { region, k8s, backup, restore, explicit: false });
        }
    }
    out
}

/// The restore `drplan restore` asks for, or why it cannot be planned.
fn explicit<'a>(config: &'a Config, request: &Explicit) -> Result<Wanted<'a>, Diagnostic> {
    let fail = |message: String, help: String| Diagnostic::error(Code::NoRecoveryPoint, message).help(help);
    let region = match &request.region {
        Some(name) => config.region(name).ok_or_else(|| {
            let names: Vec<&str> = config.regions.iter().map(|r| r.name.as_str()).collect();
            fail(format!("no region is named `{name}`"), format!("restore into one of: {}", names.join(", ")))
        })?,
        None => config.active_region().ok_or_else(|| {
            fail("no region is active".into(), "name the region to restore into with `--to REGION`".into())
        })?,
    };
    let k8s = region.kubernetes.as_ref().ok_or_else(|| {
        fail(
            format!("region `{}` has no cluster to run the restore Job in", region.name),
            format!("add a `kubernetes` block to region `{}`, or restore into another region with `--to`", region.name),
        )
    })?;
    let with_restore: Vec<&Backup> = config.backups.iter().filter(|b| b.restore.is_some()).collect();
    let backup = match &request.backup {
        Some(name) => config.backups.iter().find(|b| &b.name == name).ok_or_else(|| {
            let names: Vec<&str> = config.backups.iter().map(|b| b.name.as_str()).collect();
            fail(format!("no backup is named `{name}`"), format!("declared backups: {}", names.join(", ")))
        })?,
        None => match with_restore.as_slice() {
            [only] => only,
            [] => {
                return Err(fail(
                    "no backup has a `restore` block".into(),
                    "say how a backup is restored with a `restore { ... }` block inside it".into(),
                ));
            }
            several => {
                let names: Vec<&str> = several.iter().map(|b| b.name.as_str()).collect();
                return Err(fail(
                    "several backups can be restored".into(),
                    format!("choose one with `--backup NAME`: {}", names.join(", ")),
                ));
            }
        },
    };
    let restore = backup.restore.as_ref().ok_or_else(|| {
        fail(
            format!("backup `{}` has no `restore` block", backup.name),
            "say how it is restored: `restore { command = [...], timeout = \"1h\" }` inside the backup".into(),
        )
    })?;
    Ok(Wanted { region, k8s, backup, restore, explicit: true })
}

pub fn plan(config: &Config, prior: &Prior, live: Option<&Snapshot>, options: &Options) -> Restores {
    let mut out = Restores::default();
    let wanted = match &options.restore_only {
        Some(request) => match explicit(config, request) {
            Ok(w) => vec![w],
            Err(d) => {
                out.findings.push(d);
                return out;
            }
        },
        None => promotions(config, prior),
    };
    for Wanted { region, k8s, backup, restore, explicit } in wanted {
        {
            let at = address::restore(&region.name, &backup.name);
            let Some(live) = live else {
                out.findings.push(
                    Diagnostic::error(Code::NoRecoveryPoint, "no recovery point chosen")
                        .help(format!("promoting {} restores backup `{}`, and its recovery point is chosen from what the destinations hold: plan with a refresh (drop `--refresh=false`)", region.name, backup.name)),
                );
                continue;
            };
            let found = live.objects.get(&at).filter(|o| o.resource.kind == Kind::Restore);
            let found_status = found.and_then(|o| o.resource.str("status"));
            let requested = options.restore_point;
            let now = options.now.unwrap_or(i64::MAX);
            // During an incident, the newest point from before it: those written since are
            // suspect, unless one is asked for by time with `--allow-suspect`.
            let clean_before = crate::incident::open(&prior.incidents)
                .min_by_key(|i| i.since_seconds())
                .filter(|_| !(options.allow_suspect && requested.is_some()));
            let unmarked: Vec<recovery::Catalog>;
            let mut catalogs = catalogs(backup, live);
            if options.allow_suspect && requested.is_some() {
                unmarked = catalogs.iter().map(|c| c.without_suspects()).collect();
                catalogs = unmarked.iter().collect();
            }
            let limit = match clean_before {
                Some(i) => requested.unwrap_or(now).min(i.since_seconds() - 1),
                None => requested.unwrap_or(now),
            };
            // A Job that runs or finished is this promotion's restore: adopt it, whatever
            // point would be chosen now.
            let adopted = found.filter(|_| found_status != Some(FAILED)).and_then(|o| {
                let name = o.resource.str("point_name")?;
                let dest = o.resource.str("destination")?;
                let catalog = catalogs.iter().find(|c| c.destination == dest)?;
                let point = catalog.points.iter().find(|p| p.name == name).cloned().unwrap_or(recovery::Point {
                    name: name.to_string(),
                    time: o.resource.str("point").and_then(recovery::parse_rfc3339),
                    ..recovery::Point::default()
                });
                // The Job runs or ran: its data was within reach when it started.
                Some(Choice {
                    destination: dest.to_string(),
                    uri: catalog.point_uri(name),
                    point,
                    passed_over: Vec::new(),
                    tier: catalog.tier,
                    time_to_data: 0,
                    thaw: None,
                })
            });
            let is_adopted = adopted.is_some();
            let choice = match adopted {
                Some(c) => c,
                // Asked for a time, the newest point before it; otherwise, among the points
                // within the RPO, the one read soonest.
                None => match recovery::choose(
                    &catalogs,
                    region.cloud.as_str(),
                    limit,
                    config
                        .objectives
                        .rpo
                        .filter(|_| requested.is_none() && clean_before.is_none())
                        .map(|d| d.as_secs()),
                ) {
                    Ok(c) => c,
                    Err(tried) => {
                        let mut d = Diagnostic::error(Code::NoRecoveryPoint, "no usable recovery point").help(format!(
                            "promoting {} needs a restore of backup `{}` and no destination holds a complete, uncorrupted point{}: {}; run `drplan backups` to see every point, or give an earlier `--restore-point`",
                            region.name,
                            backup.name,
                            if limit < now { format!(" at or before {}", recovery::rfc3339(limit)) } else { String::new() },
                            tried.iter().map(|(d, why)| format!("{d} {why}")).collect::<Vec<_>>().join("; ")
                        ));
                        d.message = format!("no usable recovery point for backup `{}`", backup.name);
                        out.findings.push(d);
                        continue;
                    }
                },
            };
            let job = match (&found, is_adopted) {
                (Some(o), true) => o.resource.str("name").unwrap_or_default().to_string(),
                _ => job_name(&backup.name, &choice.point.name),
            };
            let age = choice.point.time.filter(|_| options.now.is_some()).map(|t| now - t);
            let rpo = config.objectives.rpo.map(|d| d.as_secs());
            let plan = RestorePlan {
                address: at.clone(),
                region: region.name.clone(),
                backup: backup.name.clone(),
                job: job.clone(),
                choice: choice.clone(),
                age,
                rpo,
                adopted: is_adopted,
                requested,
                thaw: None,
            };
            // An adopted Job's point was judged when it started; judging it again by today's
            // clock would block resuming the restore that is already half done.
            if plan.within_rpo() == Some(false) && !is_adopted {
                let message = format!(
                    "restoring {} into {} loses {} of data, beyond the RPO of {}",
                    backup.name,
                    region.name,
                    recovery::age_text(age.unwrap_or_default()),
                    crate::config::Duration::from_secs(rpo.unwrap_or_default())
                );
                let help = "the newest usable point is older than `objectives.rpo`: check the backup schedule and `drplan backups`; to restore it anyway, apply with `--accept-data-loss`";
                // Asked for with `drplan restore --point`, the window is the point: shown, not
                // refused; so is the point from before an incident, which declaring it accepted.
                out.findings.push(match options.accept_data_loss || explicit || clean_before.is_some() {
                    true => Diagnostic::warning(Code::DataLoss, message).help(match (explicit, clean_before) {
                        (_, Some(i)) => format!("incident {} makes every point written since {} suspect: the newest point from before it is restored", i.id, i.since),
                        (true, None) => "the point was asked for with `--point`".to_string(),
                        (false, None) => "accepted with `--accept-data-loss`".to_string(),
                    }),
                    false => Diagnostic::error(Code::DataLoss, message).help(help),
                });
            }
            let mut a: Attrs = attrs([
                ("context", k8s.context.as_str().into()),
                ("namespace", k8s.namespace.as_str().into()),
                ("name", job.as_str().into()),
                ("backup", backup.name.as_str().into()),
                ("destination", choice.destination.as_str().into()),
                ("uri", choice.uri.as_str().into()),
                ("point_name", choice.point.name.as_str().into()),
                ("point", choice.point.time.map(recovery::rfc3339).unwrap_or_default().into()),
                ("image", restore.image.as_str().into()),
                ("command", serde_json::to_string(&restore.command).unwrap_or_default().into()),
                ("type", backup.kind.as_str().into()),
                ("timeout", (restore.timeout.as_secs() as i64).into()),
                ("status", COMPLETE.into()),
            ]);
            if let Some(gpg) = &backup.gpg_recipient {
                a.insert("gpg_recipient".into(), gpg.as_str().into());
            }
            // A point on a NAS: its share's claim mounted into the Job where the URI says.
            if let Some(Target::Nas { path: Some(path), claim: Some(claim), .. }) = chosen_target(backup, &choice) {
                a.insert("volume_claim".into(), claim.as_str().into());
                a.insert("mount_path".into(), path.as_str().into());
            }
            // The time asked for reaches the Job, which replays its log up to it (PITR).
            if let Some(t) = requested {
                a.insert("target_time".into(), recovery::rfc3339(t).into());
            }
            let action = match (found_status, &found) {
                (Some(COMPLETE), _) => Action::Adopt,
                (Some(FAILED), Some(o)) if o.resource.str("name") == Some(job.as_str()) => Action::Replace,
                _ => Action::Create,
            };
            let mut plan = plan;
            if action != Action::Adopt
                && !is_adopted
                && let Some(thaw) = thaw(backup, restore, region, &choice, prior)
            {
                plan.thaw = Some(thaw.address.clone());
                out.changes.push(thaw);
            }
            out.changes.push(Change {
                address: at,
                kind: Kind::Restore,
                region: Some(region.name.clone()),
                action,
                // The Job found is shown by its name and outcome: its other settings are not
                // read back, and a diff of them would say nothing.
                before: found.map(|o| {
                    o.resource
                        .attrs
                        .iter()
                        .filter(|(k, _)| matches!(k.as_str(), "name" | "status"))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                }),
                after: Some(a),
                id: found.map(|o| o.id.clone()),
                replace_paths: match action {
                    Action::Replace => vec!["status".to_string()],
                    _ => Vec::new(),
                },
            });
            out.plans.push(plan);
        }
    }
    out
}

/// The thaw an archived point needs before the restore Job reads it: every object under the
/// point's folder asked back with the destination's tier for a few days (long enough for
/// the Job's own timeout), then waited for. `None` when the point is read at once, or its
/// destination is not one S3 thaws.
/// Where the chosen point is: the target of the destination `choice` names.
fn chosen_target<'a>(backup: &'a Backup, choice: &Choice) -> Option<&'a Target> {
    let destination =
        backup.destinations.iter().find(|d| address::bucket(&backup.name, &d.name) == choice.destination)?;
    Some(&destination.target)
}

fn thaw(
    backup: &Backup,
    restore: &crate::config::Restore,
    region: &crate::config::Region,
    choice: &Choice,
    prior: &Prior,
) -> Option<Change> {
    let class = choice.point.archive.as_deref()?;
    let seconds = recovery::thaw_seconds(class, choice.tier)?;
    let Target::S3 { bucket, prefix, region: location, .. } = chosen_target(backup, choice)? else { return None };
    let folder = match prefix.as_str() {
        "" => String::new(),
        p if p.ends_with('/') => p.to_string(),
        p => format!("{p}/"),
    };
    let at = address::thaw(&region.name, &backup.name);
    let tier = recovery::effective_tier(class, choice.tier);
    let a: Attrs = attrs([
        ("cloud", "aws".into()),
        ("location", location.as_str().into()),
        ("bucket", bucket.as_str().into()),
        ("prefix", format!("{folder}{}/", choice.point.name).into()),
        ("backup", backup.name.as_str().into()),
        ("destination", choice.destination.as_str().into()),
        ("uri", choice.uri.as_str().into()),
        ("point_name", choice.point.name.as_str().into()),
        ("class", class.into()),
        ("tier", tier.as_str().into()),
        ("days", ((1 + restore.timeout.as_secs().div_ceil(86_400)) as i64).into()),
        ("seconds", (seconds as i64).into()),
        // Twice the longest the archive documents: past that, something is wrong.
        ("timeout", ((2 * seconds).max(600) as i64).into()),
        ("status", COMPLETE.into()),
    ]);
    // Thawed already for this point (a restore that failed afterwards): nothing to wait for.
    let done = prior.objects.get(&at).filter(|o| {
        o.resource.str("status") == Some(COMPLETE) && o.resource.str("point_name") == Some(choice.point.name.as_str())
    });
    Some(Change {
        address: at,
        kind: Kind::Thaw,
        region: Some(region.name.clone()),
        action: if done.is_some() { Action::Adopt } else { Action::Create },
        before: None,
        after: Some(a),
        id: done.map(|o| o.id.clone()),
        replace_paths: Vec::new(),
    })
}

/// The restores (and thaws) promoting `region` from `role` would run, for an RTO estimate of
/// a failover this plan does not make: the point chosen now, the Job not planned.
pub fn hypothetical(
    config: &Config,
    region: &str,
    role: Role,
    live: Option<&Snapshot>,
    now: Option<i64>,
) -> Vec<Change> {
    let Some(region) = config.region(region).filter(|r| r.kubernetes.is_some()) else { return Vec::new() };
    let mut out = Vec::new();
    for backup in &config.backups {
        let Some(restore) = backup.restore.as_ref().filter(|r| r.when.contains(&role)) else { continue };
        let choice = live.zip(now).and_then(|(live, now)| {
            let rpo = config.objectives.rpo.map(|d| d.as_secs());
            recovery::choose(&catalogs(backup, live), region.cloud.as_str(), now, rpo).ok()
        });
        if let Some(thaw) = choice.as_ref().and_then(|c| thaw(backup, restore, region, c, &Prior::default())) {
            out.push(thaw);
        }
        out.push(Change {
            address: address::restore(&region.name, &backup.name),
            kind: Kind::Restore,
            region: Some(region.name.clone()),
            action: Action::Create,
            before: None,
            after: Some(attrs([("backup", backup.name.as_str().into())])),
            id: None,
            replace_paths: Vec::new(),
        });
    }
    out
}

/// What a thaw on an RTO's critical path costs, for the posture: the copy, its class, the
/// tier and the time (`backup.database.destination.primary (s3://…/) is GLACIER: a Standard
/// thaw takes up to 5h`).
pub fn thaw_note(path: &[String], changes: &[Change]) -> Option<String> {
    let c = changes.iter().find(|c| c.kind == Kind::Thaw && path.contains(&c.address))?;
    let a = c.after.as_ref()?;
    let text = |k: &str| a.get(k).and_then(Value::text).unwrap_or_default();
    let seconds = match a.get("seconds") {
        Some(Value::Int(s)) => *s,
        _ => 0,
    };
    Some(format!(
        "{} ({}) is {}: a {} thaw takes up to {}",
        text("destination"),
        text("uri"),
        text("class"),
        text("tier"),
        recovery::age_text(seconds)
    ))
}

/// Whether `value` is the restore attribute that says the Job finished.
pub fn is_complete(attrs: &Attrs) -> bool {
    attrs.get("status") == Some(&Value::Str(COMPLETE.into()))
}

#[cfg(test)]
mod tests {
    use super::job_name;

    #[test]
    fn job_names_are_stable_valid_and_short() {
        assert_eq!(job_name("database", "20261201_070000"), "drplan-restore-database-20261201-070000");
        let long = job_name("a-very-long-backup-name-indeed", "backup-2026-12-01T07-00-00-and-more-words");
        assert!(long.len() <= 63, "{long}");
        assert_eq!(long, job_name("a-very-long-backup-name-indeed", "backup-2026-12-01T07-00-00-and-more-words"));
        assert!(long.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
    }
}
