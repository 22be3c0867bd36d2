//! Automatic failover's decisions: what one round of `drplan watch` makes of the health of
//! the active region and of the candidates, given what earlier rounds saw. Pure: health,
//! the count of failed rounds, the override and the time come in as values.
//!
//! The rules are the careful systems': many checkers decide health, not one vantage point
//! (Route 53's quorum); the active fails over only after `threshold` consecutive failed
//! rounds and only to a healthy target; after a failover a cool-down and an override keep
//! it from flapping or failing back by itself (ARC's cool-down, Patroni's leader lock).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{Config, FailoverMode, Role};

/// Route 53 calls an endpoint healthy when more than 18% of its checkers report success.
pub const ROUTE53_QUORUM_PERCENT: u32 = 18;

/// A region's health as the round read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// `healthy` of `checkers` report success.
    Checked { healthy: u32, checkers: u32 },
    /// Its health check could not be read (the reason), or it has none.
    Unknown(String),
    /// Ready without a health check, for the reason given: a cold site runs nothing to
    /// check, so it is judged by its cloud answering and a usable recovery point existing.
    Ready(String),
}

impl Health {
    /// Healthy when more than `quorum` percent of the checkers report success.
    pub fn healthy(&self, quorum: u32) -> bool {
        match self {
            Health::Checked { healthy, checkers } => *checkers > 0 && healthy * 100 > quorum * checkers,
            Health::Unknown(_) => false,
            Health::Ready(_) => true,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Health::Checked { healthy, checkers } => format!("{healthy} of {checkers} checkers report success"),
            Health::Unknown(why) | Health::Ready(why) => why.clone(),
        }
    }
}

/// The failover a watcher carried out, recorded in state so that nothing fails back by
/// accident: plans of a configuration that still names `previous` active are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Override {
    pub active: String,
    pub previous: String,
    /// RFC 3339.
    pub at: String,
    pub why: String,
    /// Who acted (`drplan watch on HOST`).
    pub by: String,
}

/// A planned failover under way, recorded in state by the apply that carries it out before
/// anything runs and cleared when it completes: watchers only observe meanwhile (a planned
/// switchover that stops the old active's writers would look to them like a failing region).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Switchover {
    /// The region being promoted.
    pub to: String,
    /// The region active before it.
    pub from: String,
    /// When the apply started (RFC 3339).
    pub started: String,
    pub by: String,
    /// The writers it stops in the old active (Deployment address → replicas before), so a
    /// run killed after the stop resumes or rolls back to the right counts.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub writers: std::collections::BTreeMap<String, i64>,
    /// The failover's id, which its hooks' Job names carry (state 3.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// What persists between rounds (in state, for `watch --once`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Counter {
    /// Consecutive rounds that found the active region unhealthy.
    pub failures: u32,
    /// When the last automatic failover happened (seconds since the epoch).
    pub last_failover: Option<i64>,
    /// When the first of the failed rounds in a row was (seconds since the epoch): where a
    /// failover's downtime starts. Since state 3.4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failure: Option<i64>,
}

/// The version of the events `drplan watch` prints with `--json` (one [`EventLine`] a line)
/// and posts to `--notify`.
pub const EVENT_FORMAT_VERSION: &str = "1.1";

/// What a round of `drplan watch` reports, as an event's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// The active region is healthy.
    Healthy,
    /// The active region failed, fewer rounds in a row than the threshold.
    Suspect,
    /// A watcher failed over already: it observes until a person accepts the override.
    Overridden,
    /// Within the cool-down after an automatic failover.
    CoolingDown,
    /// The active region failed for good and no candidate is healthy.
    NoTarget,
    /// Manual mode: a failover is due, nothing was done.
    WouldFailOver,
    /// An automatic failover is starting (posted before it runs).
    FailingOver,
    /// The failover is done.
    FailedOver,
    /// The failover is done, but the old active cannot be reached: its fence is retried.
    FencePending,
    /// The override's topology converged: the old active is fenced.
    Fenced,
    /// The failover or its convergence failed.
    FailoverFailed,
    /// The failover was refused (policy or safety): nothing was changed.
    FailoverRefused,
    /// Another actor moved first: this watcher did nothing.
    StoodDown,
    /// A planned switchover is under way: the watcher observes only until it completes.
    /// Since 1.1.
    Switchover,
    /// A round could not run (the configuration, the state or the clouds could not be read,
    /// or the state was written by a newer drplan): the watcher is blind until it can. Since
    /// 1.1.
    RoundFailed,
}

impl EventKind {
    pub const ALL: [EventKind; 15] = [
        EventKind::Healthy,
        EventKind::Suspect,
        EventKind::Overridden,
        EventKind::CoolingDown,
        EventKind::NoTarget,
        EventKind::WouldFailOver,
        EventKind::FailingOver,
        EventKind::FailedOver,
        EventKind::FencePending,
        EventKind::Fenced,
        EventKind::FailoverFailed,
        EventKind::FailoverRefused,
        EventKind::StoodDown,
        EventKind::Switchover,
        EventKind::RoundFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Healthy => "healthy",
            EventKind::Suspect => "suspect",
            EventKind::Overridden => "overridden",
            EventKind::CoolingDown => "cooling-down",
            EventKind::NoTarget => "no-target",
            EventKind::WouldFailOver => "would-fail-over",
            EventKind::FailingOver => "failing-over",
            EventKind::FailedOver => "failed-over",
            EventKind::FencePending => "fence-pending",
            EventKind::Fenced => "fenced",
            EventKind::FailoverFailed => "failover-failed",
            EventKind::FailoverRefused => "failover-refused",
            EventKind::StoodDown => "stood-down",
            EventKind::Switchover => "switchover",
            EventKind::RoundFailed => "round-failed",
        }
    }

    /// Whether `--notify` posts it: what a person must hear about, not the routine rounds.
    pub fn notifies(self) -> bool {
        matches!(
            self,
            EventKind::FailingOver
                | EventKind::FailedOver
                | EventKind::FailoverFailed
                | EventKind::FailoverRefused
                | EventKind::FencePending
                | EventKind::Fenced
                | EventKind::WouldFailOver
                | EventKind::RoundFailed
        )
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event of `drplan watch`: a line of its `--json` output, or the body it posts to
/// `--notify` (without `failures`). Versioned by `EVENT_FORMAT_VERSION`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EventLine {
    pub format_version: String,
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// When the round ended (RFC 3339).
    pub at: String,
    /// One line for people and chat.
    pub text: String,
    /// Consecutive rounds that found the active region unhealthy; absent in notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<u32>,
}

impl EventLine {
    /// An event of this version.
    pub fn new(kind: EventKind, at: &str, text: &str, failures: Option<u32>) -> EventLine {
        EventLine {
            format_version: EVENT_FORMAT_VERSION.to_string(),
            kind,
            at: at.to_string(),
            text: text.to_string(),
            failures,
        }
    }

    /// The event as one line of JSON, newline included.
    pub fn to_line(&self) -> String {
        // Plain strings and integers: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default() + "\n"
    }
}

/// The settings a watcher runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub automatic: bool,
    pub threshold: u32,
    pub quorum: u32,
    pub cooldown: u64,
    pub allow_cold: bool,
}

impl Settings {
    pub fn of(config: &Config) -> Settings {
        let f = config.failover.as_ref();
        let a = f.and_then(|f| f.automatic.as_ref());
        Settings {
            automatic: f.is_some_and(|f| f.mode == FailoverMode::Automatic),
            threshold: f.map_or(2, |f| f.health_check.threshold).max(1),
            quorum: a.map_or(ROUTE53_QUORUM_PERCENT, |a| a.quorum),
            cooldown: a.map_or(3_600, |a| a.cooldown.as_secs()),
            allow_cold: a.is_some_and(|a| a.allow_cold),
        }
    }
}

/// One round's reading.
#[derive(Debug, Clone)]
pub struct Round {
    pub active: String,
    pub active_health: Health,
    /// The regions that can take over, in `failover.order` (standbys first, then cold), with
    /// their role and health.
    pub candidates: Vec<(String, Role, Health)>,
}

/// What a round decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The active region is healthy.
    Healthy,
    /// Failed, `failures` rounds in a row, fewer than the threshold.
    Suspect { failures: u32, threshold: u32 },
    /// Failed over already: observe only until the override is resolved.
    Overridden(Override),
    /// Within the cool-down after an automatic failover.
    CoolingDown { until: i64 },
    /// The active failed for good, but no candidate is healthy.
    NoTarget { why: String },
    /// Fail over to `target` (automatic mode) or say so (manual mode: `act` false).
    Failover { target: String, why: String, act: bool },
    /// A planned switchover is under way: observe only until it completes.
    Switchover(Switchover),
}

/// The candidates of a configuration, in the order they take over: standbys in
/// `failover.order`, then standbys not listed, then cold regions likewise.
pub fn candidates(config: &Config) -> Vec<(String, Role)> {
    let order: Vec<&str> = config.failover.iter().flat_map(|f| f.order.iter().map(String::as_str)).collect();
    let mut out: Vec<(String, Role)> = Vec::new();
    for role in [Role::Standby, Role::Cold] {
        let listed = order.iter().filter_map(|n| config.region(n));
        let unlisted = config.regions.iter().filter(|r| !order.contains(&r.name.as_str()));
        for r in listed.chain(unlisted).filter(|r| r.role == role) {
            out.push((r.name.clone(), r.role));
        }
    }
    out
}

/// Decides one round and returns the counter the next round starts from.
pub fn decide(
    settings: &Settings,
    overridden: Option<&Override>,
    counter: &Counter,
    round: &Round,
    now: i64,
) -> (Decision, Counter) {
    let mut next = counter.clone();
    if let Some(o) = overridden {
        return (Decision::Overridden(o.clone()), next);
    }
    if round.active_health.healthy(settings.quorum) {
        next.failures = 0;
        next.first_failure = None;
        return (Decision::Healthy, next);
    }
    next.failures = counter.failures + 1;
    next.first_failure = counter.first_failure.filter(|_| counter.failures > 0).or(Some(now));
    if next.failures < settings.threshold {
        return (Decision::Suspect { failures: next.failures, threshold: settings.threshold }, next);
    }
    if let Some(until) = counter.last_failover.map(|t| t + settings.cooldown as i64).filter(|u| *u > now) {
        return (Decision::CoolingDown { until }, next);
    }
    let healthy = |h: &Health| h.healthy(settings.quorum);
    let target = round.candidates.iter().find(|(_, role, h)| *role == Role::Standby && healthy(h)).or_else(|| {
        round.candidates.iter().find(|(_, role, h)| *role == Role::Cold && settings.allow_cold && healthy(h))
    });
    let why = format!("{} failed {} rounds in a row ({})", round.active, next.failures, round.active_health.describe());
    match target {
        Some((t, _, _)) => (Decision::Failover { target: t.clone(), why, act: settings.automatic }, next),
        None => {
            let seen: Vec<String> =
                round.candidates.iter().map(|(n, r, h)| format!("{r} {n}: {}", h.describe())).collect();
            let cold = if settings.allow_cold { "" } else { " (the cold site is not tried: `allow_cold = false`)" };
            (Decision::NoTarget { why: format!("{why}; no healthy target{cold}: {}", seen.join("; ")) }, next)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings { automatic: true, threshold: 2, quorum: 18, cooldown: 3_600, allow_cold: false }
    }

    fn round(active: bool, standby: bool) -> Round {
        let h = |ok: bool| Health::Checked { healthy: if ok { 8 } else { 0 }, checkers: 8 };
        Round {
            active: "a".into(),
            active_health: h(active),
            candidates: vec![
                ("s1".into(), Role::Standby, h(false)),
                ("s2".into(), Role::Standby, h(standby)),
                ("c".into(), Role::Cold, h(true)),
            ],
        }
    }

    #[test]
    fn a_sustained_failure_fails_over_to_the_first_healthy_standby() {
        let (d, c) = decide(&settings(), None, &Counter::default(), &round(false, true), 0);
        assert_eq!(d, Decision::Suspect { failures: 1, threshold: 2 });
        let (d, c) = decide(&settings(), None, &c, &round(false, true), 30);
        assert!(matches!(d, Decision::Failover { ref target, act: true, .. } if target == "s2"), "{d:?}");
        assert_eq!(c.failures, 2);
    }

    #[test]
    fn flapping_never_fails_over() {
        let mut c = Counter::default();
        for i in 0..20 {
            let (d, next) = decide(&settings(), None, &c, &round(i % 2 == 1, true), i * 30);
            assert!(!matches!(d, Decision::Failover { .. }), "round {i}: {d:?}");
            c = next;
        }
    }

    #[test]
    fn no_healthy_standby_and_no_cold_allowed_is_no_target_and_the_quorum_is_route53s() {
        let (_, c) = decide(&settings(), None, &Counter::default(), &round(false, false), 0);
        let (d, _) = decide(&settings(), None, &c, &round(false, false), 30);
        assert!(matches!(d, Decision::NoTarget { ref why } if why.contains("allow_cold")), "{d:?}");
        let cold = Settings { allow_cold: true, ..settings() };
        let (d, _) = decide(&cold, None, &c, &round(false, false), 30);
        assert!(matches!(d, Decision::Failover { ref target, .. } if target == "c"), "{d:?}");
        // One of eight checkers is 12.5%: not healthy; two are 25%: healthy.
        assert!(!Health::Checked { healthy: 1, checkers: 8 }.healthy(18));
        assert!(Health::Checked { healthy: 2, checkers: 8 }.healthy(18));
    }

    #[test]
    fn after_a_failover_the_override_and_the_cooldown_hold() {
        let o = Override { active: "s2".into(), previous: "a".into(), at: "t".into(), why: "w".into(), by: "b".into() };
        let (d, _) = decide(&settings(), Some(&o), &Counter::default(), &round(false, true), 0);
        assert!(matches!(d, Decision::Overridden(_)));
        let c = Counter { failures: 5, last_failover: Some(100), first_failure: None };
        let (d, _) = decide(&settings(), None, &c, &round(false, true), 200);
        assert_eq!(d, Decision::CoolingDown { until: 3_700 });
        let manual = Settings { automatic: false, ..settings() };
        let (d, _) = decide(&manual, None, &c, &round(false, true), 10_000);
        assert!(matches!(d, Decision::Failover { act: false, .. }), "{d:?}");
    }

    /// Where a watcher's failover starts counting its downtime: the first of the failed
    /// rounds in a row, forgotten once the active is healthy again.
    #[test]
    fn the_first_failed_round_is_kept_until_a_healthy_one() {
        let (_, c) = decide(&settings(), None, &Counter::default(), &round(false, true), 100);
        assert_eq!((c.failures, c.first_failure), (1, Some(100)));
        let (d, c) = decide(&settings(), None, &c, &round(false, true), 130);
        assert!(matches!(d, Decision::Failover { .. }), "{d:?}");
        assert_eq!((c.failures, c.first_failure), (2, Some(100)));
        let (_, c) = decide(&settings(), None, &c, &round(true, true), 160);
        assert_eq!((c.failures, c.first_failure), (0, None));
    }

    #[test]
    fn an_event_line_is_one_line_of_json_with_its_version() {
        let e = EventLine::new(EventKind::FencePending, "2026-01-01T00:00:00Z", "x", Some(3));
        assert_eq!(
            e.to_line(),
            "{\"format_version\":\"1.1\",\"type\":\"fence-pending\",\"at\":\"2026-01-01T00:00:00Z\",\"text\":\"x\",\"failures\":3}\n"
        );
        let notified = EventLine::new(EventKind::FailingOver, "t", "y", None);
        assert!(!notified.to_line().contains("failures"));
        assert_eq!(serde_json::from_str::<EventLine>(&notified.to_line()).ok(), Some(notified));
        assert_eq!(serde_json::to_value(EventKind::WouldFailOver).ok(), Some(serde_json::json!("would-fail-over")));
        assert!(EventKind::Fenced.notifies() && !EventKind::Healthy.notifies());
        for k in EventKind::ALL {
            assert_eq!(serde_json::to_value(k).ok(), Some(serde_json::json!(k.as_str())));
        }
    }
}
