//! DR posture, shown with every plan: RPO, RTO, 3-2-1 and standby readiness.

use std::collections::{BTreeMap, BTreeSet};

use super::diff::{Action, Change};
use super::graph::{Node, Step};
use super::resource::{Kind, Resource, Value, address};
use super::{Observed, Prior, Snapshot, desired, diff, graph};
use crate::config::{Config, Duration, Role};

/// Seconds each kind of action is expected to take, for the RTO estimate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Estimates {
    pub instance: u64,
    pub workload: u64,
    pub health_check: u64,
    /// A record change propagating, before its TTL runs out on clients.
    pub dns: u64,
    pub bucket: u64,
    pub backup_job: u64,
    /// A restore Job restoring a recovery point.
    pub restore: u64,
    /// Added to the health checks' `interval` at a gate (the checkers' first round after the
    /// region is ready).
    pub gate: u64,
    /// The old writer's writers scaled to 0.
    pub stop_writes: u64,
    /// A replica catching up once writes stopped: RDS publishes its lag once a minute.
    pub catch_up: u64,
    /// A replica promoted to writer and available.
    pub promotion: u64,
    /// A hook's Job, from its creation to its end.
    pub hook: u64,
}

impl Estimates {
    /// The defaults with the configuration's `objectives.estimates` applied.
    pub fn from_config(config: &Config) -> Estimates {
        let o = &config.objectives.estimates;
        let d = Estimates::default();
        let pick = |v: Option<Duration>, default: u64| v.map_or(default, |v| v.as_secs());
        Estimates {
            instance: pick(o.instance, d.instance),
            workload: pick(o.workload, d.workload),
            health_check: pick(o.health_check, d.health_check),
            dns: pick(o.dns, d.dns),
            bucket: pick(o.bucket, d.bucket),
            backup_job: pick(o.backup_job, d.backup_job),
            restore: pick(o.restore, d.restore),
            gate: pick(o.health_gate, d.gate),
            stop_writes: d.stop_writes,
            catch_up: d.catch_up,
            promotion: d.promotion,
            hook: pick(o.hook, d.hook),
        }
    }
}

impl Default for Estimates {
    fn default() -> Self {
        Estimates {
            instance: 180,
            workload: 90,
            health_check: 30,
            dns: 60,
            bucket: 15,
            backup_job: 10,
            restore: 900,
            gate: 30,
            stop_writes: 15,
            catch_up: 90,
            promotion: 300,
            hook: 60,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posture {
    pub rpo: Vec<RpoCheck>,
    pub rto: Option<RtoCheck>,
    pub copies: Vec<Copies>,
    pub standby: Vec<Readiness>,
    /// With `objectives.drill_every`: each standby and cold region's last passed drill.
    pub drills: Vec<DrillCheck>,
}

/// Whether a region was drilled recently enough.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillCheck {
    pub region: String,
    /// When its last passed drill started (RFC 3339), if any.
    pub last: Option<String>,
    pub every: Duration,
    pub ok: bool,
}

impl Posture {
    pub fn ok(&self) -> bool {
        self.rpo.iter().all(|r| r.ok)
            && self.rto.as_ref().is_none_or(|r| r.ok)
            && self.copies.iter().all(|c| c.ok)
            && self.standby.iter().all(|s| s.ready)
            && self.drills.iter().all(|d| d.ok)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpoCheck {
    pub backup: String,
    pub rpo: Option<Duration>,
    pub schedule_gap: Duration,
    /// Each destination with the age of its newest backup, when it was measured.
    pub destinations: Vec<(String, Option<Duration>)>,
    /// Destinations that could not be read (their region or cloud is down): the check
    /// rests on the others.
    pub unreachable: Vec<String>,
    /// Destinations whose newest usable point must be thawed before a restore, with its
    /// class, thaw time and tier (`GLACIER, thaw up to 5h (Standard)`).
    pub thaws: Vec<(String, String)>,
    /// Every destination that can be listed was, and none holds a recovery point: the backup
    /// has never run (or never finished). Not ✓, whatever the schedule says.
    pub no_backup_yet: bool,
    /// Nothing was measured (a plan without a refresh, every destination unreadable): the
    /// check rests on the schedule alone and is shown as unknown, not ✓.
    pub unmeasured: bool,
    /// NAS destinations that could not be listed (neither mounted where drplan runs nor
    /// reached through an S3 endpoint).
    pub not_listed: Vec<String>,
    pub ok: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtoCheck {
    pub to_region: String,
    pub estimate: Duration,
    pub rto: Option<Duration>,
    /// The longest chain of actions, which bounds the failover.
    pub critical_path: Vec<String>,
    /// The drill whose measured step durations the estimate uses (`ID of DATE`), when the
    /// region has passed one; otherwise the estimates are `objectives.estimates`'.
    pub measured_by: Option<String>,
    /// True when the plan itself fails nothing over and this estimates a failover to the
    /// first standby from the state the plan leaves.
    pub hypothetical: bool,
    /// The thaw of an archived copy on the critical path: the copy, its class, the tier and
    /// the time it takes.
    pub thaw: Option<String>,
    pub ok: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copies {
    pub backup: String,
    pub destinations: usize,
    pub sites: Vec<&'static str>,
    pub ok: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub region: String,
    pub instances: (usize, usize),
    pub replicas: (i64, i64),
    /// Whether DNS SECONDARY points here; `None` when the region is not the secondary.
    pub dns_secondary: Option<bool>,
    pub health_check: Option<bool>,
    /// Its database replicas, each against its budget (with a refresh only).
    pub replication: Vec<super::data::ReplicaCheck>,
    pub ready: bool,
    /// Not ready now, but every missing piece is changed by this plan (and not skipped).
    pub ready_after_plan: bool,
}

#[allow(clippy::too_many_arguments, reason = "one call site, in `plan::plan`: the pieces of one plan")]
pub fn assess(
    config: &Config,
    desired: &[Resource],
    prior: &Prior,
    live: Option<&Snapshot>,
    changes: &[Change],
    graph: &[Node],
    estimates: &Estimates,
    now: Option<i64>,
) -> Result<Posture, graph::CycleError> {
    let rpo = config.objectives.rpo;
    let rpo_checks = config
        .backups
        .iter()
        .map(|b| {
            let gap = Duration::from_secs(b.schedule.max_gap_minutes().unwrap_or(0) * 60);
            let destinations: Vec<(String, Option<Duration>)> = b
                .destinations
                .iter()
                .map(|d| {
                    let at = address::bucket(&b.name, &d.name);
                    // Where recovery points were discovered, the newest usable one counts,
                    // not the newest object: a half-written or corrupt backup restores nothing.
                    let age = match live.and_then(|l| l.points.get(&at)).filter(|c| c.unreachable.is_none()) {
                        Some(c) => c
                            .newest_usable()
                            .and_then(|p| Some((now? - p.time?).max(0) as u64))
                            .map(Duration::from_secs),
                        None => live.and_then(|l| l.newest_backup_age.get(&at)).map(|s| Duration::from_secs(*s)),
                    };
                    (d.name.clone(), age)
                })
                .collect();
            let unreachable: Vec<String> = b
                .destinations
                .iter()
                .filter(|d| {
                    live.is_some_and(|l| l.unreachable_objects.contains_key(&address::bucket(&b.name, &d.name)))
                })
                .map(|d| d.name.clone())
                .collect();
            // Listed and empty, every one of them: no backup has run yet. A NAS that is not
            // listed says nothing either way.
            let is_nas = |d: &crate::config::Destination| matches!(d.target, crate::config::Target::Nas { .. });
            let catalog =
                |d: &crate::config::Destination| live.and_then(|l| l.points.get(&address::bucket(&b.name, &d.name)));
            let not_listed: Vec<String> = b
                .destinations
                .iter()
                .filter(|d| live.is_some() && is_nas(d) && catalog(d).is_none())
                .map(|d| d.name.clone())
                .collect();
            let listed: Vec<Option<&crate::recovery::Catalog>> =
                b.destinations.iter().filter(|d| !is_nas(d) || catalog(d).is_some()).map(catalog).collect();
            let no_backup_yet = !listed.is_empty()
                && listed.iter().all(|c| c.is_some_and(|c| c.unreachable.is_none() && c.newest_usable().is_none()));
            let unmeasured = !no_backup_yet && destinations.iter().all(|(_, age)| age.is_none());
            let ok = !no_backup_yet
                && rpo.is_none_or(|rpo| gap <= rpo && destinations.iter().all(|(_, age)| age.is_none_or(|a| a <= rpo)));
            let thaws = b
                .destinations
                .iter()
                .filter_map(|d| {
                    let c = live?.points.get(&address::bucket(&b.name, &d.name))?;
                    let thaw = c.newest_usable().and_then(|p| c.thaw_text(p))?;
                    Some((d.name.clone(), thaw))
                })
                .collect();
            RpoCheck {
                backup: b.name.clone(),
                rpo,
                schedule_gap: gap,
                destinations,
                unreachable,
                thaws,
                no_backup_yet,
                unmeasured,
                not_listed,
                ok,
            }
        })
        .collect();

    let copies = config
        .backups
        .iter()
        .map(|b| {
            let sites: BTreeSet<&'static str> = b.destinations.iter().map(|d| d.target.site()).collect();
            Copies {
                backup: b.name.clone(),
                destinations: b.destinations.len(),
                ok: b.destinations.len() >= 2 && sites.len() >= 2,
                sites: sites.into_iter().collect(),
            }
        })
        .collect();

    let rto = rto_check(config, desired, changes, graph, estimates, &prior.drills, live, now)?;
    let drills = match config.objectives.drill_every {
        None => Vec::new(),
        Some(every) => config
            .regions
            .iter()
            .filter(|r| r.role != Role::Active)
            .map(|r| {
                let last = crate::drill::last_passed(&prior.drills, &r.name).map(|d| d.started.clone());
                let age = |t: &str| crate::recovery::seconds_since(t, now?);
                let ok = last.as_deref().and_then(age).is_some_and(|a| a <= every.as_secs() as i64);
                DrillCheck { region: r.name.clone(), last, every, ok }
            })
            .collect(),
    };

    let view: BTreeMap<&str, &Observed> = match live {
        Some(l) => l.objects.iter().map(|(a, o)| (a.as_str(), o)).collect(),
        None => prior.objects.iter().map(|(a, o)| (a.as_str(), o)).collect(),
    };
    let secondary = desired::secondary_region(config).map(|r| r.name.clone());
    let replicas_now = live.map(|l| super::data::replica_checks(config, l)).unwrap_or_default();
    let desired_by: BTreeMap<&str, &Resource> = desired.iter().map(|d| (d.address.as_str(), d)).collect();
    let changed: BTreeSet<&str> = changes.iter().map(|c| c.address.as_str()).collect();
    let skipped: BTreeSet<&str> = graph.iter().filter(|n| n.skipped.is_some()).map(|n| n.id.as_str()).collect();
    let standby = config
        .regions
        .iter()
        .filter(|r| r.role == Role::Standby)
        .map(|r| {
            let want: Vec<&Resource> =
                desired.iter().filter(|d| d.region.as_deref() == Some(r.name.as_str())).collect();
            let want_instances = want.iter().filter(|d| d.kind == Kind::Instance).count();
            let have_instances = want
                .iter()
                .filter(|d| d.kind == Kind::Instance)
                .filter(|d| view.get(d.address.as_str()).is_some_and(|o| o.resource.str("state") == Some("running")))
                .count();
            let replicas = |from: &dyn Fn(&Resource) -> Option<i64>| -> i64 {
                want.iter().filter(|d| d.kind == Kind::Workload).filter_map(|d| from(d)).sum()
            };
            let want_replicas = replicas(&|d| d.int("replicas"));
            let have_replicas = replicas(&|d| view.get(d.address.as_str()).and_then(|o| o.resource.int("replicas")));
            let is_secondary = secondary.as_deref() == Some(r.name.as_str())
                && config.failover.as_ref().is_some_and(|f| f.dns.is_some());
            let dns_secondary = is_secondary.then(|| {
                view.values().any(|o| {
                    o.resource.kind == Kind::DnsRecord
                        && o.resource.str("failover") == Some("SECONDARY")
                        && o.resource.str("serves") == Some(r.name.as_str())
                })
            });
            let health_check = is_secondary.then(|| view.contains_key(address::health_check(&r.name).as_str()));
            let replication: Vec<super::data::ReplicaCheck> =
                replicas_now.iter().filter(|c| c.region == r.name).cloned().collect();
            let lagging = replication.iter().any(|c| !c.ok());
            // A replica missing or following the wrong writer is what a change re-creates;
            // lag is not.
            let fixes = |c: &super::data::ReplicaCheck| {
                let a = address::database(&c.region, &c.database);
                c.lag.seconds.is_some() && changed.contains(a.as_str()) && !skipped.contains(a.as_str())
            };
            let lag_stays = replication
                .iter()
                .any(|c| !c.ok() && !fixes(c) && !c.problem.as_deref().is_some_and(|p| p.starts_with("replica ")));
            let ready = have_instances >= want_instances
                && !lagging
                && have_replicas >= want_replicas
                && dns_secondary != Some(false)
                && health_check != Some(false);
            // What this region's readiness rests on; each must be converged by a change that runs.
            let runs = |addr: &str| changed.contains(addr) && !skipped.contains(addr);
            let converged =
                |addr: &str| view.get(addr).is_some_and(|o| desired_match(o, desired_by.get(addr).copied()));
            let mut pieces: Vec<String> =
                want.iter().filter(|d| super::step::capacity(d).is_some()).map(|d| d.address.clone()).collect();
            if is_secondary {
                pieces.push(address::health_check(&r.name));
                pieces.extend(
                    desired
                        .iter()
                        .filter(|d| d.kind == Kind::DnsRecord && d.str("failover") == Some("SECONDARY"))
                        .map(|d| d.address.clone()),
                );
            }
            // A replica lagging past its budget is not something this plan changes.
            let ready_after_plan = !ready && !lag_stays && pieces.iter().all(|p| converged(p) || runs(p));
            Readiness {
                region: r.name.clone(),
                instances: (have_instances, want_instances),
                replicas: (have_replicas, want_replicas),
                dns_secondary,
                health_check,
                replication,
                ready,
                ready_after_plan,
            }
        })
        .collect();
    Ok(Posture { rpo: rpo_checks, rto, copies, standby, drills })
}

fn desired_match(o: &Observed, d: Option<&Resource>) -> bool {
    d.is_some_and(|d| d.attrs.iter().all(|(k, v)| o.resource.attrs.get(k) == Some(v)))
}

#[allow(clippy::too_many_arguments, reason = "one call site, in `assess`: the pieces of one plan")]
fn rto_check(
    config: &Config,
    desired: &[Resource],
    changes: &[Change],
    graph: &[Node],
    estimates: &Estimates,
    drills: &[crate::drill::Drill],
    live: Option<&Snapshot>,
    now: Option<i64>,
) -> Result<Option<RtoCheck>, graph::CycleError> {
    let rto = config.objectives.rto;
    // With automatic failover, recovery starts when the watcher has seen `threshold` failed
    // rounds, after Route 53's own checkers have marked the region failed.
    let detection = config.failover.as_ref().filter(|f| f.mode == crate::config::FailoverMode::Automatic).map(|f| {
        let every = f.automatic.as_ref().map_or(30, |a| a.interval.as_secs());
        u64::from(f.health_check.threshold) * (every + f.health_check.interval.as_secs())
    });
    let with_detection = |(estimate, mut path): (u64, Vec<String>)| match detection {
        Some(d) => {
            path.insert(0, format!("detection ({d}s)"));
            (estimate + d, path)
        }
        None => (estimate, path),
    };
    // A region that passed a drill is estimated by what the drill measured, step by step.
    let interval = config.failover.as_ref().map_or(0, |f| f.health_check.interval.as_secs());
    let measured = |region: &str| -> (Estimates, Option<String>) {
        let Some(d) = crate::drill::last_passed(drills, region) else { return (estimates.clone(), None) };
        let secs = |name: &str, default: u64| d.step(name).map_or(default, |s| s.seconds.ceil() as u64);
        let e = Estimates {
            instance: secs(crate::drill::CAPACITY, estimates.instance),
            restore: secs(crate::drill::RESTORE, estimates.restore),
            workload: secs(crate::drill::WORKLOADS, estimates.workload),
            gate: secs(crate::drill::GATE, interval + estimates.gate).saturating_sub(interval),
            ..estimates.clone()
        };
        (e, Some(format!("{} of {}", d.id, d.started.get(..10).unwrap_or(&d.started))))
    };
    let moves_primary = changes.iter().find(|c| {
        c.kind == Kind::DnsRecord
            && c.action != Action::Delete
            && c.action != Action::Adopt
            && c.after.as_ref().and_then(|a| a.get("failover")) == Some(&Value::Str("PRIMARY".into()))
    });
    if let Some(c) = moves_primary {
        let to = c.after.as_ref().and_then(|a| a.get("serves")).map(|v| match v {
            Value::Str(s) => s.clone(),
            other => other.to_string(),
        });
        let to = to.unwrap_or_default();
        let (estimates, measured_by) = measured(&to);
        let (estimate, critical_path) = with_detection(critical_path(changes, graph, config, &estimates, &c.address));
        let estimate = Duration::from_secs(estimate);
        return Ok(Some(RtoCheck {
            to_region: to,
            estimate,
            rto,
            thaw: super::restore::thaw_note(&critical_path, changes),
            critical_path,
            measured_by,
            hypothetical: false,
            ok: rto.is_none_or(|r| estimate <= r),
        }));
    }
    // Nothing fails over in this plan: estimate failing over to the next region in line,
    // from the topology this plan converges to.
    let Some(active) = config.active_region() else { return Ok(None) };
    // The region in line is the warm standby DNS SECONDARY points at; failing that, the
    // first other region in `failover.order`, then in the configuration.
    let order = config.failover.iter().flat_map(|f| f.order.iter()).filter_map(|n| config.region(n));
    let Some(next) = desired::secondary_region(config)
        .or_else(|| order.chain(config.regions.iter()).find(|r| r.name != active.name && r.role != Role::Active))
    else {
        return Ok(None);
    };
    let mut promoted = config.clone();
    for r in &mut promoted.regions {
        if r.name == next.name {
            r.role = Role::Active;
        } else if r.name == active.name {
            r.role = Role::Standby;
        }
    }
    let converged = Prior {
        objects: desired
            .iter()
            .map(|r| (r.address.clone(), Observed { resource: r.clone(), id: String::new() }))
            .collect(),
        ..Prior::default()
    };
    let mut hypothetical = diff::diff(&desired::desired(&promoted), &converged, None);
    // Its restores too, when promoting it from its role restores a backup: the point they
    // would read now, and its thaw.
    hypothetical.changes.extend(super::restore::hypothetical(config, &next.name, next.role, live, now));
    // And the team's hooks, at their points of that failover.
    let roles_now =
        Prior { roles: config.regions.iter().map(|r| (r.name.clone(), r.role)).collect(), ..Prior::default() };
    let options = super::Options { now, ..super::Options::default() };
    hypothetical.changes.extend(super::hooks::plan(&promoted, &roles_now, &options).changes);
    let hgraph = graph::build(&hypothetical.changes, graph::Context::serving(Some(next.name.as_str())))?;
    let primary = hypothetical.changes.iter().find(|c| {
        c.kind == Kind::DnsRecord
            && c.after.as_ref().and_then(|a| a.get("failover")) == Some(&Value::Str("PRIMARY".into()))
    });
    let Some(primary) = primary else { return Ok(None) };
    let (estimates, measured_by) = measured(&next.name);
    let (estimate, critical_path) =
        with_detection(critical_path(&hypothetical.changes, &hgraph, &promoted, &estimates, &primary.address));
    let estimate = Duration::from_secs(estimate);
    Ok(Some(RtoCheck {
        to_region: next.name.clone(),
        estimate,
        rto,
        thaw: super::restore::thaw_note(&critical_path, &hypothetical.changes),
        critical_path,
        measured_by,
        hypothetical: true,
        ok: rto.is_none_or(|r| estimate <= r),
    }))
}

/// The longest chain of actions ending with `until` (traffic has moved: recovery is done
/// then, whatever cleanup follows), by estimated duration, with its node ids.
fn critical_path(
    changes: &[Change],
    graph: &[Node],
    config: &Config,
    e: &Estimates,
    until: &str,
) -> (u64, Vec<String>) {
    let hc = config.failover.as_ref().map(|f| &f.health_check);
    let weight = |n: &Node| -> u64 {
        match &n.step {
            // The gate passes on the checkers' first round after the region is ready: at
            // most one interval.
            Step::HealthGate { .. } => hc.map_or(0, |h| h.interval.as_secs()) + e.gate,
            Step::Barrier { .. } => 0,
            Step::Change(i) => super::step::estimate(&changes[*i], e),
        }
    };
    // Finish time and predecessor on the longest chain, by position (dependencies come first).
    let mut finish: Vec<(u64, Option<usize>)> = Vec::with_capacity(graph.len());
    for n in graph {
        let best = n.depends_on.iter().map(|d| (finish[*d].0, *d)).max_by_key(|(t, d)| (*t, std::cmp::Reverse(*d)));
        let start = best.map_or(0, |(t, _)| t);
        finish.push((start + weight(n), best.map(|(_, d)| d)));
    }
    let Some(end) = graph.iter().position(|n| n.id == until) else { return (0, Vec::new()) };
    let total = finish[end].0;
    let mut path = vec![graph[end].id.clone()];
    let mut at = end;
    while let Some(prev) = finish[at].1 {
        path.push(graph[prev].id.clone());
        at = prev;
    }
    path.reverse();
    (total, path)
}
