//! What an open incident adds to a plan: the region's evidence taken first (a snapshot of
//! every volume, copied to another region), then its isolation (instances quarantined, Nodes
//! cordoned, a deny-all NetworkPolicy), its backup schedule suspended and retention held
//! everywhere; and what it keeps out of a plan: nothing that would destroy evidence in the
//! region runs (`crate::incident::destroys_evidence`). Once the incident is closed the
//! isolation is lifted (its steps deleted) and the evidence forgotten, never deleted.

use std::collections::BTreeSet;

use super::diff::{Action, Change};
use super::resource::{Attrs, Kind, Resource, Value, address, attrs};
use super::step::{self, Planned};
use super::{Prior, Snapshot};
use crate::config::{Cloud, Config};
use crate::diagnostics::{Code, Diagnostic};
use crate::incident::{self, Incident};

/// What open and closed incidents add to a plan.
#[derive(Debug, Default)]
pub struct IncidentPlan {
    pub changes: Vec<Change>,
    /// Evidence of closed incidents: dropped from state, left in the cloud.
    pub forget: Vec<String>,
    pub findings: Vec<Diagnostic>,
}

/// The desired objects an open incident changes: the compromised region's backup schedule
/// suspended, and every backup's retention held (its CronJobs told with
/// `DRPLAN_RETENTION_HOLD=1`, its buckets' expiry rule paused: `expiry_paused`) so that clean
/// points cannot age out while the incident is investigated.
pub fn adjust_desired(desired: &mut [Resource], config: &Config, incidents: &[Incident]) {
    let compromised: BTreeSet<&str> = incident::open(incidents)
        .filter(|i| config.region(&i.region).is_some_and(|r| r.kubernetes.is_some()))
        .map(|i| i.region.as_str())
        .collect();
    let hold = !compromised.is_empty();
    for r in desired.iter_mut() {
        match r.kind {
            Kind::BackupJob => {
                if hold {
                    r.attrs.insert("retention_hold".into(), true.into());
                }
                if r.region.as_deref().is_some_and(|g| compromised.contains(g)) {
                    r.attrs.insert("suspend".into(), true.into());
                }
            }
            Kind::Bucket if hold => {
                r.attrs.insert("expiry_paused".into(), true.into());
            }
            _ => {}
        }
    }
}

/// The isolation steps of open incidents not yet done, and the lifting of closed ones.
pub fn plan(config: &Config, prior: &Prior, live: Option<&Snapshot>) -> IncidentPlan {
    let mut out = IncidentPlan::default();
    let serving = config.active_region().map(|r| r.name.as_str());
    for i in incident::open(&prior.incidents) {
        let Some(region) = config.region(&i.region) else {
            out.findings.push(
                Diagnostic::warning(
                    Code::Incident,
                    format!("incident {} names region {}, which the configuration no longer declares", i.id, i.region),
                )
                .help(format!(
                    "nothing is isolated; close it with `drplan incident close {}` once it is dealt with",
                    i.id
                )),
            );
            continue;
        };
        if serving == Some(region.name.as_str()) && !i.isolate_serving {
            out.findings.push(
                Diagnostic::warning(Code::Incident, format!("incident {} is open on {}, which still serves: it is not isolated", i.id, i.region))
                    .help("isolating the only region that serves would cut every user off: fail over away from it (`drplan failover --to REGION`), or isolate it anyway with `drplan incident declare --isolate-serving`"),
            );
            continue;
        }
        let done = |a: &str| prior.objects.contains_key(a);
        let mut push = |kind: Kind, at: String, a: Attrs| {
            if !done(&at) {
                out.changes.push(Change {
                    address: at,
                    kind,
                    region: Some(region.name.clone()),
                    action: Action::Create,
                    before: None,
                    after: Some(a),
                    id: None,
                    replace_paths: Vec::new(),
                });
            }
        };
        match region.cloud {
            Cloud::Aws => {
                // Every instance the region runs now: the live ones, or state's when the
                // region cannot be read (then these steps wait for it, owed like a fence).
                let reachable = live.is_some_and(|l| !l.unreachable.contains_key(&region.name));
                let source = match (live, reachable) {
                    (Some(l), true) => &l.objects,
                    _ => &prior.objects,
                };
                let copy_to = config.active_region().filter(|r| r.cloud == Cloud::Aws && r.name != region.name).or_else(|| {
                    config.regions.iter().find(|r| r.cloud == Cloud::Aws && r.name != region.name)
                });
                if copy_to.is_none() {
                    out.findings.push(
                        Diagnostic::warning(Code::Incident, format!("the evidence of {} is not copied to another region", i.region))
                            .help("no other AWS region is declared: the snapshots stay in the compromised region, where its attacker may delete them; copy them to another account by hand"),
                    );
                }
                let instances = source.values().filter(|o| {
                    o.resource.kind == Kind::Instance
                        && o.resource.region.as_deref() == Some(region.name.as_str())
                        && !step::is_gone(&o.resource)
                });
                for o in instances {
                    let common = [
                        ("cloud", Value::from("aws")),
                        ("incident", i.id.as_str().into()),
                        ("instance_id", o.id.as_str().into()),
                    ];
                    let mut evidence = attrs(common.clone());
                    evidence.insert("copy_region".into(), copy_to.map(|r| r.name.as_str()).unwrap_or_default().into());
                    push(Kind::Evidence, address::evidence(&o.resource.address), evidence);
                    let mut quarantine = attrs(common);
                    quarantine.insert("group".into(), i.quarantine_group().into());
                    push(Kind::Quarantine, address::quarantine(&o.resource.address), quarantine);
                }
            }
            Cloud::Gcp => out.findings.push(
                Diagnostic::warning(Code::Incident, format!("GCP evidence is not taken: the instances of {} are neither snapshotted nor quarantined", i.region))
                    .help("drplan takes EBS snapshots and quarantines EC2 instances; for Compute Engine take disk snapshots and apply a deny-all firewall by hand (its cluster is still cordoned and fenced by a NetworkPolicy)"),
            ),
        }
        if let Some(k8s) = &region.kubernetes {
            push(
                Kind::Cordon,
                address::cordon(&region.name),
                attrs([("context", k8s.context.as_str().into()), ("incident", i.id.as_str().into())]),
            );
            push(
                Kind::DenyAll,
                address::deny_all(&region.name),
                attrs([
                    ("context", k8s.context.as_str().into()),
                    ("namespace", k8s.namespace.as_str().into()),
                    ("name", i.network_policy().into()),
                    ("incident", i.id.as_str().into()),
                ]),
            );
        }
    }
    // A closed incident's isolation is lifted (`incident close` allowed it: the instances
    // replaced, or `--keep-instances`); its evidence is forgotten and left as it is.
    for o in prior.objects.values().filter(|o| o.resource.kind.spec().planned == Planned::Incident) {
        let of = o.resource.str("incident").unwrap_or_default();
        if incident::open(&prior.incidents).any(|i| i.id == of) {
            continue;
        }
        if o.resource.kind.spec().kept {
            out.forget.push(o.resource.address.clone());
            continue;
        }
        out.changes.push(Change {
            address: o.resource.address.clone(),
            kind: o.resource.kind,
            region: o.resource.region.clone(),
            action: Action::Delete,
            before: Some(o.resource.attrs.clone()),
            after: None,
            id: Some(o.id.clone()),
            replace_paths: Vec::new(),
        });
    }
    out
}

/// Takes out of `changes` whatever would destroy evidence in a region under an open
/// incident, with a warning for each: a failover away from it leaves its capacity as it is.
pub fn hold(changes: &mut Vec<Change>, incidents: &[Incident]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    changes.retain(|c| match incident::destroys_evidence(c, incidents) {
        None => true,
        Some((i, why)) => {
            out.push(
                Diagnostic::warning(Code::EvidenceKept, format!("{} is not carried out: it {why} in {}, under incident {}", c.address, i.region, i.id))
                    .help(format!("the region's machines, pods and data are evidence while the incident is open; they stay as they are until `drplan incident close {}`", i.id)),
            );
            false
        }
    });
    out
}
