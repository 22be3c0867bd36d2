//! Recovery points in S3 against moto: listed with a delimiter (one common prefix per
//! point, so 2,000 points cost two list calls however many objects they hold), read with
//! one listing and one manifest GetObject, and verified against the objects' ETags.

use crate::common;

use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use drplan_core::plan::resource::Kind;
use drplan_core::plan::{Resource, desired};
use drplan_core::provider::{ErrorClass, Provider};
use drplan_core::recovery::{PointFormat, PointStatus, verify};
use drplan_provider_aws::AwsProvider;
use md5::{Digest, Md5};

use common::{Env, moto};

const BUCKET: &str = "shop-backups";
const MANIFEST: &str = "manifest.json";

fn hex_md5(bytes: &[u8]) -> String {
    Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The manifest a backup script writes for `objects` (name, content).
fn manifest(objects: &[(&str, &[u8])]) -> Vec<u8> {
    let entries: Vec<serde_json::Value> = objects
        .iter()
        .map(|(name, content)| serde_json::json!({"name": name, "size": content.len(), "md5": hex_md5(content)}))
        .collect();
    serde_json::to_vec(&serde_json::json!({"format": 1, "created": "2026-12-01T07:00:00Z", "objects": entries}))
        .expect("a manifest")
}

/// The configuration's S3 destination, as the engine passes it.
fn destination(env: &Env) -> (drplan_core::config::Config, Resource) {
    let config = env.config("us-east-1", "eu-west-1");
    let bucket = desired::desired(&config).into_iter().find(|r| r.kind == Kind::Bucket).expect("a bucket");
    (config, bucket)
}

async fn create_bucket(s3: &Client) {
    common::create_bucket(s3, BUCKET, "eu-west-1").await;
}

async fn put(s3: &Client, key: String, content: Vec<u8>) {
    common::put_object(s3, BUCKET, &key, content).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_are_verified_against_their_manifests() {
    let env = moto().await;
    let (config, bucket) = destination(&env);
    let (provider, _) = env.provider(&config);
    let s3 = env.s3("eu-west-1");
    create_bucket(&s3).await;
    let dump: &[u8] = b"-- pg_dump, encrypted";
    let wal: &[u8] = b"wal segment";
    let files = [("database.dump.gpg", dump), ("wal/000001.gpg", wal)];
    for point in ["20261201_070000", "20261201_080000", "20261201_090000", "20261201_100000"] {
        for (name, content) in files {
            put(&s3, format!("dr/{point}/{name}"), content.to_vec()).await;
        }
    }
    // 07:00 and 08:00 and 09:00 finished (manifest last); 10:00 never did.
    for point in ["20261201_070000", "20261201_080000", "20261201_090000"] {
        put(&s3, format!("dr/{point}/{MANIFEST}"), manifest(&files)).await;
    }
    // After the manifests: 08:00's dump rewritten with the same size, 09:00's with another.
    put(&s3, "dr/20261201_080000/database.dump.gpg".into(), b"-- pg_dump, TAMPERED!".to_vec()).await;
    put(&s3, "dr/20261201_090000/database.dump.gpg".into(), b"-- shorter".to_vec()).await;
    // Not a point: an object directly under the prefix.
    put(&s3, "dr/README".into(), b"backups".to_vec()).await;

    let (mut names, calls) = provider.list_points(&bucket).await.expect("ListObjectsV2");
    names.sort();
    assert_eq!(names, ["20261201_070000", "20261201_080000", "20261201_090000", "20261201_100000"]);
    assert_eq!(calls, 1);
    let format = PointFormat::default();
    assert!(names.iter().all(|n| format.time_of(n).is_some()));

    let read = |point: &'static str| {
        let (provider, bucket) = (&provider, &bucket);
        async move { provider.read_point(bucket, point, Some(MANIFEST)).await.expect("read_point") }
    };
    let good = read("20261201_070000").await;
    let mut listed: Vec<&str> = good.objects.iter().map(|o| o.name.as_str()).collect();
    listed.sort();
    assert_eq!(listed, ["database.dump.gpg", MANIFEST, "wal/000001.gpg"], "nested objects by relative path");
    let dump_meta = good.objects.iter().find(|o| o.name == "database.dump.gpg").expect("the dump");
    assert_eq!(dump_meta.md5.as_deref(), Some(hex_md5(dump).as_str()), "a single-part ETag is the MD5");
    assert_eq!(dump_meta.size, dump.len() as u64);
    assert!(dump_meta.modified > 1_700_000_000, "{}", dump_meta.modified);
    assert_eq!(good.manifest.as_deref(), Some(manifest(&files).as_slice()));
    assert_eq!(verify(&good, Some(MANIFEST)), PointStatus::Verified);
    assert_eq!(verify(&good, None), PointStatus::Unverified);

    let same_size = verify(&read("20261201_080000").await, Some(MANIFEST));
    assert!(matches!(&same_size, PointStatus::Corrupt(why) if why.contains("MD5")), "{same_size:?}");
    let resized = verify(&read("20261201_090000").await, Some(MANIFEST));
    assert!(matches!(&resized, PointStatus::Corrupt(why) if why.contains("bytes")), "{resized:?}");
    let unfinished = read("20261201_100000").await;
    assert_eq!(unfinished.manifest, None);
    assert_eq!(verify(&unfinished, Some(MANIFEST)), PointStatus::Incomplete);

    // A manifest far too large to be one is refused, not loaded.
    put(&s3, format!("dr/20261201_110000/{MANIFEST}"), vec![b' '; 4 * 1024 * 1024 + 1]).await;
    let err = provider.read_point(&bucket, "20261201_110000", Some(MANIFEST)).await.expect_err("too large");
    assert_eq!(err.class, ErrorClass::Invalid);
    assert!(err.to_string().contains("more than a manifest holds"), "{err}");
    assert!(!err.to_string().contains('\n'), "{err}");
}

/// Points in the test at scale and the objects in each.
const POINTS: usize = 2_000;
const OBJECTS_PER_POINT: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_points_cost_two_listings_and_the_newest_one_listing_and_one_read() {
    let env = moto().await;
    let (config, bucket) = destination(&env);
    let (provider, recorder) = env.provider(&config);
    let s3 = env.s3("eu-west-1");
    create_bucket(&s3).await;
    let format = PointFormat::default();
    let start = format.time_of("20260101_000000").expect("a time");
    // Hourly points; the newest carries a manifest.
    let names: Vec<String> = (0..POINTS).map(|i| format.name_at(start + 3_600 * i as i64).expect("a name")).collect();
    let newest = names.last().expect("points").clone();
    let seeding = Instant::now();
    let mut objects: Vec<(String, String)> = Vec::with_capacity(POINTS * OBJECTS_PER_POINT);
    for name in &names {
        for j in 0..OBJECTS_PER_POINT - 1 {
            objects.push((format!("dr/{name}/part-{j:02}"), format!("{name} {j}")));
        }
    }
    let entries: Vec<(String, Vec<u8>)> =
        (0..OBJECTS_PER_POINT - 1).map(|j| (format!("part-{j:02}"), format!("{newest} {j}").into_bytes())).collect();
    let entries: Vec<(&str, &[u8])> = entries.iter().map(|(n, c)| (n.as_str(), c.as_slice())).collect();
    let newest_manifest = String::from_utf8(manifest(&entries)).expect("JSON is text");
    for name in &names {
        let content = if *name == newest { newest_manifest.clone() } else { "{}".to_owned() };
        objects.push((format!("dr/{name}/{MANIFEST}"), content));
    }
    // 40,000 PutObjects cost moto about 100 s; put straight into its backend, the objects
    // are the same (moto computes their ETags and times either way).
    let moto = &env.moto;
    tokio::task::block_in_place(|| moto.seed_objects(BUCKET, &objects)).expect("seeding moto");
    let seeded = seeding.elapsed();

    let before = recorder.count();
    let listing = Instant::now();
    let (mut listed, calls) = provider.list_points(&bucket).await.expect("ListObjectsV2");
    let listed_in = listing.elapsed();
    let sent = recorder.since(before);
    listed.sort();
    assert_eq!(listed.len(), POINTS);
    assert_eq!(listed, names);
    assert!(calls <= 3, "{calls} list calls for {POINTS} points");
    assert_eq!(sent.len() as u32, calls, "the returned count is what was sent: {sent:?}");
    assert!(sent.iter().all(|r| r.contains("list-type=2") && r.contains("delimiter=")), "{sent:?}");

    let before = recorder.count();
    let reading = Instant::now();
    let contents = provider.read_point(&bucket, &newest, Some(MANIFEST)).await.expect("read_point");
    let read_in = reading.elapsed();
    let sent = recorder.since(before);
    assert_eq!(contents.objects.len(), OBJECTS_PER_POINT);
    assert_eq!(verify(&contents, Some(MANIFEST)), PointStatus::Verified);
    let lists = sent.iter().filter(|r| r.contains("list-type=2")).count();
    let gets = sent.iter().filter(|r| r.starts_with("GET") && r.contains(MANIFEST)).count();
    assert_eq!((lists, gets, sent.len()), (1, 1, 2), "{sent:?}");
    eprintln!(
        "{POINTS} points x {OBJECTS_PER_POINT} objects: seeded in {seeded:?}; listed in {calls} calls, {listed_in:?}; \
         newest read in {} calls, {read_in:?}",
        sent.len()
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_is_reported_quickly() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
    let config = common::load(&common::shop_hcl(&format!("http://{closed}"), "us-east-1", "eu-west-1"));
    let bucket = desired::desired(&config).into_iter().find(|r| r.kind == Kind::Bucket).expect("a bucket");
    let sdk = drplan_provider_aws::sdk_config(Some(&format!("http://{closed}")), "us-east-1")
        .await
        .to_builder()
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(aws_sdk_s3::config::Credentials::new(
            "t", "t", None, None, "test",
        )))
        .build();
    let provider = AwsProvider::with_sdk_config(&config, &sdk, Vec::new());
    let started = Instant::now();
    let err = provider.list_points(&bucket).await.expect_err("nothing listens there");
    assert_eq!(err.class, ErrorClass::Unreachable, "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert_eq!(err.address.as_deref(), Some(bucket.address.as_str()));
    assert!(err.to_string().contains("ListObjectsV2 shop-backups/dr/: the connection was refused"), "{err}");
    let err = provider.read_point(&bucket, "20261201_070000", Some(MANIFEST)).await.expect_err("down");
    assert_eq!(err.class, ErrorClass::Unreachable, "{err}");
}

/// Puts `content` at `key` in storage class `class`, as `aws s3 cp --storage-class` does.
async fn put_in_class(s3: &Client, key: &str, content: &[u8], class: &str) {
    s3.put_object()
        .bucket(BUCKET)
        .key(key)
        .storage_class(class.into())
        .body(content.to_vec().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutObject {key}: {}", aws_sdk_s3::error::DisplayErrorContext(&e)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archived_points_are_judged_by_their_listing_and_never_read_before_a_thaw() {
    let env = moto().await;
    let (config, bucket) = destination(&env);
    let (provider, _) = env.provider(&config);
    let s3 = env.s3("eu-west-1");
    create_bucket(&s3).await;
    let dump: &[u8] = b"-- pg_dump, encrypted";
    let files = [("database.dump.gpg", dump)];
    // 07:00: everything GLACIER, the manifest too. 08:00: the dump GLACIER, the manifest
    // readable. 09:00: the manifest readable, and vouching for a dump of another size.
    put_in_class(&s3, "dr/20261201_070000/database.dump.gpg", dump, "GLACIER").await;
    put_in_class(&s3, "dr/20261201_070000/manifest.json", &manifest(&files), "GLACIER").await;
    put_in_class(&s3, "dr/20261201_080000/database.dump.gpg", dump, "DEEP_ARCHIVE").await;
    put_in_class(&s3, "dr/20261201_080000/manifest.json", &manifest(&files), "STANDARD").await;
    put_in_class(&s3, "dr/20261201_090000/database.dump.gpg", b"-- other", "GLACIER").await;
    put_in_class(&s3, "dr/20261201_090000/manifest.json", &manifest(&files), "STANDARD").await;

    let read = |point: &'static str| provider.read_point(&bucket, point, Some(MANIFEST));
    let sealed = read("20261201_070000").await.expect("an archived point is read from its listing");
    assert!(sealed.manifest_archived && sealed.manifest.is_none(), "{sealed:?}");
    assert_eq!(verify(&sealed, Some(MANIFEST)), PointStatus::Archived);
    assert_eq!(sealed.archived().as_deref(), Some("GLACIER"));
    let open = read("20261201_080000").await.expect("read");
    assert_eq!(verify(&open, Some(MANIFEST)), PointStatus::Verified, "sizes and ETags from the listing");
    assert_eq!(open.archived().as_deref(), Some("DEEP_ARCHIVE"));
    let damaged = read("20261201_090000").await.expect("read");
    assert!(matches!(verify(&damaged, Some(MANIFEST)), PointStatus::Corrupt(why) if why.contains("bytes")));

    // Once thawed, the manifest is read again.
    s3.restore_object()
        .bucket(BUCKET)
        .key("dr/20261201_070000/manifest.json")
        .restore_request(aws_sdk_s3::types::RestoreRequest::builder().days(1).build())
        .send()
        .await
        .expect("RestoreObject");
    let thawed = read("20261201_070000").await.expect("read");
    assert!(!thawed.manifest_archived && thawed.manifest.is_some(), "{thawed:?}");

    // What GetObject of an archived object answers is said as what it is.
    let err = s3.get_object().bucket(BUCKET).key("dr/20261201_080000/database.dump.gpg").send().await.unwrap_err();
    let e = drplan_provider_aws::error::sdk_error("GetObject", &err);
    assert_eq!(e.class, ErrorClass::Conflict, "{e}");
    assert!(e.message.contains("InvalidObjectState") && !e.cause().contains("denied"), "{e}");
}
