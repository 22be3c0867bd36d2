//! Recovery points in Cloud Storage against gcplocal: listed with a delimiter (`prefixes`,
//! paginated), read with one listing and one `alt=media` manifest download, verified
//! against `md5Hash` and `crc32c`; an endpoint that does not answer is unreachable.

use crate::common;

use std::time::{Duration, Instant};

use drplan_core::config::Config;
use drplan_core::plan::resource::{Kind, Resource};
use drplan_core::provider::{ErrorClass, Provider};
use drplan_core::recovery::{PointFormat, PointStatus, verify};
use drplan_harness::{Emulator, Running};
use drplan_provider_fake::kit::{self, Backup, Region, Topology};
use drplan_provider_gcp::GcpProvider;
use md5::{Digest, Md5};

const BUCKET: &str = "shop-backups-apac";
const MANIFEST: &str = "manifest.json";

fn configuration(endpoint: &str) -> Config {
    Topology::new("shop")
        .gcp("dr-test", endpoint)
        .region(Region::gcp("apac", "active", "asia-east1-a"))
        .backup(Backup::new("db", "0 * * * *", "14d", "backup:1").full().gcs(
            "offsite",
            BUCKET,
            "db/",
            "asia-east1",
            None,
        ))
        .load()
}

async fn setup(url: &str) -> (GcpProvider, Resource) {
    let config = configuration(url);
    let provider = common::provider(&config).await;
    let bucket = kit::desired_of(&config, Kind::Bucket, None);
    (provider, bucket)
}

async fn create_bucket(http: &reqwest::Client, url: &str) {
    let created = http
        .post(format!("{url}/storage/v1/b?project=dr-test"))
        .json(&serde_json::json!({"name": BUCKET, "location": "asia-east1"}))
        .send()
        .await
        .expect("bucket insert");
    assert!(created.status().is_success(), "{}", created.status());
}

async fn upload(http: &reqwest::Client, url: &str, key: &str, content: &[u8]) {
    let answer = http
        .post(format!("{url}/upload/storage/v1/b/{BUCKET}/o"))
        .query(&[("uploadType", "media"), ("name", key)])
        .body(content.to_vec())
        .send()
        .await
        .unwrap_or_else(|e| panic!("upload {key}: {e}"));
    assert!(answer.status().is_success(), "upload {key}: {}", answer.status());
}

fn hex_md5(bytes: &[u8]) -> String {
    Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// CRC32C (Castagnoli), base64 of the big-endian value, as Cloud Storage writes it.
fn crc32c(bytes: &[u8]) -> String {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    let digits = (!crc).to_be_bytes();
    // Four bytes are 6 base64 characters and `==`.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let n = u32::from_be_bytes(digits);
    let sextets = [n >> 26, n >> 20, n >> 14, n >> 8, n >> 2, n << 4];
    let mut out: String = sextets.iter().map(|s| ALPHABET[(s & 63) as usize] as char).collect();
    out.push_str("==");
    out
}

fn manifest(objects: &[(&str, &[u8])]) -> Vec<u8> {
    let entries: Vec<serde_json::Value> = objects
        .iter()
        .map(|(n, c)| serde_json::json!({"name": n, "size": c.len(), "md5": hex_md5(c), "crc32c": crc32c(c)}))
        .collect();
    serde_json::to_vec(&serde_json::json!({"format": 1, "objects": entries})).expect("a manifest")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_are_verified_against_md5_hash_and_crc32c() {
    let gcp = Running::start(Emulator::Gcplocal).expect("gcplocal should start");
    let (provider, bucket) = setup(gcp.url()).await;
    let http = reqwest::Client::new();
    create_bucket(&http, gcp.url()).await;
    let dump: &[u8] = b"-- pg_dump, encrypted";
    let files = [("database.dump.gpg", dump), ("wal/000001.gpg", b"wal segment".as_slice())];
    for point in ["20261201_070000", "20261201_080000", "20261201_090000"] {
        for (name, content) in files {
            upload(&http, gcp.url(), &format!("db/{point}/{name}"), content).await;
        }
    }
    for point in ["20261201_070000", "20261201_080000"] {
        upload(&http, gcp.url(), &format!("db/{point}/{MANIFEST}"), &manifest(&files)).await;
    }
    // Rewritten after its manifest, same size.
    upload(&http, gcp.url(), "db/20261201_080000/database.dump.gpg", b"-- pg_dump, TAMPERED!").await;

    let (mut names, calls) = provider.list_points(&bucket).await.expect("objects.list");
    names.sort();
    assert_eq!(names, ["20261201_070000", "20261201_080000", "20261201_090000"]);
    assert_eq!(calls, 1);

    let good = provider.read_point(&bucket, "20261201_070000", Some(MANIFEST)).await.expect("read_point");
    let meta = good.objects.iter().find(|o| o.name == "database.dump.gpg").expect("the dump");
    assert_eq!(meta.md5.as_deref(), Some(hex_md5(dump).as_str()), "md5Hash decoded to hex");
    assert_eq!(meta.crc32c.as_deref(), Some(crc32c(dump).as_str()));
    assert!(good.objects.iter().any(|o| o.name == "wal/000001.gpg"), "nested objects by relative path");
    assert!(meta.modified > 1_700_000_000, "{}", meta.modified);
    assert_eq!(good.manifest.as_deref(), Some(manifest(&files).as_slice()));
    assert_eq!(verify(&good, Some(MANIFEST)), PointStatus::Verified);

    let tampered = provider.read_point(&bucket, "20261201_080000", Some(MANIFEST)).await.expect("read_point");
    let status = verify(&tampered, Some(MANIFEST));
    assert!(matches!(&status, PointStatus::Corrupt(why) if why.contains("MD5")), "{status:?}");
    let unfinished = provider.read_point(&bucket, "20261201_090000", Some(MANIFEST)).await.expect("read_point");
    assert_eq!(verify(&unfinished, Some(MANIFEST)), PointStatus::Incomplete);
}

const POINTS: usize = 1_100;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn more_than_a_page_of_points_costs_two_listings() {
    let gcp = Running::start(Emulator::Gcplocal).expect("gcplocal should start");
    let (provider, bucket) = setup(gcp.url()).await;
    let http = reqwest::Client::new();
    create_bucket(&http, gcp.url()).await;
    let format = PointFormat::default();
    let start = format.time_of("20260101_000000").expect("a time");
    let names: Vec<String> = (0..POINTS).map(|i| format.name_at(start + 3_600 * i as i64).expect("a name")).collect();
    let newest = names.last().expect("points").clone();
    let dump = |name: &str| format!("dump of {name}").into_bytes();
    let mut uploads: Vec<(String, Vec<u8>)> = Vec::new();
    for name in &names {
        uploads.push((format!("db/{name}/database.dump.gpg"), dump(name)));
        uploads.push((format!("db/{name}/base/backup_label"), b"label".to_vec()));
        let d = dump(name);
        uploads.push((format!("db/{name}/{MANIFEST}"), manifest(&[("database.dump.gpg", &d)])));
    }
    let seeding = Instant::now();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(uploads));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (http, url, queue) = (http.clone(), gcp.url().to_owned(), std::sync::Arc::clone(&queue));
        workers.spawn(async move {
            loop {
                let next = queue.lock().unwrap().pop();
                let Some((key, content)) = next else { break };
                upload(&http, &url, &key, &content).await;
            }
        });
    }
    workers.join_all().await;
    let seeded = seeding.elapsed();

    let before = provider.api_calls();
    let (mut listed, calls) = provider.list_points(&bucket).await.expect("objects.list");
    listed.sort();
    assert_eq!(listed, names);
    assert_eq!((calls, provider.api_calls() - before), (2, 2), "1,000 prefixes a page");

    let before = provider.api_calls();
    let newest_point = provider.read_point(&bucket, &newest, Some(MANIFEST)).await.expect("read_point");
    assert_eq!(newest_point.objects.len(), 3);
    assert_eq!(verify(&newest_point, Some(MANIFEST)), PointStatus::Verified);
    assert_eq!(provider.api_calls() - before, 2, "one listing, one manifest download");
    eprintln!("{POINTS} points x 3 objects on gcplocal: seeded in {seeded:?}, listed in {calls} calls");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_reported_quickly() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
    let (provider, bucket) = setup(&format!("http://{closed}")).await;
    let started = Instant::now();
    let err = provider.list_points(&bucket).await.expect_err("nothing listens there");
    assert_eq!(err.class, ErrorClass::Unreachable, "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert_eq!(err.address.as_deref(), Some(bucket.address.as_str()));
    assert!(!err.to_string().contains('\n'), "{err}");
}
