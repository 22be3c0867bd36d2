//! The fake's recovery points: what a store would list and read, for engine tests.

use drplan_core::plan::resource::{Kind, Resource, attrs};
use drplan_core::provider::{ErrorClass, Provider};
use drplan_core::recovery::{PointStatus, verify};
use drplan_provider_fake::FakeProvider;

const DEST: &str = "backup.db.destination.s3";

fn bucket(prefix: &str) -> Resource {
    Resource {
        address: DEST.into(),
        kind: Kind::Bucket,
        region: None,
        attrs: attrs([("cloud", "aws".into()), ("bucket", "b".into()), ("prefix", prefix.into())]),
    }
}

#[tokio::test]
async fn points_are_listed_read_and_verified() {
    let fake = FakeProvider::everything();
    let manifest = br#"{"format": 1, "objects": [{"name": "db.dump", "size": 5, "md5": "aa"}]}"#;
    fake.put_object(DEST, "dr/20261201_070000/db.dump", b"12345", Some("aa"), 100);
    fake.put_object(DEST, "dr/20261201_070000/manifest.json", manifest, None, 101);
    fake.put_object(DEST, "dr/20261201_080000/db.dump", b"12345", Some("aa"), 200);
    fake.put_object(DEST, "other/20261201_090000/db.dump", b"x", None, 300);
    fake.put_object(DEST, "dr/loose-file", b"x", None, 300);

    for prefix in ["dr/", "dr"] {
        let (names, calls) = fake.list_points(&bucket(prefix)).await.expect("list");
        assert_eq!(names, ["20261201_070000", "20261201_080000"]);
        assert_eq!(calls, 1);
    }
    let complete = fake.read_point(&bucket("dr/"), "20261201_070000", Some("manifest.json")).await.expect("read");
    assert_eq!(complete.objects.len(), 2);
    assert_eq!(complete.manifest.as_deref(), Some(&manifest[..]));
    assert_eq!(verify(&complete, Some("manifest.json")), PointStatus::Verified);
    let partial = fake.read_point(&bucket("dr/"), "20261201_080000", Some("manifest.json")).await.expect("read");
    assert_eq!(verify(&partial, Some("manifest.json")), PointStatus::Incomplete);

    fake.put_object(DEST, "dr/20261201_070000/db.dump", b"123456", Some("aa"), 150);
    let tampered = fake.read_point(&bucket("dr/"), "20261201_070000", Some("manifest.json")).await.expect("read");
    assert!(matches!(verify(&tampered, Some("manifest.json")), PointStatus::Corrupt(_)));

    fake.inject(DEST, &[ErrorClass::Unreachable]);
    let down = fake.list_points(&bucket("dr/")).await.expect_err("an injected fault");
    assert_eq!(down.class, ErrorClass::Unreachable);
    assert!(fake.calls().iter().any(|c| c == &format!("read_point {DEST} 20261201_080000")));
}
