//! Incidents: a region declared compromised (a cyber attack) from a given time. While one is
//! open, plans isolate the region and keep its evidence, backups written since are suspect,
//! restores use the newest point from before, and retention is held so clean points cannot
//! age out. The record stays in state once closed, for the audit trail.
//!
//! Pure: the record, its identity, the rules that judge a change or a point against it.
//! Declaring and closing are the engine's locked state edits; isolating is the plan's
//! (`plan::incident`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::plan::diff::{Action, Change};
use crate::plan::resource::{Kind, Value};
use crate::plan::step::{self, DataStep, Direction, Layer, Phase};

/// One incident, as state records it. A field added is a state format change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Incident {
    /// `inc-1`, `inc-2`, …: the next number in this state.
    pub id: String,
    /// The region compromised.
    pub region: String,
    /// From when the region is not trusted (RFC 3339): points written since are suspect.
    pub since: String,
    pub reason: String,
    pub declared_by: String,
    /// When it was declared (RFC 3339).
    pub declared_at: String,
    /// Isolate the region even while it serves (`--isolate-serving`). Without it, a region
    /// that serves is isolated only by a plan that also fails over away from it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub isolate_serving: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<String>,
    /// Closed with `--keep-instances`: the isolation is lifted from the same instances.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_instances: bool,
    /// The evidence drplan took (snapshot ids, with their copies), listed at the close and
    /// never deleted by drplan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
}

/// The version of `drplan incident list --json`.
pub const FORMAT_VERSION: &str = "1.0";

/// What `drplan incident list --json` prints: every incident state records, oldest first.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Listing {
    pub format_version: &'static str,
    pub incidents: Vec<Incident>,
}

impl Listing {
    pub fn new(incidents: Vec<Incident>) -> Listing {
        Listing { format_version: FORMAT_VERSION, incidents }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

impl Incident {
    pub fn is_open(&self) -> bool {
        self.closed_at.is_none()
    }

    /// `since` in seconds since the epoch (validated when declared).
    pub fn since_seconds(&self) -> i64 {
        crate::recovery::parse_rfc3339(&self.since).unwrap_or(i64::MIN)
    }

    /// The tag value and name suffix that mark what drplan did for this incident.
    pub fn tag(&self) -> String {
        format!("{}-{}", self.id, self.region)
    }

    /// The name of the quarantine security group drplan creates for it.
    pub fn quarantine_group(&self) -> String {
        format!("drplan-quarantine-{}", self.id)
    }

    /// The name of the deny-all NetworkPolicy drplan puts in the region's namespace.
    pub fn network_policy(&self) -> String {
        format!("drplan-incident-{}", self.id)
    }
}

/// The open incidents.
pub fn open(incidents: &[Incident]) -> impl Iterator<Item = &Incident> {
    incidents.iter().filter(|i| i.is_open())
}

/// The open incident on `region`, if any.
pub fn open_in<'a>(incidents: &'a [Incident], region: &str) -> Option<&'a Incident> {
    open(incidents).find(|i| i.region == region)
}

/// The id the next incident gets.
pub fn next_id(incidents: &[Incident]) -> String {
    let n = incidents.iter().filter_map(|i| i.id.strip_prefix("inc-")?.parse::<u64>().ok()).max().unwrap_or(0);
    format!("inc-{}", n + 1)
}

/// When backups are suspect: from each incident's `since` until it was closed (still open:
/// for ever). A point written by the compromised region stays suspect once the incident is
/// closed; one written after the close is not.
pub fn suspect_windows(incidents: &[Incident]) -> Vec<(i64, i64)> {
    incidents
        .iter()
        .map(|i| {
            let end = i.closed_at.as_deref().and_then(crate::recovery::parse_rfc3339).unwrap_or(i64::MAX);
            (i.since_seconds(), end)
        })
        .collect()
}

/// Parses `--since`: RFC 3339, or a duration before now (`2h`, `90m`), never in the future.
pub fn parse_since(text: &str, now: i64) -> Result<i64, String> {
    let at = match crate::recovery::parse_rfc3339(text) {
        Some(t) => t,
        None => match crate::config::Duration::parse(text) {
            Ok(d) => now - d.as_secs() as i64,
            Err(_) => {
                return Err(format!(
                    "`{text}` is neither a time (RFC 3339, e.g. 2026-12-06T09:30:00Z) nor a duration before now (e.g. 2h)"
                ));
            }
        },
    };
    if at > now {
        return Err(format!(
            "{} is in the future (now is {}): an incident starts at or before its declaration",
            crate::recovery::rfc3339(at),
            crate::recovery::rfc3339(now)
        ));
    }
    Ok(at)
}

/// Why `c` would destroy evidence in a region under an open incident, if it would:
/// terminating, replacing or stopping an instance (memory and instance storage are lost),
/// taking pods away (scaling down, stopping writes), re-protecting a database into the
/// region or restoring over its data. `None` for any other change.
pub fn destroys_evidence<'a>(c: &Change, incidents: &'a [Incident]) -> Option<(&'a Incident, &'static str)> {
    let incident = open_in(incidents, c.region.as_deref()?)?;
    let spec = c.kind.spec();
    let why = match spec.phase {
        Phase::Stack(Layer::Machines) => match c.action {
            Action::Delete => "terminates an instance",
            Action::Replace => "replaces an instance",
            Action::Update if c.after.as_ref().and_then(|a| a.get("state")) != Some(&Value::Str("running".into())) => {
                "stops an instance"
            }
            _ => return None,
        },
        Phase::Stack(Layer::Workloads) if step::direction(c) == Direction::Down => "takes pods away",
        Phase::Stack(Layer::Data) if c.action != Action::Delete => "restores over the data",
        Phase::Data(DataStep::StopWrites) => "scales the writers to zero",
        Phase::Data(DataStep::Member) if matches!(c.action, Action::Replace | Action::Update | Action::Delete) => {
            "re-protects the database"
        }
        _ => return None,
    };
    // What drplan does to isolate the region is not destruction.
    if matches!(c.kind, Kind::Evidence | Kind::Quarantine | Kind::Cordon | Kind::DenyAll) {
        return None;
    }
    Some((incident, why))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(id: &str, region: &str, closed: bool) -> Incident {
        Incident {
            id: id.into(),
            region: region.into(),
            since: "2026-12-06T09:00:00Z".into(),
            reason: "r".into(),
            declared_by: "me".into(),
            declared_at: "2026-12-06T10:00:00Z".into(),
            isolate_serving: false,
            closed_at: closed.then(|| "2026-12-06T11:00:00Z".into()),
            closed_by: None,
            keep_instances: false,
            evidence: Vec::new(),
        }
    }

    #[test]
    fn ids_count_up_and_since_is_never_in_the_future() {
        assert_eq!(next_id(&[]), "inc-1");
        assert_eq!(next_id(&[incident("inc-1", "a", true), incident("inc-7", "b", false)]), "inc-8");
        let now = crate::recovery::parse_rfc3339("2026-12-06T10:00:00Z").unwrap();
        assert_eq!(parse_since("2h", now), Ok(now - 7200));
        assert_eq!(parse_since("2026-12-06T09:30:00Z", now), Ok(now - 1800));
        assert!(parse_since("2026-12-06T10:30:00Z", now).unwrap_err().contains("in the future"));
        assert!(parse_since("yesterday", now).unwrap_err().contains("neither a time"));
    }

    #[test]
    fn only_open_incidents_hold_their_region() {
        let c = Change {
            address: "region.a.compute.n[0]".into(),
            kind: Kind::Instance,
            region: Some("a".into()),
            action: Action::Delete,
            before: None,
            after: None,
            id: None,
            replace_paths: Vec::new(),
        };
        assert!(destroys_evidence(&c, &[incident("inc-1", "a", false)]).is_some());
        assert!(destroys_evidence(&c, &[incident("inc-1", "a", true)]).is_none());
        assert!(destroys_evidence(&c, &[incident("inc-1", "b", false)]).is_none());
    }
}
