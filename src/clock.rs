//! The wall clock and the identity of the person running drplan, for lock information.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now as RFC 3339 UTC, e.g. `2026-11-27T13:20:05Z` (core's one formatter, on jiff).
pub fn now_rfc3339() -> String {
    drplan_core::recovery::rfc3339(now_seconds())
}

/// Now, in seconds since the Unix epoch.
pub fn now_seconds() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// `user@host`, as well as the environment tells.
pub fn who() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{user}@{host}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_rfc3339() {
        let now = super::now_rfc3339();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.starts_with("20") && now.ends_with('Z') && now.as_bytes()[10] == b'T', "{now}");
    }
}
