//! The uptime budget: `objectives.uptime` as the downtime allowed over a rolling 365 days,
//! and the failovers state keeps with the downtime each one took. Pure: the records, the
//! objective and the time come in as values.
//!
//! A failover's downtime runs from the first failed health observation (a watcher's
//! failover) or from the moment the old writers stopped (a planned switchover) until the
//! PRIMARY record's change is in sync, plus the record's TTL (clients' caches). A manual
//! failover with neither counts from its apply's start, and says so. Where nothing was
//! recorded the downtime is unknown, never zero. Drills never move DNS and cost nothing.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Duration;
use crate::recovery::{parse_rfc3339, rfc3339};

/// The failovers state keeps, newest last; older ones are dropped and counted.
pub const KEPT: usize = 100;

/// The budget's window: a rolling year.
pub const WINDOW_SECONDS: i64 = 365 * 86_400;

/// Where a failover's downtime was counted from.
pub const FROM_HEALTH: &str = "first failed health observation";
pub const FROM_WRITERS: &str = "writers stopped";
pub const FROM_APPLY: &str = "apply started (no failed health observation or stop of writers was recorded)";

/// What state keeps of the failovers (state 3.4): the newest [`KEPT`], and how many older
/// ones were dropped to keep that bound.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct History {
    /// Oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failovers: Vec<FailoverRecord>,
    /// How many older failovers were dropped.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped: u64,
    /// How many older drills were dropped from `drills` (which keeps the newest 20).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub drills_dropped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl History {
    pub fn is_empty(&self) -> bool {
        self.failovers.is_empty() && self.dropped == 0 && self.drills_dropped == 0
    }

    /// Adds `record`, dropping (and counting) the oldest beyond [`KEPT`].
    pub fn push(&mut self, record: FailoverRecord) {
        self.failovers.push(record);
        let over = self.failovers.len().saturating_sub(KEPT);
        self.failovers.drain(..over);
        self.dropped += over as u64;
    }
}

/// Adds `drill` to `prior`'s drills, dropping the oldest beyond [`crate::drill::KEPT`] and
/// counting them in its history.
pub fn push_drill(prior: &mut crate::plan::Prior, drill: crate::drill::Drill) {
    prior.drills.push(drill);
    let over = prior.drills.len().saturating_sub(crate::drill::KEPT);
    prior.drills.drain(..over);
    prior.history.drills_dropped += over as u64;
}

/// One failover: a change of the active region carried out by an apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FailoverRecord {
    /// The failover's id, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The region promoted.
    pub to: String,
    /// The region active before, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Who acted (`drplan watch on HOST`, a user).
    pub by: String,
    /// When the apply started (RFC 3339).
    pub started: String,
    /// When the downtime began (RFC 3339); `None`: not recorded.
    pub down_from: Option<String>,
    /// What `down_from` is: `first failed health observation` (a watcher's failover),
    /// `writers stopped` (a planned switchover), or `apply started (...)` (a manual failover
    /// with neither recorded).
    pub counted_from: String,
    /// When the PRIMARY record's change was in sync (RFC 3339); `None`: not seen.
    pub in_sync: Option<String>,
    /// The record's TTL, added for clients' caches.
    pub ttl_seconds: u32,
    /// `down_from` to `in_sync`, plus the TTL; `None`: unknown.
    pub downtime_seconds: Option<u64>,
}

impl FailoverRecord {
    /// The downtime of a failover from its observed times.
    pub fn downtime(down_from: Option<i64>, in_sync: Option<i64>, ttl: u32) -> Option<u64> {
        let (from, to) = (down_from?, in_sync?);
        Some((to - from).max(0) as u64 + u64::from(ttl))
    }

    /// When it happened, for the window: the change in sync, else the start.
    fn at(&self) -> Option<i64> {
        self.in_sync.as_deref().or(Some(self.started.as_str())).and_then(parse_rfc3339)
    }

    /// The downtime as people read it.
    pub fn downtime_text(&self) -> String {
        match self.downtime_seconds {
            Some(s) => duration_text(s),
            None => "unknown".to_string(),
        }
    }
}

/// `8h 45m 36s`: a duration as people read it.
pub fn duration_text(seconds: u64) -> String {
    let mut out = String::new();
    for c in Duration::from_secs(seconds).to_string().chars() {
        out.push(c);
        if c.is_ascii_alphabetic() {
            out.push(' ');
        }
    }
    out.trim_end().to_string()
}

/// The downtime allowed by `uptime` percent over the window, in seconds (99.9% is
/// 8h 45m 36s).
pub fn allowed(uptime: f64) -> u64 {
    (WINDOW_SECONDS as f64 * (100.0 - uptime) / 100.0).round().max(0.0) as u64
}

/// The budget now.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Budget {
    /// The objective, in percent.
    pub uptime: f64,
    pub window_seconds: u64,
    pub allowed_seconds: u64,
    /// The known downtime of the failovers in the window.
    pub spent_seconds: u64,
    /// Allowed less spent; negative once overspent.
    pub remaining_seconds: i64,
    /// Failovers in the window whose downtime is unknown: the budget may be lower.
    pub unknown: u64,
    /// Failovers in the window.
    pub failovers: u64,
}

impl Budget {
    /// `8h 45m 36s of 8h 45m 36s left (99.9% over 365 days)`, with the unknown ones said.
    pub fn text(&self) -> String {
        let left = if self.remaining_seconds < 0 {
            format!("overspent by {}", duration_text(self.remaining_seconds.unsigned_abs()))
        } else {
            format!("{} left", duration_text(self.remaining_seconds as u64))
        };
        let unknown = match self.unknown {
            0 => String::new(),
            n => format!("; {n} failover(s) of unknown downtime not counted"),
        };
        format!(
            "{left} of {} ({}% over 365 days, {} spent){unknown}",
            duration_text(self.allowed_seconds),
            self.uptime,
            duration_text(self.spent_seconds)
        )
    }
}

/// The budget of `uptime` percent at `now`, spent by the failovers of the last 365 days.
pub fn budget(uptime: f64, history: &History, now: i64) -> Budget {
    let allowed = allowed(uptime);
    let within: Vec<&FailoverRecord> =
        history.failovers.iter().filter(|f| f.at().is_some_and(|t| t > now - WINDOW_SECONDS && t <= now)).collect();
    let spent: u64 = within.iter().filter_map(|f| f.downtime_seconds).sum();
    Budget {
        uptime,
        window_seconds: WINDOW_SECONDS as u64,
        allowed_seconds: allowed,
        spent_seconds: spent,
        remaining_seconds: allowed as i64 - spent as i64,
        unknown: within.iter().filter(|f| f.downtime_seconds.is_none()).count() as u64,
        failovers: within.len() as u64,
    }
}

/// A record of a failover from what its apply observed (seconds since the epoch).
#[allow(clippy::too_many_arguments)]
pub fn record(
    id: Option<String>,
    from: Option<String>,
    to: String,
    by: String,
    started: i64,
    (down_from, counted_from): (Option<i64>, &str),
    in_sync: Option<i64>,
    ttl: u32,
) -> FailoverRecord {
    FailoverRecord {
        id,
        to,
        from,
        by,
        started: rfc3339(started),
        down_from: down_from.map(rfc3339),
        counted_from: counted_from.to_string(),
        in_sync: in_sync.map(rfc3339),
        ttl_seconds: ttl,
        downtime_seconds: FailoverRecord::downtime(down_from, in_sync, ttl),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failover(at: i64, downtime: Option<u64>) -> FailoverRecord {
        let mut r = record(None, Some("a".into()), "b".into(), "me".into(), at, (Some(at), FROM_APPLY), Some(at), 0);
        r.downtime_seconds = downtime;
        r
    }

    #[test]
    fn three_nines_allow_eight_hours_forty_five_minutes_thirty_six_seconds() {
        assert_eq!(allowed(99.9), 8 * 3600 + 45 * 60 + 36);
        assert_eq!(duration_text(allowed(99.9)), "8h 45m 36s");
        assert_eq!(allowed(100.0), 0);
    }

    #[test]
    fn the_budget_goes_down_by_each_known_downtime_of_the_year() {
        let now = 1_800_000_000;
        let mut h = History::default();
        h.push(failover(now - WINDOW_SECONDS - 10, Some(1000)));
        h.push(failover(now - 3600, Some(300)));
        h.push(failover(now - 60, None));
        let b = budget(99.9, &h, now);
        assert_eq!(b.spent_seconds, 300, "the one older than a year is out of the window");
        assert_eq!(b.remaining_seconds, 31_536 - 300);
        assert_eq!((b.unknown, b.failovers), (1, 2));
        assert!(b.text().contains("1 failover(s) of unknown downtime"), "{}", b.text());
    }

    #[test]
    fn downtime_is_unknown_without_both_ends_and_counts_the_ttl() {
        assert_eq!(FailoverRecord::downtime(Some(100), Some(160), 60), Some(120));
        assert_eq!(FailoverRecord::downtime(None, Some(160), 60), None);
        assert_eq!(FailoverRecord::downtime(Some(100), None, 60), None);
    }

    #[test]
    fn drills_beyond_their_bound_are_dropped_and_counted() {
        let mut prior = crate::plan::Prior::default();
        for i in 0..(crate::drill::KEPT + 2) {
            let drill = crate::drill::Drill {
                id: format!("d{i}"),
                region: "r".into(),
                role: "standby".into(),
                restore: false,
                started: rfc3339(i as i64),
                finished: None,
                result: crate::drill::PASSED.into(),
                steps: Vec::new(),
                measured_rto_seconds: None,
                estimate_seconds: None,
                rto_objective_seconds: None,
                removed: Vec::new(),
                error: None,
                replicas: Vec::new(),
            };
            push_drill(&mut prior, drill);
        }
        assert_eq!(prior.drills.len(), crate::drill::KEPT);
        assert_eq!((prior.drills[0].id.as_str(), prior.history.drills_dropped), ("d2", 2));
    }

    #[test]
    fn the_history_keeps_its_bound_and_counts_what_it_dropped() {
        let mut h = History::default();
        for i in 0..(KEPT as i64 + 3) {
            h.push(failover(i, Some(1)));
        }
        assert_eq!(h.failovers.len(), KEPT);
        assert_eq!(h.dropped, 3);
        assert_eq!(h.failovers[0].started, rfc3339(3));
    }
}
