//! Goldens of `drplan status`'s report for fixed snapshots of `examples/bot-core`: converged
//! and ready, then degraded in several ways at once, then with the active region down. The
//! time is passed in; `UPDATE_EXPECT=1` rewrites the files under `tests/status/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use drplan_core::SourceFile;
use drplan_core::config::{self, Config};
use drplan_core::plan::resource::{Value, address};
use drplan_core::plan::{Observed, Prior, Snapshot, desired};
use drplan_core::recovery::{Catalog, Point, PointStatus};
use drplan_core::status::{Checkers, Inputs, Report, Verdict, report};

/// 2026-12-01T12:00:00Z.
pub(crate) const NOW: i64 = 1_796_126_400;

fn bot_core() -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/bot-core/main.hcl");
    let text = std::fs::read_to_string(path).unwrap();
    config::load(&[SourceFile::new("main.hcl", text)], &|_| None).config.expect("bot-core is valid")
}

/// State and live as `config` converges to, a recovery point `age` seconds old in both
/// cloud destinations, the active CronJob's last success 20 minutes ago, and every health
/// check reported healthy by 16 checkers.
pub(crate) struct World {
    pub(crate) config: Config,
    pub(crate) prior: Prior,
    pub(crate) live: Snapshot,
    pub(crate) health: BTreeMap<String, Result<Checkers, String>>,
}

pub(crate) fn converged(point_age: i64) -> World {
    let config = bot_core();
    let objects: BTreeMap<String, Observed> = desired::desired(&config)
        .into_iter()
        .map(|r| {
            let id = match r.kind {
                drplan_core::plan::Kind::HealthCheck => format!("hc-{}", r.str("serves").unwrap_or_default()),
                _ => format!("id-{}", r.address),
            };
            (r.address.clone(), Observed { id, resource: r })
        })
        .collect();
    let prior = Prior {
        objects: objects.clone(),
        roles: config.regions.iter().map(|r| (r.name.clone(), r.role)).collect(),
        ..Prior::default()
    };
    let mut live = Snapshot { objects, ..Snapshot::default() };
    let time = NOW - point_age;
    let name = config.backups[0].point_format.name_at(time).unwrap();
    for (dest, cloud, uri) in
        [("primary", "aws", "s3://bot-core-backups/dr/"), ("secondary", "gcp", "gs://bot-core-backups-eu/dr/")]
    {
        let at = address::bucket("database", dest);
        let point = Point {
            name: name.clone(),
            time: Some(time),
            status: PointStatus::Verified,
            objects: Some(2),
            bytes: Some(2_048),
            archive: None,
            ..Point::default()
        };
        live.points.insert(
            at.clone(),
            Catalog {
                destination: at,
                cloud: cloud.into(),
                uri: uri.into(),
                points: vec![point],
                unreachable: None,
                calls: 2,
                tier: Default::default(),
            },
        );
    }
    live.backup_runs.insert(address::backup_job("us-east-1", "database"), NOW - 20 * 60);
    // The ledger's replica, 1 s behind a minute ago.
    live.replication.insert(
        address::database("eu-west-1", "ledger"),
        drplan_core::plan::data::Lag { seconds: Some(1), at: Some(NOW - 60) },
    );
    let health = ["us-east-1", "eu-west-1"]
        .into_iter()
        .map(|r| (r.to_string(), Ok(Checkers { checkers: 16, healthy: 16, failing: None })))
        .collect();
    World { config, prior, live, health }
}

impl World {
    fn report(&self) -> Report {
        report(&Inputs {
            config: &self.config,
            prior: &self.prior,
            snapshot: &self.live,
            health: &self.health,
            now: NOW,
        })
    }

    fn set(&mut self, at: &str, attr: &str, value: Value) {
        self.live.objects.get_mut(at).unwrap().resource.attrs.insert(attr.into(), value);
    }
}

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/status").join(name);
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        let diff = similar::TextDiff::from_lines(&expected, actual);
        panic!("{} differs (UPDATE_EXPECT=1 accepts):\n{}", path.display(), diff.unified_diff().context_radius(2));
    }
}

/// The layout bot-core promises: one terminal screen.
fn fits_one_screen(text: &str) {
    assert!(text.lines().count() <= 40, "{} lines:\n{text}", text.lines().count());
    for line in text.lines() {
        assert!(line.chars().count() <= 100, "{} columns: {line}", line.chars().count());
    }
}

#[test]
fn converged_bot_core_is_ready() {
    let w = converged(30 * 60);
    let r = w.report();
    assert_eq!(r.verdict, Verdict::Ready, "{:#?}", r.reasons);
    assert!(r.reasons.is_empty());
    let human = r.human();
    fits_one_screen(&human);
    golden("ready.txt", &human);
    golden("ready.md", &r.markdown());
}

#[test]
fn a_short_standby_a_suspended_active_cronjob_and_an_old_backup_are_degraded() {
    let mut w = converged(3 * 3_600 + 5 * 60);
    w.set("region.eu-west-1.compute.nodes[0]", "state", "terminated".into());
    w.set("region.us-east-1.backup_job.database", "suspend", true.into());
    // Route 53 still routes on it: 3 of 16 (18.75%) is healthy, as it counts.
    w.health.insert(
        "eu-west-1".into(),
        Ok(Checkers { checkers: 16, healthy: 3, failing: Some("Failure: HTTP 503".into()) }),
    );
    let r = w.report();
    assert_eq!(r.verdict, Verdict::Degraded);
    let subjects: Vec<&str> = r.reasons.iter().map(|r| r.subject.as_str()).collect();
    assert_eq!(subjects, ["active us-east-1", "standby eu-west-1", "backup database"], "{:#?}", r.reasons);
    assert!(r.reasons.iter().all(|r| r.verdict == Verdict::Degraded));
    let human = r.human();
    fits_one_screen(&human);
    golden("degraded.txt", &human);
    golden("degraded.json", &r.to_json());
}

#[test]
fn an_unhealthy_active_region_and_no_standby_to_take_over_are_not_ready() {
    let mut w = converged(10 * 60);
    w.health.insert(
        "us-east-1".into(),
        Ok(Checkers { checkers: 16, healthy: 2, failing: Some("Failure: timeout".into()) }),
    );
    w.health.insert("eu-west-1".into(), Ok(Checkers { checkers: 16, healthy: 0, failing: None }));
    w.live.unreachable.insert("asia-pacific-1".into(), "context `apac`: connection refused".into());
    let r = w.report();
    assert_eq!(r.verdict, Verdict::NotReady);
    let first: Vec<(Verdict, &str)> = r.reasons.iter().map(|r| (r.verdict, r.subject.as_str())).collect();
    assert_eq!(
        first,
        [
            (Verdict::NotReady, "active us-east-1"),
            (Verdict::NotReady, "failover"),
            (Verdict::Degraded, "standby eu-west-1"),
            (Verdict::Degraded, "cold asia-pacific-1"),
        ]
    );
    let human = r.human();
    fits_one_screen(&human);
    golden("not-ready.txt", &human);
}

/// The verdict needs no drill: a region never drilled shows "never" and costs nothing today.
#[test]
fn the_drill_slot_is_empty_until_drills_are_recorded() {
    let w = converged(60);
    assert!(w.report().regions.iter().all(|r| r.last_drill.is_none()));
    assert!(w.report().human().contains("never"));
}

/// What a person would miss by looking at one region: a record pointing elsewhere than the
/// configuration says, a standby's backup CronJob running beside the active one's, a region
/// still owed its fence, a destination that cannot be read.
#[test]
fn records_a_second_backup_writer_a_pending_fence_and_an_unreadable_destination_are_degraded() {
    let mut w = converged(5 * 60);
    w.set("dns.api.bot-core.com.secondary", "serves", "asia-pacific-1".into());
    w.set("region.eu-west-1.backup_job.database", "suspend", false.into());
    w.prior.lost.insert(
        "asia-pacific-1".into(),
        drplan_core::plan::Lost { since: "2026-11-30T08:00:00Z".into(), owed: vec!["x".into()] },
    );
    let secondary = address::bucket("database", "secondary");
    w.live.points.get_mut(&secondary).unwrap().unreachable = Some("storage.googleapis.com: timed out".into());
    w.health.insert("eu-west-1".into(), Err("GetHealthCheckStatus: throttled".into()));
    let r = w.report();
    assert_eq!(r.verdict, Verdict::Degraded);
    let details: Vec<String> = r.reasons.iter().map(|r| format!("{}: {}", r.subject, r.detail)).collect();
    assert_eq!(
        details,
        [
            "standby eu-west-1: its health check's status could not be read: GetHealthCheckStatus: throttled",
            "standby eu-west-1: backup CronJob drplan-backup-database is not suspended: two regions write backups",
            "region asia-pacific-1: declared lost 2026-11-30T08:00:00Z: its fence is pending (1 action(s) owed)",
            "dns SECONDARY: points at asia-pacific-1, the configuration says eu-west-1",
            "backup database: destination secondary is unreachable: storage.googleapis.com: timed out",
        ]
    );
    // The newest usable point still counts from the destination that answered.
    assert_eq!(r.backups[0].within_rpo, Some(true));
}
