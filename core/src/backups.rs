//! The report of `drplan backups`: every destination's recovery points and, per backup, the
//! newest usable one against the RPO. A versioned contract (`--json`) with its renderings.

use schemars::JsonSchema;
use serde::Serialize;

use crate::config::{Config, Target};
use crate::plan::resource::address;
use crate::recovery::{Catalog, PointStatus, age_text, rfc3339};

/// The version of the JSON report: 1.1 added the archive class and thaw of points
/// (`storage_class`, `thaw_seconds`, `thaw_tier`) and of the newest usable one, and why a
/// destination was not listed (`not_listed`).
pub const FORMAT_VERSION: &str = "1.2";

/// What `drplan backups --json` prints.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Report {
    pub format_version: &'static str,
    pub project: String,
    /// When the destinations were read (RFC 3339).
    pub at: String,
    /// Every backup has a usable point within the RPO (unreachable destinations are listed,
    /// and count only through that).
    pub ok: bool,
    pub backups: Vec<BackupReport>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct BackupReport {
    pub backup: String,
    pub rpo_seconds: Option<u64>,
    /// The newest usable point across the destinations.
    pub newest_usable: Option<Usable>,
    /// Whether it is within the RPO (`None` without an RPO or a usable point).
    pub within_rpo: Option<bool>,
    pub destinations: Vec<DestinationReport>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Usable {
    pub destination: String,
    pub point: String,
    pub uri: String,
    pub time: String,
    pub age_seconds: i64,
    /// `GLACIER, thaw up to 5h (Standard)` when it must be thawed before a restore. Since 1.1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thaw: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DestinationReport {
    pub name: String,
    /// `s3://bucket/prefix`, `gs://…`, `file://…`, or a NAS's endpoint and bucket.
    pub uri: String,
    pub unreachable: Option<String>,
    /// Why it was not listed (a NAS neither mounted where drplan runs nor reached through
    /// an S3 endpoint). Since 1.1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_listed: Option<String>,
    /// Listing calls made to read it.
    pub calls: u32,
    /// Newest first.
    pub points: Vec<PointReport>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PointReport {
    pub name: String,
    pub time: Option<String>,
    pub age_seconds: Option<i64>,
    /// `verified`, `unverified`, `incomplete`, `corrupt`, `not examined` (older than the
    /// newest usable point, so never needed).
    pub status: &'static str,
    /// Why a point is corrupt.
    pub reason: Option<String>,
    pub objects: Option<u64>,
    pub bytes: Option<u64>,
    /// The archive class its objects must be thawed from (`GLACIER`, `DEEP_ARCHIVE`), once
    /// examined. Since 1.1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// The longest its thaw takes with the destination's tier. Since 1.1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thaw_seconds: Option<u64>,
    /// The tier the thaw asks for (`Expedited`, `Standard`, `Bulk`). Since 1.1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thaw_tier: Option<&'static str>,
    /// When the storage says it was written (its earliest object), once examined. Since 1.2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written: Option<String>,
    /// Written during an open incident: never restored unless asked for by time with
    /// `--allow-suspect`. Since 1.2.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub suspect: bool,
}

pub fn report(config: &Config, catalogs: &std::collections::BTreeMap<String, Catalog>, now: i64) -> Report {
    let mut ok = true;
    let backups = config
        .backups
        .iter()
        .map(|b| {
            let mut newest: Option<Usable> = None;
            let destinations: Vec<DestinationReport> = b
                .destinations
                .iter()
                .map(|d| {
                    let at = address::bucket(&b.name, &d.name);
                    let Some(c) = catalogs.get(&at) else {
                        let uri = d.target.uri();
                        let not_listed = match &d.target {
                            Target::Nas { path: Some(path), .. } => Some(format!(
                                "no share is mounted at {path} where drplan runs, and the NAS has no `s3_endpoint`"
                            )),
                            _ => None,
                        };
                        return DestinationReport {
                            name: d.name.clone(),
                            uri,
                            unreachable: None,
                            not_listed,
                            calls: 0,
                            points: Vec::new(),
                        };
                    };
                    // The newest; at equal times the copy read sooner (no thaw).
                    if let Some(p) = c.newest_usable()
                        && let Some(t) = p.time
                        && newest
                            .as_ref()
                            .is_none_or(|n| (n.age_seconds, n.thaw.is_some()) > (now - t, c.thaw_text(p).is_some()))
                    {
                        newest = Some(Usable {
                            destination: d.name.clone(),
                            point: p.name.clone(),
                            uri: c.point_uri(&p.name),
                            time: rfc3339(t),
                            age_seconds: now - t,
                            thaw: c.thaw_text(p),
                        });
                    }
                    DestinationReport {
                        name: d.name.clone(),
                        uri: c.uri.clone(),
                        unreachable: c.unreachable.clone(),
                        not_listed: None,
                        calls: c.calls,
                        points: c
                            .points
                            .iter()
                            .map(|p| PointReport {
                                name: p.name.clone(),
                                time: p.time.map(rfc3339),
                                age_seconds: p.time.map(|t| now - t),
                                status: p.status.as_str(),
                                reason: match &p.status {
                                    PointStatus::Corrupt(why) => Some(why.clone()),
                                    _ => None,
                                },
                                objects: p.objects,
                                bytes: p.bytes,
                                storage_class: p.archive.clone(),
                                thaw_seconds: p.archive.as_ref().map(|_| c.time_to_data(p)),
                                thaw_tier: p
                                    .archive
                                    .as_deref()
                                    .map(|class| crate::recovery::effective_tier(class, c.tier).as_str()),
                                written: p.written.map(rfc3339),
                                suspect: p.suspect,
                            })
                            .collect(),
                    }
                })
                .collect();
            let rpo = config.objectives.rpo.map(|r| r.as_secs());
            let within_rpo = match (&newest, rpo) {
                (Some(n), Some(r)) => Some(n.age_seconds <= r as i64),
                (None, Some(_)) => Some(false),
                _ => None,
            };
            if within_rpo == Some(false) || newest.is_none() {
                ok = false;
            }
            BackupReport { backup: b.name.clone(), rpo_seconds: rpo, newest_usable: newest, within_rpo, destinations }
        })
        .collect();
    Report { format_version: FORMAT_VERSION, project: config.project.clone(), at: rfc3339(now), ok, backups }
}

/// How many points each destination lists in full; older ones are counted.
const SHOWN: usize = 10;

impl Report {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    pub fn human(&self) -> String {
        let mut out = format!("Recovery points of {} (read {}):\n", self.project, self.at);
        for b in &self.backups {
            let rpo =
                b.rpo_seconds.map(|r| format!(", RPO {}", crate::config::Duration::from_secs(r))).unwrap_or_default();
            out.push_str(&format!("\nbackup {}{rpo}\n", b.backup));
            for d in &b.destinations {
                out.push_str(&format!("  {} {}", d.name, d.uri));
                if let Some(why) = &d.unreachable {
                    out.push_str(&format!(": unreachable: {why}\n"));
                    continue;
                }
                if let Some(why) = &d.not_listed {
                    out.push_str(&format!(": not listed: {why}\n"));
                    continue;
                }
                if d.points.is_empty() {
                    out.push_str(": no recovery point\n");
                    continue;
                }
                out.push_str(&format!(": {} point(s)\n", d.points.len()));
                for p in d.points.iter().take(SHOWN) {
                    let age = p.age_seconds.map(|a| format!("{} old", age_text(a))).unwrap_or_else(|| "undated".into());
                    let size = match (p.objects, p.bytes) {
                        (Some(n), Some(b)) => format!(", {}, {b} bytes", crate::recovery::objects_text(n)),
                        _ => String::new(),
                    };
                    let why = p.reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default();
                    let thaw = match (&p.storage_class, p.thaw_seconds, p.thaw_tier) {
                        (Some(class), Some(s), Some(tier)) => {
                            format!(" ({class}: thaw up to {} with {tier} retrieval)", age_text(s as i64))
                        }
                        _ => String::new(),
                    };
                    let suspect = match (p.suspect, &p.written) {
                        (true, Some(w)) => format!("  SUSPECT: written {w}, during an open incident"),
                        (true, None) => "  SUSPECT: dated during an open incident".to_string(),
                        (false, _) => String::new(),
                    };
                    out.push_str(&format!("    {}  {age}{size}  {}{thaw}{why}{suspect}\n", p.name, p.status));
                }
                if d.points.len() > SHOWN {
                    out.push_str(&format!("    … and {} older\n", d.points.len() - SHOWN));
                }
            }
            match &b.newest_usable {
                Some(n) => {
                    let verdict = match b.within_rpo {
                        Some(true) => " ✓ within the RPO",
                        Some(false) => " ✗ older than the RPO",
                        None => "",
                    };
                    let thaw = n.thaw.as_ref().map(|t| format!(", {t}")).unwrap_or_default();
                    out.push_str(&format!(
                        "  newest usable: {} ({} old{thaw}){verdict}\n",
                        n.uri,
                        age_text(n.age_seconds)
                    ));
                }
                None => out.push_str("  ✗ no usable recovery point\n"),
            }
        }
        out
    }
}
