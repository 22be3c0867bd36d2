//! The newest backup's age reads every page of the listing: S3 lists keys in name order, so
//! with more than a page of objects under the prefix the newest may be on the last page.

use crate::common;

use common::moto;

/// Between the first page's backups and the newest: longer than any refresh takes, so the
/// two ages cannot overlap even on a loaded machine.
const GAP: std::time::Duration = std::time::Duration::from_secs(8);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_backup_is_found_past_the_first_page() {
    let env = moto().await;
    let config = env.config("us-east-1", "eu-west-1");
    let (provider, recorder) = env.provider(&config);
    let s3 = env.s3("eu-west-1");
    common::create_bucket(&s3, "shop-backups", "eu-west-1").await;
    let put = |key: String| {
        let s3 = s3.clone();
        async move { common::put_object(&s3, "shop-backups", &key, b"backup".to_vec()).await }
    };
    // A full first page of older backups, all sorting before the newest one.
    for chunk in (0..1_000).collect::<Vec<u32>>().chunks(50) {
        let mut puts = tokio::task::JoinSet::new();
        for i in chunk {
            puts.spawn(put(format!("dr/0-old-{i:04}.sql.gpg")));
        }
        puts.join_all().await;
    }
    let old_written = std::time::Instant::now();
    tokio::time::sleep(GAP).await;
    put("dr/db-newest.sql.gpg".into()).await;

    let before = recorder.count();
    let refreshing = std::time::Instant::now();
    let age =
        common::refresh(&provider, &config).await.newest_backup_age.get("backup.database.destination.primary").copied();
    // Ages are whole seconds: an old backup is at least this old, whatever the machine's load.
    let oldest_possible_for_old = refreshing.duration_since(old_written).as_secs().saturating_sub(1);
    assert!(
        age.is_some_and(|a| a < oldest_possible_for_old),
        "the newest backup is the one written {GAP:?} after the others: {age:?}, the others at least {oldest_possible_for_old}s"
    );
    let listings = recorder.since(before).into_iter().filter(|r| r.contains("list-type=2")).count();
    assert_eq!(listings, 2, "two pages, no more");
}
