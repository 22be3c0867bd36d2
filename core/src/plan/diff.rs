//! The three-way diff: configuration (desired) vs prior state vs live snapshot.
//!
//! Changes are computed against live, the truth; drift is state vs live, what changed
//! outside drplan since it last applied. Tagged objects unknown to state are adopted.

use std::collections::{BTreeMap, BTreeSet};

use super::resource::{Attrs, Kind, Resource, Value, natural_cmp};
use super::step::{self, Planned};
use super::{Observed, Prior, Snapshot};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Create,
    Update,
    /// Create the new object, then delete the old one.
    Replace,
    Delete,
    /// Already there, carrying drplan's tags, unknown to state: recorded, not recreated.
    Adopt,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
            Action::Adopt => "adopt",
        }
    }

    /// The human symbol, as Terraform users know them.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "±",
            Action::Delete => "-",
            Action::Adopt => "=",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub address: String,
    pub kind: Kind,
    pub region: Option<String>,
    pub action: Action,
    pub before: Option<Attrs>,
    pub after: Option<Attrs>,
    /// The cloud id of the existing object, for updates, deletes and adoption.
    pub id: Option<String>,
    /// Attributes whose change forces the replacement.
    pub replace_paths: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriftKind {
    /// Attributes differ from what drplan last recorded.
    Changed,
    /// Recorded in state, gone from the cloud.
    Deleted,
    /// Carries drplan's tags but state does not know it.
    Untracked,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub address: String,
    pub kind: Kind,
    pub region: Option<String>,
    /// The cloud's id of the object: the live one, or the recorded one when it is gone.
    pub id: String,
    pub drift: DriftKind,
    pub before: Option<Attrs>,
    pub after: Option<Attrs>,
}

#[derive(Debug, Default)]
pub struct Diff {
    pub changes: Vec<Change>,
    pub drift: Vec<Drift>,
    /// State entries with nothing live and nothing desired: dropped from state on apply.
    pub forget: Vec<String>,
}

/// What live looks like for diffing: the snapshot, except that unreachable regions and a
/// run without refresh fall back on what state recorded.
/// Whether `o` is diffed against live state (its kind's step is not planned once).
fn diffed(o: &Observed) -> bool {
    o.resource.kind.spec().planned == Planned::Diffed
}

fn effective_live<'a>(prior: &'a Prior, live: Option<&'a Snapshot>) -> BTreeMap<&'a str, &'a Observed> {
    let Some(live) = live else {
        return prior.objects.iter().filter(|(_, o)| diffed(o)).map(|(a, o)| (a.as_str(), o)).collect();
    };
    let unreachable = |o: &Observed| {
        o.resource.region.as_ref().is_some_and(|r| live.unreachable.contains_key(r))
            || live.unreachable_objects.contains_key(&o.resource.address)
    };
    let mut out: BTreeMap<&str, &Observed> = live
        .objects
        .iter()
        // A terminated instance is gone for every purpose.
        .filter(|(_, o)| !step::is_gone(&o.resource))
        // Steps planned once (a promotion's restore, `plan::restore`) are not diffed.
        .filter(|(_, o)| diffed(o))
        .filter(|(_, o)| !unreachable(o))
        .map(|(a, o)| (a.as_str(), o))
        .collect();
    for (a, o) in &prior.objects {
        if unreachable(o) && diffed(o) {
            out.insert(a, o);
        }
    }
    out
}

pub fn diff(desired: &[Resource], prior: &Prior, live: Option<&Snapshot>) -> Diff {
    let live_view = effective_live(prior, live);
    let desired_by: BTreeMap<&str, &Resource> = desired.iter().map(|r| (r.address.as_str(), r)).collect();
    // The three inputs are sorted by address: walk them together instead of looking every
    // address up in each (a large topology has hundreds of thousands).
    let mut ds = desired_by.iter().map(|(a, r)| (*a, *r)).peekable();
    let mut ss = prior.objects.iter().filter(|(_, o)| diffed(o)).map(|(a, o)| (a.as_str(), o)).peekable();
    let mut ls = live_view.iter().map(|(a, o)| (*a, *o)).peekable();

    let mut out = Diff::default();
    loop {
        let next = [ds.peek().map(|x| x.0), ss.peek().map(|x| x.0), ls.peek().map(|x| x.0)].into_iter().flatten().min();
        let Some(address) = next else { break };
        let d = ds.next_if(|x| x.0 == address).map(|x| x.1);
        let s = ss.next_if(|x| x.0 == address).map(|x| x.1);
        let l = ls.next_if(|x| x.0 == address).map(|x| x.1);

        if live.is_some() {
            match (s, l) {
                (Some(s), Some(l)) if changed(&s.resource.attrs, &l.resource.attrs) => out.drift.push(Drift {
                    address: address.to_string(),
                    kind: s.resource.kind,
                    region: l.resource.region.clone(),
                    id: l.id.clone(),
                    drift: DriftKind::Changed,
                    before: Some(s.resource.attrs.clone()),
                    after: Some(l.resource.attrs.clone()),
                }),
                (Some(s), None) => out.drift.push(Drift {
                    address: address.to_string(),
                    kind: s.resource.kind,
                    region: s.resource.region.clone(),
                    id: s.id.clone(),
                    drift: DriftKind::Deleted,
                    before: Some(s.resource.attrs.clone()),
                    after: None,
                }),
                // A Deployment is found by name, not by drplan's tags: meeting the pipeline's
                // Deployment for the first time is normal, not an untracked object.
                // A database member is found by its declared name, like a Deployment: meeting
                // it for the first time is adopting it, not drift.
                (None, Some(l)) if l.resource.kind.spec().owned && !l.resource.kind.spec().kept => {
                    out.drift.push(Drift {
                        address: address.to_string(),
                        kind: l.resource.kind,
                        region: l.resource.region.clone(),
                        id: l.id.clone(),
                        drift: DriftKind::Untracked,
                        before: None,
                        after: Some(l.resource.attrs.clone()),
                    })
                }
                _ => {}
            }
        }

        let change = match (d, l) {
            (Some(d), None) => Some(Change {
                address: address.to_string(),
                kind: d.kind,
                region: d.region.clone(),
                action: Action::Create,
                before: None,
                after: Some(d.attrs.clone()),
                id: None,
                replace_paths: Vec::new(),
            }),
            (Some(d), Some(l)) => {
                let differing: Vec<&String> =
                    d.attrs.iter().filter(|(k, v)| l.resource.attrs.get(*k) != Some(*v)).map(|(k, _)| k).collect();
                let replace_paths: Vec<String> =
                    differing.iter().filter(|k| d.kind.forces_replacement(k)).map(|k| k.to_string()).collect();
                let action = if !replace_paths.is_empty() {
                    Some(Action::Replace)
                } else if !differing.is_empty() {
                    Some(Action::Update)
                } else if s.is_none() {
                    Some(Action::Adopt)
                } else {
                    None
                };
                action.map(|action| Change {
                    address: address.to_string(),
                    kind: d.kind,
                    region: d.region.clone(),
                    action,
                    before: Some(l.resource.attrs.clone()),
                    after: Some(d.attrs.clone()),
                    id: Some(l.id.clone()),
                    replace_paths,
                })
            }
            // drplan scales Deployments it did not author: when one is no longer wanted it
            // stops managing it rather than deleting someone else's object.
            // A database member is never deleted: one no longer declared is left as it is.
            (None, Some(l)) if !l.resource.kind.spec().owned || l.resource.kind.spec().kept => {
                out.forget.push(address.to_string());
                None
            }
            (None, Some(l)) => Some(Change {
                address: address.to_string(),
                kind: l.resource.kind,
                region: l.resource.region.clone(),
                action: Action::Delete,
                before: Some(l.resource.attrs.clone()),
                after: None,
                id: Some(l.id.clone()),
                replace_paths: Vec::new(),
            }),
            (None, None) => {
                out.forget.push(address.to_string());
                None
            }
        };
        out.changes.extend(change);
    }
    // Walked in string order; listed as people count (`nodes[2]` before `nodes[10]`).
    out.changes.sort_by(|a, b| natural_cmp(&a.address, &b.address));
    out.drift.sort_by(|a, b| natural_cmp(&a.address, &b.address));
    out.forget.sort_by(|a, b| natural_cmp(a, b));
    out
}

/// Whether `recorded` differs from `observed` in any attribute state recorded.
fn changed(recorded: &Attrs, observed: &Attrs) -> bool {
    recorded.iter().any(|(k, v)| observed.get(k) != Some(v))
}

/// Attribute names whose value differs, with before and after (either may be absent).
pub fn attr_diff<'a>(
    before: Option<&'a Attrs>,
    after: Option<&'a Attrs>,
) -> Vec<(&'a str, Option<&'a Value>, Option<&'a Value>)> {
    let keys: BTreeSet<&str> = before.iter().chain(after.iter()).flat_map(|a| a.keys().map(String::as_str)).collect();
    keys.into_iter()
        .map(|k| (k, before.and_then(|b| b.get(k)), after.and_then(|a| a.get(k))))
        .filter(|(_, b, a)| b != a)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::resource::attrs;

    fn workload(replicas: i64) -> Resource {
        Resource {
            address: "region.r.workload.web".into(),
            kind: Kind::Workload,
            region: Some("r".into()),
            attrs: attrs([("deployment", "web".into()), ("replicas", replicas.into())]),
        }
    }

    #[test]
    fn a_pipelines_deployment_met_for_the_first_time_is_not_drift() {
        let live = Snapshot {
            objects: [("region.r.workload.web".to_string(), Observed { resource: workload(1), id: "d".into() })].into(),
            ..Snapshot::default()
        };
        let d = diff(&[workload(3)], &Prior::default(), Some(&live));
        assert!(d.drift.is_empty(), "{:?}", d.drift);
        assert_eq!(d.changes.len(), 1);
        assert_eq!(d.changes[0].action, Action::Update);
    }

    #[test]
    fn a_tagged_instance_unknown_to_state_is_untracked_drift_and_adopted() {
        let instance = Resource {
            address: "region.r.compute.p[0]".into(),
            kind: Kind::Instance,
            region: Some("r".into()),
            attrs: attrs([("image", "a".into())]),
        };
        let live = Snapshot {
            objects: [(instance.address.clone(), Observed { resource: instance.clone(), id: "i-1".into() })].into(),
            ..Snapshot::default()
        };
        let d = diff(std::slice::from_ref(&instance), &Prior::default(), Some(&live));
        assert_eq!(d.drift.len(), 1);
        assert_eq!(d.drift[0].drift, DriftKind::Untracked);
        assert_eq!(d.changes[0].action, Action::Adopt);
    }
}
