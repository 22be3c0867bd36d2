//! Recovery points: the backup runs a destination holds, how old each is, whether its
//! manifest vouches for it, and which one a restore uses.
//!
//! Pure: the providers list the "folders" under a destination's prefix and the objects of a
//! point; this module reads names, checks manifests and chooses. Times are seconds since the
//! Unix epoch (UTC), passed in.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The seed runbook's naming: `dr/${TIMESTAMP}/` with `date +%Y%m%d_%H%M%S`.
pub const DEFAULT_POINT_FORMAT: &str = "%Y%m%d_%H%M%S";

/// How many of a destination's newest points are examined for one that is usable: each
/// costs a listing and a manifest read, so a run of broken points cannot cost thousands.
pub const EXAMINE_AT_MOST: usize = 24;

/// A `strftime`-style pattern naming a point by the time its backup ran (UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointFormat(String);

impl PointFormat {
    /// Checks that `pattern` names a moment to the minute at least: year, month, day, hour
    /// and minute, with no directive `strftime` does not know.
    pub fn parse(pattern: &str) -> Result<PointFormat, String> {
        for (directive, what) in [("%Y", "the year"), ("%m", "the month"), ("%d", "the day"), ("%H", "the hour")] {
            if !pattern.contains(directive) {
                return Err(format!("`{pattern}` has no `{directive}` ({what})"));
            }
        }
        if !pattern.contains("%M") {
            return Err(format!("`{pattern}` has no `%M` (the minute)"));
        }
        if pattern.contains('/') {
            return Err(format!("`{pattern}` contains `/`: a point is one folder directly under the prefix"));
        }
        // A moment with every field distinct proves the pattern prints and reads back.
        let sample = jiff::civil::date(2026, 11, 28).at(13, 47, 59, 0);
        let text = jiff::fmt::strtime::format(pattern, sample).map_err(|e| format!("`{pattern}`: {e}"))?;
        let back = jiff::fmt::strtime::parse(pattern, &text)
            .and_then(|t| t.to_datetime())
            .map_err(|e| format!("`{pattern}` does not read back what it writes: {e}"))?;
        if back.date() != sample.date() || back.hour() != 13 || back.minute() != 47 {
            return Err(format!("`{pattern}` does not read back the time it writes"));
        }
        Ok(PointFormat(pattern.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The time a point's name gives, when it matches the pattern.
    pub fn time_of(&self, name: &str) -> Option<i64> {
        let dt = jiff::fmt::strtime::parse(&self.0, name).ok()?.to_datetime().ok()?;
        Some(jiff::tz::Offset::UTC.to_timestamp(dt).ok()?.as_second())
    }

    /// The name a point taken at `time` has (for tests and sample scripts).
    pub fn name_at(&self, time: i64) -> Option<String> {
        let ts = jiff::Timestamp::from_second(time).ok()?;
        jiff::fmt::strtime::format(&self.0, jiff::tz::Offset::UTC.to_datetime(ts)).ok()
    }
}

impl Default for PointFormat {
    fn default() -> PointFormat {
        PointFormat(DEFAULT_POINT_FORMAT.to_string())
    }
}

/// One object of a point, as its store describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The name relative to the point's folder (`database.dump.gpg`).
    pub name: String,
    pub size: u64,
    /// The MD5 of the content, lowercase hex: S3's ETag of a single-part upload, GCS's
    /// `md5Hash` decoded. `None` when the store does not know it (S3 multipart uploads).
    pub md5: Option<String>,
    /// CRC32C, base64 as GCS and S3 write it.
    pub crc32c: Option<String>,
    /// Last modified, seconds since the epoch.
    pub modified: i64,
}

/// What a provider read of one point: its objects and, when asked for, the manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PointContents {
    pub objects: Vec<ObjectMeta>,
    /// The manifest object's content, when the configuration names one and it exists.
    pub manifest: Option<Vec<u8>>,
}

/// Whether a point can be restored from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PointStatus {
    /// The manifest is there and every object it lists matches.
    Verified,
    /// No manifest is configured: the point counts as complete, unchecked.
    Unverified,
    /// The configured manifest is missing: the backup did not finish writing.
    Incomplete,
    /// The manifest does not match the objects (or cannot be read).
    Corrupt(String),
    /// Not looked at: older than the point chosen, so never needed.
    NotExamined,
}

impl PointStatus {
    pub fn usable(&self) -> bool {
        matches!(self, PointStatus::Verified | PointStatus::Unverified)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            PointStatus::Verified => "verified",
            PointStatus::Unverified => "unverified",
            PointStatus::Incomplete => "incomplete",
            PointStatus::Corrupt(_) => "corrupt",
            PointStatus::NotExamined => "not examined",
        }
    }
}

/// A recovery point of one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    /// The folder's name under the prefix, without slashes (`20261201_070000`).
    pub name: String,
    /// When the backup ran: from the name, else from the newest object once examined.
    pub time: Option<i64>,
    pub status: PointStatus,
    /// Objects and bytes, once examined (the manifest included).
    pub objects: Option<u64>,
    pub bytes: Option<u64>,
}

/// What one destination holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    /// `backup.NAME.destination.DEST`.
    pub destination: String,
    /// The cloud the destination is in (`aws`, `gcp`).
    pub cloud: String,
    /// The points' common prefix as a URI (`s3://bucket/dr/`).
    pub uri: String,
    /// Newest first.
    pub points: Vec<Point>,
    /// Why the destination could not be read, when it could not.
    pub unreachable: Option<String>,
    /// Listing calls made (for the cost test and `--json`).
    pub calls: u32,
}

impl Catalog {
    pub fn point_uri(&self, name: &str) -> String {
        format!("{}{name}/", self.uri)
    }

    /// The newest usable point.
    pub fn newest_usable(&self) -> Option<&Point> {
        self.points.iter().find(|p| p.status.usable())
    }
}

/// The manifest a backup writes last, listing what it wrote (version 1).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format: u32,
    #[serde(default)]
    #[allow(dead_code)]
    created: Option<String>,
    objects: Vec<ManifestEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestEntry {
    name: String,
    size: u64,
    #[serde(default)]
    md5: Option<String>,
    #[serde(default)]
    crc32c: Option<String>,
}

/// The status of a point read with `manifest` named as `manifest_name` (or none configured).
pub fn verify(contents: &PointContents, manifest_name: Option<&str>) -> PointStatus {
    let Some(manifest_name) = manifest_name else { return PointStatus::Unverified };
    let Some(bytes) = &contents.manifest else { return PointStatus::Incomplete };
    let manifest: Manifest = match serde_json::from_slice(bytes) {
        Ok(m) => m,
        Err(e) => return PointStatus::Corrupt(format!("the manifest `{manifest_name}` cannot be read: {e}")),
    };
    if manifest.format != 1 {
        return PointStatus::Corrupt(format!("the manifest `{manifest_name}` has format {}, not 1", manifest.format));
    }
    let by_name: BTreeMap<&str, &ObjectMeta> = contents.objects.iter().map(|o| (o.name.as_str(), o)).collect();
    for entry in &manifest.objects {
        let Some(object) = by_name.get(entry.name.as_str()) else {
            return PointStatus::Corrupt(format!("`{}` is listed in the manifest but missing", entry.name));
        };
        if object.size != entry.size {
            return PointStatus::Corrupt(format!(
                "`{}` is {} bytes, the manifest says {}",
                entry.name, object.size, entry.size
            ));
        }
        if let (Some(want), Some(have)) = (&entry.md5, &object.md5)
            && !want.eq_ignore_ascii_case(have)
        {
            return PointStatus::Corrupt(format!("`{}` has MD5 {have}, the manifest says {want}", entry.name));
        }
        if let (Some(want), Some(have)) = (&entry.crc32c, &object.crc32c)
            && want != have
        {
            return PointStatus::Corrupt(format!("`{}` has CRC32C {have}, the manifest says {want}", entry.name));
        }
    }
    PointStatus::Verified
}

/// The point's time when its name does not give it: its newest object's.
pub fn time_from_objects(contents: &PointContents) -> Option<i64> {
    contents.objects.iter().map(|o| o.modified).max()
}

/// The chosen point of one backup, and why the others were not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub destination: String,
    pub uri: String,
    pub point: Point,
    /// Destinations passed over, with the reason (unreachable, nothing usable, newer elsewhere).
    pub passed_over: Vec<(String, String)>,
}

/// The newest usable point at or before `at` across `catalogs`; at equal times the one in
/// `cloud` (the promoted region's: the copy that is near and costs no egress). `Err` lists
/// every destination tried and why it had nothing.
pub fn choose(catalogs: &[&Catalog], cloud: &str, at: i64) -> Result<Choice, Vec<(String, String)>> {
    let mut best: Option<(&Catalog, &Point)> = None;
    let mut reasons = Vec::new();
    for c in catalogs {
        if let Some(why) = &c.unreachable {
            reasons.push((c.destination.clone(), format!("unreachable: {why}")));
            continue;
        }
        let usable = c.points.iter().find(|p| p.status.usable() && p.time.is_some_and(|t| t <= at));
        let Some(p) = usable else {
            let why = match (c.points.is_empty(), c.points.iter().any(|p| p.time.is_some_and(|t| t <= at))) {
                (true, _) => "holds no recovery point".to_string(),
                (false, false) => "holds no recovery point at or before the requested time".to_string(),
                (false, true) => {
                    let broken: Vec<String> = c
                        .points
                        .iter()
                        .filter(|p| matches!(p.status, PointStatus::Incomplete | PointStatus::Corrupt(_)))
                        .take(3)
                        .map(|p| format!("{} {}", p.name, p.status.as_str()))
                        .collect();
                    format!("no complete, uncorrupted point ({})", broken.join(", "))
                }
            };
            reasons.push((c.destination.clone(), why));
            continue;
        };
        let better = match best {
            None => true,
            Some((bc, bp)) => {
                let (t, bt) = (p.time.unwrap_or(i64::MIN), bp.time.unwrap_or(i64::MIN));
                t > bt || (t == bt && c.cloud == cloud && bc.cloud != cloud)
            }
        };
        if let (false, Some((bc, bp))) = (better, best) {
            reasons.push((c.destination.clone(), passed_for(p, bc, bp)));
        } else if let Some((bc, bp)) = best {
            reasons.push((bc.destination.clone(), passed_for(bp, c, p)));
            best = Some((c, p));
        } else {
            best = Some((c, p));
        }
    }
    match best {
        Some((c, p)) => Ok(Choice {
            destination: c.destination.clone(),
            uri: c.point_uri(&p.name),
            point: p.clone(),
            passed_over: reasons,
        }),
        None => Err(reasons),
    }
}

fn passed_for(own: &Point, chosen: &Catalog, point: &Point) -> String {
    if own.time == point.time {
        format!("same point {} also in {} ({})", own.name, chosen.destination, chosen.cloud)
    } else {
        format!("its newest usable point {} is older than {}", own.name, point.name)
    }
}

/// `1 object`, `12 objects`.
pub fn objects_text(n: u64) -> String {
    if n == 1 { "1 object".to_string() } else { format!("{n} objects") }
}

/// A short age: `43m`, `5h12m`, `3d`.
pub fn age_text(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3_600 => format!("{}m", s / 60),
        s if s < 86_400 => match s % 3_600 / 60 {
            0 => format!("{}h", s / 3_600),
            m => format!("{}h{m}m", s / 3_600),
        },
        s => format!("{}d", s / 86_400),
    }
}

/// RFC 3339 UTC of `time`.
pub fn rfc3339(time: i64) -> String {
    jiff::Timestamp::from_second(time).map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default()
}

/// The seconds since the epoch of an RFC 3339 time, `None` when it is not one.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    text.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// How many seconds before `now` the RFC 3339 time `text` was: the one age-from-a-recorded-time
/// rule (drills, restores, the posture). `None` when `text` is not a time.
pub fn seconds_since(text: &str, now: i64) -> Option<i64> {
    parse_rfc3339(text).map(|t| now - t)
}

/// Reads `--restore-point`: RFC 3339 (`2026-12-01T06:30:00Z`) or an age before `now` (`2h`).
pub fn parse_point_time(text: &str, now: i64) -> Result<i64, String> {
    if let Ok(d) = crate::config::Duration::parse(text) {
        return Ok(now - d.as_secs() as i64);
    }
    match parse_rfc3339(text) {
        Some(t) => Ok(t),
        None => Err(format!(
            "`{text}` is neither a time (RFC 3339, such as \"2026-12-01T06:30:00Z\") nor an age (such as \"2h\")"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str, size: u64, md5: &str) -> ObjectMeta {
        ObjectMeta { name: name.into(), size, md5: Some(md5.into()), crc32c: None, modified: 100 }
    }

    const MANIFEST: &str = r#"{"format": 1, "objects": [{"name": "db.dump", "size": 5, "md5": "AB12"}]}"#;

    #[test]
    fn formats_name_a_moment_and_read_it_back() {
        let f = PointFormat::default();
        let t = f.time_of("20261201_070000").unwrap();
        assert_eq!(rfc3339(t), "2026-12-01T07:00:00Z");
        assert_eq!(f.name_at(t).as_deref(), Some("20261201_070000"));
        assert_eq!(f.time_of("latest"), None);
        assert_eq!(f.time_of("20261301_070000"), None, "month 13");
        for bad in ["%Y%m%d", "%Y-%m-%d/%H%M", "%Y%m%d_%H%M%Q", "%Y%m%d_%H%M%S%"] {
            assert!(PointFormat::parse(bad).is_err(), "{bad}");
        }
        assert!(PointFormat::parse("backup-%Y-%m-%dT%H-%M").is_ok());
    }

    #[test]
    fn manifests_vouch_for_sizes_and_checksums() {
        let good = PointContents { objects: vec![meta("db.dump", 5, "ab12")], manifest: Some(MANIFEST.into()) };
        assert_eq!(verify(&good, Some("manifest.json")), PointStatus::Verified);
        assert_eq!(verify(&good, None), PointStatus::Unverified);
        let missing = PointContents { manifest: None, ..good.clone() };
        assert_eq!(verify(&missing, Some("manifest.json")), PointStatus::Incomplete);
        let resized = PointContents { objects: vec![meta("db.dump", 6, "ab12")], ..good.clone() };
        assert!(matches!(verify(&resized, Some("m")), PointStatus::Corrupt(w) if w.contains("6 bytes")));
        let tampered = PointContents { objects: vec![meta("db.dump", 5, "ffff")], ..good.clone() };
        assert!(matches!(verify(&tampered, Some("m")), PointStatus::Corrupt(w) if w.contains("MD5")));
        let gone = PointContents { objects: vec![], ..good.clone() };
        assert!(matches!(verify(&gone, Some("m")), PointStatus::Corrupt(w) if w.contains("missing")));
        let garbage = PointContents { manifest: Some(b"{".to_vec()), ..good };
        assert!(matches!(verify(&garbage, Some("m")), PointStatus::Corrupt(_)));
    }

    fn catalog(dest: &str, cloud: &str, points: &[(&str, i64, PointStatus)]) -> Catalog {
        Catalog {
            destination: dest.into(),
            cloud: cloud.into(),
            uri: format!("x://{dest}/"),
            points: points
                .iter()
                .map(|(n, t, s)| Point {
                    name: n.to_string(),
                    time: Some(*t),
                    status: s.clone(),
                    objects: None,
                    bytes: None,
                })
                .collect(),
            unreachable: None,
            calls: 1,
        }
    }

    #[test]
    fn the_newest_usable_point_wins_and_ties_go_to_the_regions_cloud() {
        use PointStatus::*;
        let s3 = catalog("s3", "aws", &[("c", 300, Incomplete), ("b", 200, Verified), ("a", 100, Verified)]);
        let gcs = catalog("gcs", "gcp", &[("b", 200, Verified), ("a", 100, Verified)]);
        let c = choose(&[&s3, &gcs], "gcp", 1_000).unwrap();
        assert_eq!((c.destination.as_str(), c.point.name.as_str()), ("gcs", "b"));
        let c = choose(&[&s3, &gcs], "aws", 1_000).unwrap();
        assert_eq!(c.destination, "s3");
        // Before an incident at 150: the older point.
        let c = choose(&[&s3, &gcs], "aws", 150).unwrap();
        assert_eq!(c.point.name, "a");
        let down = Catalog { unreachable: Some("connection refused".into()), ..s3.clone() };
        let c = choose(&[&down, &gcs], "aws", 1_000).unwrap();
        assert_eq!(c.destination, "gcs");
        assert!(c.passed_over.iter().any(|(d, why)| d == "s3" && why.contains("unreachable")), "{:?}", c.passed_over);
        let broken = catalog("s3", "aws", &[("c", 300, Corrupt("x".into()))]);
        let err = choose(&[&broken, &down], "aws", 1_000).unwrap_err();
        assert_eq!(err.len(), 2);
        assert!(err[0].1.contains("c corrupt"), "{err:?}");
    }

    #[test]
    fn point_times_are_times_or_ages() {
        assert_eq!(parse_point_time("2h", 10_000), Ok(10_000 - 7_200));
        assert_eq!(parse_point_time("2026-12-01T07:00:00Z", 0).map(rfc3339).as_deref(), Ok("2026-12-01T07:00:00Z"));
        assert!(parse_point_time("yesterday", 0).unwrap_err().contains("RFC 3339"));
        assert_eq!(age_text(43 * 60), "43m");
        assert_eq!(age_text(5 * 3_600 + 12 * 60), "5h12m");
    }
}
