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

/// How fast an archive gives its objects back: S3's retrieval tiers, a destination's
/// `restore_tier`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    Expedited,
    #[default]
    Standard,
    Bulk,
}

impl Tier {
    pub const ALL: [&'static str; 3] = ["Expedited", "Standard", "Bulk"];

    pub fn parse(text: &str) -> Option<Tier> {
        match text {
            "Expedited" => Some(Tier::Expedited),
            "Standard" => Some(Tier::Standard),
            "Bulk" => Some(Tier::Bulk),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Expedited => "Expedited",
            Tier::Standard => "Standard",
            Tier::Bulk => "Bulk",
        }
    }
}

/// Whether objects of storage class `class` must be thawed (S3's RestoreObject) before they
/// can be read: S3 Glacier Flexible Retrieval and Deep Archive. Glacier Instant Retrieval,
/// the infrequent-access classes and every Cloud Storage class are read at once.
pub fn needs_thaw(class: &str) -> bool {
    matches!(class, "GLACIER" | "DEEP_ARCHIVE")
}

/// The tier a thaw of `class` is asked with: `tier`, except Expedited on Deep Archive, which
/// S3 does not offer (validation refuses it; objects found there anyway get Standard).
pub fn effective_tier(class: &str, tier: Tier) -> Tier {
    if class == "DEEP_ARCHIVE" && tier == Tier::Expedited { Tier::Standard } else { tier }
}

/// The longest a thaw of `class` takes with `tier`, as AWS documents it (the upper bound of
/// each range: recovery is planned for the slow case); `None` when the class needs no thaw.
pub fn thaw_seconds(class: &str, tier: Tier) -> Option<u64> {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 3_600;
    match (class, effective_tier(class, tier)) {
        ("GLACIER", Tier::Expedited) => Some(5 * MINUTE),
        ("GLACIER", Tier::Standard) => Some(5 * HOUR),
        ("GLACIER", Tier::Bulk) => Some(12 * HOUR),
        ("DEEP_ARCHIVE", Tier::Bulk) => Some(48 * HOUR),
        ("DEEP_ARCHIVE", _) => Some(12 * HOUR),
        _ => None,
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
    /// The storage class the listing gives (`GLACIER`), `None` when it gives none.
    pub class: Option<String>,
}

impl ObjectMeta {
    /// The archive class this object must be thawed from before it is read, if any.
    pub fn archived(&self) -> Option<&str> {
        self.class.as_deref().filter(|c| needs_thaw(c))
    }
}

/// What a provider read of one point: its objects and, when asked for, the manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PointContents {
    pub objects: Vec<ObjectMeta>,
    /// The manifest object's content, when the configuration names one and it exists.
    pub manifest: Option<Vec<u8>>,
    /// The manifest exists but is archived and not thawed: it was not read (a GetObject
    /// would be refused), so the point is judged by the listing alone.
    pub manifest_archived: bool,
}

impl PointContents {
    /// The archive class of the point's objects (the slowest one when they differ), if any
    /// of them must be thawed before the point can be restored.
    pub fn archived(&self) -> Option<String> {
        let slowest = |c: &&str| thaw_seconds(c, Tier::Bulk).unwrap_or(0);
        self.objects.iter().filter_map(ObjectMeta::archived).max_by_key(slowest).map(str::to_owned)
    }
}

/// Whether a point can be restored from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PointStatus {
    /// The manifest is there and every object it lists matches.
    Verified,
    /// No manifest is configured: the point counts as complete, unchecked.
    Unverified,
    /// The configured manifest is there but archived with the rest, so it cannot be read
    /// before a thaw: complete by the listing, its contents checked by the restore.
    Archived,
    /// The configured manifest is missing: the backup did not finish writing.
    Incomplete,
    /// The manifest does not match the objects (or cannot be read).
    Corrupt(String),
    /// Not looked at: older than the point chosen, so never needed.
    #[default]
    NotExamined,
}

impl PointStatus {
    pub fn usable(&self) -> bool {
        matches!(self, PointStatus::Verified | PointStatus::Unverified | PointStatus::Archived)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            PointStatus::Verified => "verified",
            PointStatus::Unverified => "unverified",
            PointStatus::Archived => "archived",
            PointStatus::Incomplete => "incomplete",
            PointStatus::Corrupt(_) => "corrupt",
            PointStatus::NotExamined => "not examined",
        }
    }
}

/// A recovery point of one destination.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Point {
    /// The folder's name under the prefix, without slashes (`20261201_070000`).
    pub name: String,
    /// When the backup ran: from the name, else from the newest object once examined.
    pub time: Option<i64>,
    pub status: PointStatus,
    /// Objects and bytes, once examined (the manifest included).
    pub objects: Option<u64>,
    pub bytes: Option<u64>,
    /// The archive class its objects must be thawed from before a restore (`GLACIER`), once
    /// examined; `None` when they can be read at once.
    pub archive: Option<String>,
    /// When the storage says it was written: the earliest last-modified time of its
    /// objects, once examined (its name is whatever the writer chose).
    pub written: Option<i64>,
    /// Written during an open incident (see [`mark_suspect`]): never chosen for a restore
    /// unless asked for by time with `--allow-suspect`.
    pub suspect: bool,
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
    /// The tier a thaw from this destination asks for (its `restore_tier`).
    pub tier: Tier,
}

impl Catalog {
    pub fn point_uri(&self, name: &str) -> String {
        format!("{}{name}/", self.uri)
    }

    /// The newest usable point that is not suspect (written during an open incident).
    pub fn newest_usable(&self) -> Option<&Point> {
        self.points.iter().find(|p| p.status.usable() && !p.suspect)
    }

    /// This catalog with no point marked suspect (a restore that asked for one).
    pub fn without_suspects(&self) -> Catalog {
        let mut c = self.clone();
        for p in &mut c.points {
            p.suspect = false;
        }
        c
    }

    /// Seconds until `point`'s data can be read: its thaw with this destination's tier, 0
    /// for a point that needs none.
    pub fn time_to_data(&self, point: &Point) -> u64 {
        point.archive.as_deref().and_then(|c| thaw_seconds(c, self.tier)).unwrap_or(0)
    }

    /// `GLACIER, thaw up to 5h (Standard)` for an archived point; `None` otherwise.
    pub fn thaw_text(&self, point: &Point) -> Option<String> {
        let class = point.archive.as_deref()?;
        let secs = thaw_seconds(class, self.tier)?;
        Some(format!("{class}, thaw up to {} ({})", age_text(secs as i64), effective_tier(class, self.tier).as_str()))
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
    let Some(bytes) = &contents.manifest else {
        return if contents.manifest_archived { PointStatus::Archived } else { PointStatus::Incomplete };
    };
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

/// Marks the points written during an incident (`windows`: from its `since` until its close)
/// as suspect, by the storage's time of each (`written`), or the name's (`time`) for a point
/// not examined: nothing says otherwise.
pub fn mark_suspect(points: &mut [Point], windows: &[(i64, i64)]) {
    for p in points {
        let at = p.written.or(p.time);
        p.suspect = at.is_some_and(|w| windows.iter().any(|(from, to)| w >= *from && w < *to));
    }
}

/// When the storage says a point was written: its earliest object's last-modified time.
pub fn written_from_objects(contents: &PointContents) -> Option<i64> {
    contents.objects.iter().map(|o| o.modified).min()
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
    /// The chosen destination's thaw tier (used when the point is archived).
    pub tier: Tier,
    /// Seconds until the point can be read: its thaw, else 0.
    pub time_to_data: u64,
    /// `GLACIER, thaw up to 5m (Expedited)` when the point must be thawed first.
    pub thaw: Option<String>,
}

/// The newest usable point at or before `at` across `catalogs`. With `fastest_within` (the
/// RPO, for a restore not asked for a time), the points within it of `at` compete on how
/// soon they can be read instead: a copy read at once beats a newer one hours of thaw away.
/// At equal standing the copy in `cloud` wins (the promoted region's: near, no egress).
/// `Err` lists every destination tried and why it had nothing.
pub fn choose(
    catalogs: &[&Catalog],
    cloud: &str,
    at: i64,
    fastest_within: Option<u64>,
) -> Result<Choice, Vec<(String, String)>> {
    let mut reasons = Vec::new();
    let mut candidates: Vec<(&Catalog, &Point)> = Vec::new();
    for c in catalogs {
        if let Some(why) = &c.unreachable {
            reasons.push((c.destination.clone(), format!("unreachable: {why}")));
            continue;
        }
        match c.points.iter().find(|p| p.status.usable() && !p.suspect && p.time.is_some_and(|t| t <= at)) {
            Some(p) => candidates.push((c, p)),
            None => {
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
            }
        }
    }
    let time = |p: &Point| p.time.unwrap_or(i64::MIN);
    let within = |p: &Point| fastest_within.is_some_and(|rpo| p.time.is_some_and(|t| at - t <= rpo as i64));
    let fastest = candidates.iter().any(|(_, p)| within(p));
    // Outside the fastest rule the newest point wins, then the copy read sooner, then the cloud.
    let best = candidates.iter().copied().min_by_key(|(c, p)| {
        let (ttd, newest, far) = (c.time_to_data(p), std::cmp::Reverse(time(p)), c.cloud != cloud);
        match fastest {
            true => (!within(p), ttd, newest, 0, far),
            false => (false, 0, newest, ttd, far),
        }
    });
    let Some((bc, bp)) = best else { return Err(reasons) };
    for (c, p) in &candidates {
        if c.destination != bc.destination {
            reasons.push((c.destination.clone(), passed_for(c, p, bc, bp)));
        }
    }
    // In the order the destinations are declared.
    let order = |d: &str| catalogs.iter().position(|c| c.destination == d);
    reasons.sort_by_key(|(d, _)| order(d));
    Ok(Choice {
        destination: bc.destination.clone(),
        uri: bc.point_uri(&bp.name),
        point: bp.clone(),
        passed_over: reasons,
        tier: bc.tier,
        time_to_data: bc.time_to_data(bp),
        thaw: bc.thaw_text(bp),
    })
}

/// Why `own` (in `c`) was passed over for `point` in `chosen`.
fn passed_for(c: &Catalog, own: &Point, chosen: &Catalog, point: &Point) -> String {
    let (mine, theirs) = (c.time_to_data(own), chosen.time_to_data(point));
    if mine > theirs {
        let sooner = match theirs {
            0 => "can be read at once".to_string(),
            t => format!("can be read in {}", age_text(t as i64)),
        };
        let thaw = c.thaw_text(own).unwrap_or_default();
        match own.time == point.time {
            true => {
                format!("same point {} must be thawed there ({thaw}); in {} it {sooner}", own.name, chosen.destination)
            }
            false => format!(
                "its point {} must be thawed ({thaw}); {} in {} is within the RPO and {sooner}",
                own.name, point.name, chosen.destination
            ),
        }
    } else if own.time == point.time {
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
        ObjectMeta { name: name.into(), size, md5: Some(md5.into()), crc32c: None, modified: 100, class: None }
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
        let good = PointContents {
            objects: vec![meta("db.dump", 5, "ab12")],
            manifest: Some(MANIFEST.into()),
            manifest_archived: false,
        };
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
                    archive: None,
                    ..Point::default()
                })
                .collect(),
            unreachable: None,
            calls: 1,
            tier: Tier::Standard,
        }
    }

    #[test]
    fn the_newest_usable_point_wins_and_ties_go_to_the_regions_cloud() {
        use PointStatus::*;
        let s3 = catalog("s3", "aws", &[("c", 300, Incomplete), ("b", 200, Verified), ("a", 100, Verified)]);
        let gcs = catalog("gcs", "gcp", &[("b", 200, Verified), ("a", 100, Verified)]);
        let c = choose(&[&s3, &gcs], "gcp", 1_000, None).unwrap();
        assert_eq!((c.destination.as_str(), c.point.name.as_str()), ("gcs", "b"));
        let c = choose(&[&s3, &gcs], "aws", 1_000, None).unwrap();
        assert_eq!(c.destination, "s3");
        // Before an incident at 150: the older point.
        let c = choose(&[&s3, &gcs], "aws", 150, None).unwrap();
        assert_eq!(c.point.name, "a");
        let down = Catalog { unreachable: Some("connection refused".into()), ..s3.clone() };
        let c = choose(&[&down, &gcs], "aws", 1_000, None).unwrap();
        assert_eq!(c.destination, "gcs");
        assert!(c.passed_over.iter().any(|(d, why)| d == "s3" && why.contains("unreachable")), "{:?}", c.passed_over);
        let broken = catalog("s3", "aws", &[("c", 300, Corrupt("x".into()))]);
        let err = choose(&[&broken, &down], "aws", 1_000, None).unwrap_err();
        assert_eq!(err.len(), 2);
        assert!(err[0].1.contains("c corrupt"), "{err:?}");
    }

    #[test]
    fn within_the_rpo_the_copy_read_soonest_wins() {
        use PointStatus::*;
        let mut s3 = catalog("s3", "aws", &[("b", 900, Verified), ("a", 100, Verified)]);
        s3.points[0].archive = Some("GLACIER".into());
        let gcs = catalog("gcs", "gcp", &[("a2", 700, Verified)]);
        // Both within an RPO of 1000 of t=1000: the Cloud Storage copy is read at once.
        let c = choose(&[&s3, &gcs], "aws", 1_000, Some(1_000)).unwrap();
        assert_eq!((c.destination.as_str(), c.time_to_data), ("gcs", 0));
        let why = &c.passed_over[0].1;
        assert!(
            why.contains("b must be thawed (GLACIER, thaw up to 5h (Standard))") && why.contains("at once"),
            "{why}"
        );
        // Outside the RPO, or asked for a time: the newest point, thaw and all.
        let c = choose(&[&s3, &gcs], "aws", 1_000, Some(200)).unwrap();
        assert_eq!((c.point.name.as_str(), c.time_to_data), ("b", 5 * 3_600));
        let c = choose(&[&s3, &gcs], "aws", 1_000, None).unwrap();
        assert_eq!(c.thaw.as_deref(), Some("GLACIER, thaw up to 5h (Standard)"));
        s3.tier = Tier::Expedited;
        assert_eq!(s3.time_to_data(&s3.points[0]), 300);
        // The same point in both: the one read at once, whatever the cloud.
        let gcs = catalog("gcs", "gcp", &[("b", 900, Verified)]);
        let c = choose(&[&s3, &gcs], "aws", 1_000, None).unwrap();
        assert_eq!(c.destination, "gcs");
    }

    #[test]
    fn archived_points_are_judged_by_their_listing() {
        let mut object = meta("db.dump", 5, "ab12");
        object.class = Some("GLACIER".into());
        let mut manifest = meta("manifest.json", 70, "ffff");
        manifest.class = Some("DEEP_ARCHIVE".into());
        let sealed = PointContents { objects: vec![object.clone(), manifest], manifest: None, manifest_archived: true };
        assert_eq!(verify(&sealed, Some("manifest.json")), PointStatus::Archived);
        assert!(PointStatus::Archived.usable());
        assert_eq!(sealed.archived().as_deref(), Some("DEEP_ARCHIVE"), "the slowest class");
        // A readable manifest still vouches for archived objects' sizes and ETags.
        let readable =
            PointContents { objects: vec![object], manifest: Some(MANIFEST.into()), manifest_archived: false };
        assert_eq!(verify(&readable, Some("manifest.json")), PointStatus::Verified);
        assert_eq!(thaw_seconds("DEEP_ARCHIVE", Tier::Expedited), Some(12 * 3_600));
        assert_eq!(thaw_seconds("GLACIER_IR", Tier::Expedited), None);
        assert_eq!(thaw_seconds("COLDLINE", Tier::Bulk), None);
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
