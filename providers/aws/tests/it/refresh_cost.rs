//! A refresh costs the same number of requests whatever the number of instances: one
//! tag-filtered DescribeInstances per region, never one call per instance.

use crate::common;

use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
use drplan_core::plan::Prior;

use common::{AMI, ZONE, converge, moto, refresh};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_requests_do_not_grow_with_instances() {
    let env = moto().await;
    env.create_zone(ZONE).await;
    let config = env.config("us-east-1", "eu-west-1");
    let (provider, recorder) = env.provider(&config);
    converge(&provider, &config, &mut Prior::default(), "deploy", usize::MAX).await;

    let ec2 = env.ec2("us-east-1");
    // Extra pool members launched outside drplan, each with its own index: 2 desired + 3.
    let launch = |count: i32| {
        ec2.run_instances()
            .image_id(AMI)
            .instance_type(InstanceType::T3Micro)
            .min_count(count)
            .max_count(count)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .tags(Tag::builder().key("drplan:project").value("shop").build())
                    .tags(Tag::builder().key("drplan:region").value("us-east-1").build())
                    .tags(Tag::builder().key("drplan:pool").value("bulk").build())
                    .build(),
            )
            .send()
    };
    // One CreateTags per instance (each index differs), a few streams at a time.
    let index_from = |ids: Vec<String>, first: usize| {
        let ec2 = ec2.clone();
        async move {
            let mut tasks = tokio::task::JoinSet::new();
            for (worker, chunk) in ids.chunks(ids.len().div_ceil(4).max(1)).enumerate() {
                let (ec2, chunk) = (ec2.clone(), chunk.to_vec());
                let offset = first + worker * ids.len().div_ceil(4).max(1);
                tasks.spawn(async move {
                    for (n, id) in chunk.iter().enumerate() {
                        ec2.create_tags()
                            .resources(id)
                            .tags(Tag::builder().key("drplan:index").value((offset + n).to_string()).build())
                            .send()
                            .await
                            .expect("CreateTags");
                    }
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.expect("tagging task");
            }
        }
    };
    let ids = |out: aws_sdk_ec2::operation::run_instances::RunInstancesOutput| -> Vec<String> {
        out.instances().iter().filter_map(|i| i.instance_id().map(str::to_owned)).collect()
    };
    index_from(ids(launch(3).await.expect("RunInstances")), 0).await;

    let start = recorder.count();
    let small = refresh(&provider, &config).await;
    let small_requests = recorder.since(start);
    let small_instances = small.objects.keys().filter(|a| a.starts_with("region.us-east-1.compute.")).count();
    assert_eq!(small_instances, 5);

    index_from(ids(launch(495).await.expect("RunInstances")), 3).await;
    let start = recorder.count();
    let large = refresh(&provider, &config).await;
    let large_requests = recorder.since(start);
    let large_instances = large.objects.keys().filter(|a| a.starts_with("region.us-east-1.compute.")).count();
    assert_eq!(large_instances, 500);

    let ec2_calls = |r: &[String]| r.iter().filter(|l| l.as_str() == "DescribeInstances").count();
    println!(
        "refresh requests: {} with {small_instances} instances in us-east-1, {} with {large_instances}; \
         DescribeInstances: {} and {}; requests: {small_requests:?}",
        small_requests.len(),
        large_requests.len(),
        ec2_calls(&small_requests),
        ec2_calls(&large_requests),
    );
    assert_eq!(small_requests.len(), large_requests.len(), "{small_requests:#?}\n{large_requests:#?}");
    // One per region.
    assert_eq!(ec2_calls(&large_requests), 2, "{large_requests:#?}");
}
