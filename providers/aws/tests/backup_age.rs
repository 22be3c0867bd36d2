//! The newest backup's age reads every page of the listing: S3 lists keys in name order, so
//! with more than a page of objects under the prefix the newest may be on the last page.

mod common;

use common::moto;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_backup_is_found_past_the_first_page() {
    let env = moto().await;
    let config = env.config("us-east-1", "eu-west-1");
    let (provider, recorder) = env.provider(&config);
    let s3 = env.s3("eu-west-1");
    s3.create_bucket()
        .bucket("shop-backups")
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .expect("CreateBucket");
    let put = |key: String| {
        let s3 = s3.clone();
        async move {
            s3.put_object()
                .bucket("shop-backups")
                .key(key)
                .body(b"backup".to_vec().into())
                .send()
                .await
                .expect("PutObject")
        }
    };
    // A full first page of older backups, all sorting before the newest one.
    for chunk in (0..1_000).collect::<Vec<u32>>().chunks(50) {
        let mut puts = tokio::task::JoinSet::new();
        for i in chunk {
            puts.spawn(put(format!("dr/0-old-{i:04}.sql.gpg")));
        }
        puts.join_all().await;
    }
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    put("dr/db-newest.sql.gpg".into()).await;

    let before = recorder.count();
    let age =
        common::refresh(&provider, &config).await.newest_backup_age.get("backup.database.destination.primary").copied();
    // From the first page alone, the newest would be at least four seconds old.
    assert!(age.is_some_and(|a| a < 3), "the newest backup is the one just written: {age:?}");
    let listings = recorder.since(before).into_iter().filter(|r| r.contains("list-type=2")).count();
    assert_eq!(listings, 2, "two pages, no more");
}
