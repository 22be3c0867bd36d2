//! EC2 instances of compute pools: one tag-filtered DescribeInstances per region, and the
//! run/start/stop/terminate calls that converge a pool.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, Instance, InstanceStateName, InstanceType, ResourceType, Tag, TagSpecification};
use drplan_core::plan::resource::{Kind, address, attrs};
use drplan_core::plan::{Action, Attrs, Observed, Resource, Value};
use drplan_core::provider::{ApplyRequest, ErrorClass, ProviderError};

use drplan_retry::RetryPolicy;

use crate::client::send;
use crate::{TAG_INDEX, TAG_POOL, TAG_PROJECT, TAG_REGION};

/// Page size of DescribeInstances: the largest EC2 allows, so a region is one request.
const PAGE: i32 = 1000;

/// Refreshes every region concurrently; each result stands alone so one unreachable region
/// does not hide the others.
pub async fn refresh_regions(
    regions: Vec<(String, Client)>,
    project: &str,
) -> Vec<(String, Result<Vec<Observed>, ProviderError>)> {
    let mut tasks = tokio::task::JoinSet::new();
    for (region, client) in regions {
        let project = project.to_owned();
        tasks.spawn(async move {
            let started = std::time::Instant::now();
            let result = refresh_region(&client, &region, &project).await;
            match &result {
                Ok(objects) => tracing::debug!(
                    region = %region,
                    instances = objects.len(),
                    elapsed = ?started.elapsed(),
                    "ec2 region refreshed"
                ),
                Err(e) => tracing::debug!(
                    region = %region,
                    elapsed = ?started.elapsed(),
                    error = %e,
                    "ec2 region refresh failed"
                ),
            }
            (region, result)
        });
    }
    let mut out = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(r) => out.push(r),
            Err(e) => out.push((
                String::new(),
                Err(ProviderError::new(ErrorClass::Failed, format!("a region refresh stopped: {e}"))),
            )),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// All of the project's instances in `region`, by address. Terminated ones are gone for
/// every purpose and left out; when two live instances claim one address (a replacement
/// in progress) the running one wins.
pub async fn refresh_region(client: &Client, region: &str, project: &str) -> Result<Vec<Observed>, ProviderError> {
    let instances = describe(client, vec![tag_filter(TAG_PROJECT, project)], &format!("region {region}")).await?;
    let mut by_address: std::collections::BTreeMap<String, Observed> = std::collections::BTreeMap::new();
    for i in &instances {
        let Some(o) = observe(i, region, project) else { continue };
        if o.resource.str("state") == Some("terminated") {
            continue;
        }
        let keep_old =
            by_address.get(&o.resource.address).is_some_and(|old| old.resource.str("state") == Some("running"));
        if !keep_old {
            by_address.insert(o.resource.address.clone(), o);
        }
    }
    Ok(by_address.into_values().collect())
}

fn tag_filter(key: &str, value: &str) -> Filter {
    Filter::builder().name(format!("tag:{key}")).values(value).build()
}

/// Every instance matching `filters`, following pages.
async fn describe(client: &Client, filters: Vec<Filter>, what: &str) -> Result<Vec<Instance>, ProviderError> {
    // Page by page rather than through the SDK's paginator, so that each page is retried
    // on its own.
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = send(&RetryPolicy::DEFAULT, &format!("DescribeInstances in {what}"), || {
            client
                .describe_instances()
                .set_filters(Some(filters.clone()))
                .max_results(PAGE)
                .set_next_token(token.clone())
                .send()
        })
        .await?;
        token = page.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
        out.extend(page.reservations.unwrap_or_default().into_iter().flat_map(|r| r.instances.unwrap_or_default()));
        if token.is_none() {
            return Ok(out);
        }
    }
}

fn tag<'a>(i: &'a Instance, key: &str) -> Option<&'a str> {
    i.tags().iter().find(|t| t.key() == Some(key)).and_then(|t| t.value())
}

/// drplan's state word for an EC2 state: transitions count as where they are heading.
pub fn state_word(state: Option<&InstanceStateName>) -> &'static str {
    match state {
        Some(InstanceStateName::Pending | InstanceStateName::Running) => "running",
        Some(InstanceStateName::Stopping | InstanceStateName::Stopped) => "stopped",
        Some(InstanceStateName::ShuttingDown | InstanceStateName::Terminated) => "terminated",
        _ => "unknown",
    }
}

/// The instance as drplan sees it, when it carries this project's tags for `region`.
fn observe(i: &Instance, region: &str, project: &str) -> Option<Observed> {
    if tag(i, TAG_PROJECT) != Some(project) || tag(i, TAG_REGION) != Some(region) {
        return None;
    }
    let pool = tag(i, TAG_POOL)?;
    let index: u32 = tag(i, TAG_INDEX)?.parse().ok()?;
    let id = i.instance_id()?.to_owned();
    let a = attrs([
        ("cloud", "aws".into()),
        ("pool", pool.into()),
        ("index", index.into()),
        ("instance_type", i.instance_type().map(|t| t.as_str()).unwrap_or_default().into()),
        ("image", i.image_id().unwrap_or_default().into()),
        ("state", state_word(i.state().and_then(|s| s.name())).into()),
    ]);
    Some(Observed {
        resource: Resource {
            address: address::instance(region, pool, index),
            kind: Kind::Instance,
            region: Some(region.to_owned()),
            attrs: a,
        },
        id,
    })
}

fn want_str<'a>(a: &'a Attrs, name: &str) -> Result<&'a str, ProviderError> {
    match a.get(name) {
        Some(Value::Str(s)) => Ok(s),
        _ => Err(ProviderError::new(ErrorClass::Invalid, format!("the instance has no `{name}`"))),
    }
}

/// What identifies a pool member: its pool and index.
fn identity(a: &Attrs) -> Result<(String, u32), ProviderError> {
    let pool = want_str(a, "pool")?.to_owned();
    let index = match a.get("index") {
        Some(Value::Int(i)) => u32::try_from(*i).ok(),
        _ => None,
    }
    .ok_or_else(|| ProviderError::new(ErrorClass::Invalid, "the instance has no valid `index`"))?;
    Ok((pool, index))
}

/// The RunInstances request for one pool member. Built apart so its idempotency token and
/// tags can be checked without a cloud.
pub fn run_instances_request(
    client: &Client,
    project: &str,
    region: &str,
    after: &Attrs,
    token: &str,
) -> Result<aws_sdk_ec2::operation::run_instances::builders::RunInstancesFluentBuilder, ProviderError> {
    let (pool, index) = identity(after)?;
    let image = want_str(after, "image")?;
    let instance_type = want_str(after, "instance_type")?;
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    let tags = TagSpecification::builder()
        .resource_type(ResourceType::Instance)
        .tags(tag(TAG_PROJECT, project))
        .tags(tag(TAG_REGION, region))
        .tags(tag(TAG_POOL, &pool))
        .tags(tag(TAG_INDEX, &index.to_string()))
        .tags(tag("Name", &format!("{project}-{region}-{pool}-{index}")))
        .build();
    Ok(client
        .run_instances()
        .min_count(1)
        .max_count(1)
        .image_id(image)
        .instance_type(InstanceType::from(instance_type))
        .tag_specifications(tags)
        .client_token(token))
}

/// Live (not terminated) instances carrying the tags of `region`/`pool`/`index`.
async fn find_member(
    client: &Client,
    project: &str,
    region: &str,
    pool: &str,
    index: u32,
) -> Result<Vec<Observed>, ProviderError> {
    let filters = vec![
        tag_filter(TAG_PROJECT, project),
        tag_filter(TAG_REGION, region),
        tag_filter(TAG_POOL, pool),
        tag_filter(TAG_INDEX, &index.to_string()),
        Filter::builder()
            .name("instance-state-name")
            .values("pending")
            .values("running")
            .values("stopping")
            .values("stopped")
            .build(),
    ];
    let found = describe(client, filters, &format!("region {region}")).await?;
    Ok(found
        .iter()
        .filter_map(|i| observe(i, region, project))
        .filter(|o| o.resource.str("state") != Some("terminated"))
        .collect())
}

/// One instance by id; `None` when it does not exist or is terminated.
async fn by_id(client: &Client, id: &str, region: &str, project: &str) -> Result<Option<Observed>, ProviderError> {
    let out = send(&RetryPolicy::DEFAULT, &format!("DescribeInstances {id}"), || {
        client.describe_instances().instance_ids(id).send()
    })
    .await;
    let out = match out {
        Ok(out) => out,
        Err(err) => return if err.class == ErrorClass::NotFound { Ok(None) } else { Err(err) },
    };
    let found = out.reservations().iter().flat_map(|r| r.instances()).find(|i| i.instance_id() == Some(id));
    Ok(found.and_then(|i| observe(i, region, project)).filter(|o| o.resource.str("state") != Some("terminated")))
}

async fn launch(
    client: &Client,
    region: &str,
    request: &ApplyRequest<'_>,
    after: &Attrs,
) -> Result<Observed, ProviderError> {
    // The client token makes a retry of a launch whose answer was lost find that launch.
    let launch = run_instances_request(client, request.project, region, after, request.idempotency_token)?;
    let run = send(&RetryPolicy::DEFAULT, "RunInstances", || launch.clone().send()).await?;
    run.instances()
        .iter()
        .find_map(|i| observe(i, region, request.project))
        .ok_or_else(|| ProviderError::new(ErrorClass::Failed, "RunInstances answered without the launched instance"))
}

async fn terminate(client: &Client, id: &str) -> Result<(), ProviderError> {
    match send(&RetryPolicy::DEFAULT, &format!("TerminateInstances {id}"), || {
        client.terminate_instances().instance_ids(id).send()
    })
    .await
    {
        Ok(_) => Ok(()),
        Err(err) => {
            if err.class == ErrorClass::NotFound {
                Ok(())
            } else {
                Err(err)
            }
        }
    }
}

pub async fn apply(
    client: &Client,
    region: &str,
    request: &ApplyRequest<'_>,
) -> Result<Option<Observed>, ProviderError> {
    let change = request.change;
    let project = request.project;
    let not_found = || {
        ProviderError::new(
            ErrorClass::NotFound,
            format!("instance {} does not exist", change.id.as_deref().unwrap_or("?")),
        )
    };
    match change.action {
        Action::Create => {
            let after = change
                .after
                .as_ref()
                .ok_or_else(|| ProviderError::new(ErrorClass::Invalid, "a create needs attributes"))?;
            let (pool, index) = identity(after)?;
            // moto (and a crashed run whose token expired) would launch a second instance:
            // an instance with the same tags is this one.
            if let Some(existing) = find_member(client, project, region, &pool, index).await?.into_iter().next() {
                return Ok(Some(existing));
            }
            launch(client, region, request, after).await.map(Some)
        }
        Action::Replace => {
            let after = change
                .after
                .as_ref()
                .ok_or_else(|| ProviderError::new(ErrorClass::Invalid, "a replace needs attributes"))?;
            let (pool, index) = identity(after)?;
            let old = change.id.as_deref();
            // A replacement launched by a crashed run: same tags, the new image and type, another id.
            let launched = find_member(client, project, region, &pool, index).await?.into_iter().find(|o| {
                Some(o.id.as_str()) != old
                    && o.resource.str("image") == after.get("image").and_then(as_str)
                    && o.resource.str("instance_type") == after.get("instance_type").and_then(as_str)
            });
            let new = match launched {
                Some(o) => o,
                None => launch(client, region, request, after).await?,
            };
            if let Some(old) = old {
                terminate(client, old).await?;
            }
            Ok(Some(new))
        }
        Action::Update => {
            let id = change.id.as_deref().ok_or_else(not_found)?;
            let current = by_id(client, id, region, project).await?.ok_or_else(not_found)?;
            let want = change.after.as_ref().and_then(|a| a.get("state")).and_then(as_str);
            match (current.resource.str("state"), want) {
                (Some("stopped"), Some("running")) => {
                    send(&RetryPolicy::DEFAULT, &format!("StartInstances {id}"), || {
                        client.start_instances().instance_ids(id).send()
                    })
                    .await?;
                }
                (Some("running"), Some("stopped")) => {
                    send(&RetryPolicy::DEFAULT, &format!("StopInstances {id}"), || {
                        client.stop_instances().instance_ids(id).send()
                    })
                    .await?;
                }
                _ => {}
            }
            by_id(client, id, region, project).await?.ok_or_else(not_found).map(Some)
        }
        Action::Delete => {
            match change.id.as_deref() {
                Some(id) => terminate(client, id).await?,
                None => {
                    if let Some(before) = change.before.as_ref() {
                        let (pool, index) = identity(before)?;
                        for o in find_member(client, project, region, &pool, index).await? {
                            terminate(client, &o.id).await?;
                        }
                    }
                }
            }
            Ok(None)
        }
        Action::Adopt => {
            let id = change.id.as_deref().ok_or_else(not_found)?;
            by_id(client, id, region, project).await?.ok_or_else(not_found).map(Some)
        }
    }
}

fn as_str(v: &Value) -> Option<&str> {
    match v {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
    use drplan_core::provider::ErrorClass;

    use super::refresh_regions;

    /// A region whose endpoint refuses connections is reported, with a one-line reason,
    /// within the retry policy's bounded time; it does not fail the other regions.
    #[tokio::test]
    async fn a_refused_endpoint_is_unreachable() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port());
        let Ok(port) = closed else { return };
        let base = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .credentials_provider(aws_sdk_ec2::config::SharedCredentialsProvider::new(Credentials::new(
                "testing", "testing", None, None, "test",
            )))
            .build();
        let base = crate::client::with_policy(&base);
        let client = aws_sdk_ec2::Client::new(&base);
        let started = std::time::Instant::now();
        let results = refresh_regions(vec![("us-east-1".into(), client)], "p").await;
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
        assert_eq!(results.len(), 1);
        let (region, result) = &results[0];
        assert_eq!(region, "us-east-1");
        let err = result.as_ref().expect_err("nothing listens there");
        assert_eq!(err.class, ErrorClass::Unreachable, "{err}");
        assert!(err.message.starts_with("DescribeInstances in region us-east-1: "), "{}", err.message);
        assert!(!err.message.contains('\n'), "{}", err.message);
        assert!(err.message.ends_with(": the connection was refused"), "{}", err.message);
    }

    /// Serves `throttled` RequestLimitExceeded answers, then empty DescribeInstances answers;
    /// returns the endpoint and the number of requests served.
    fn throttling_server(throttled: usize) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = std::sync::Arc::clone(&served);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                crate::client::read_request(&stream);
                let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let (status, xml) = if n < throttled {
                    (
                        "503 Service Unavailable",
                        "<Response><Errors><Error><Code>RequestLimitExceeded</Code>\
                         <Message>Request limit exceeded.</Message></Error></Errors><RequestID>r</RequestID></Response>",
                    )
                } else {
                    (
                        "200 OK",
                        "<DescribeInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\
                         <requestId>r</requestId><reservationSet/></DescribeInstancesResponse>",
                    )
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                    xml.len()
                );
            }
        });
        (url, served)
    }

    fn client(endpoint: &str) -> aws_sdk_ec2::Client {
        let base = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_ec2::config::SharedCredentialsProvider::new(Credentials::new(
                "testing", "testing", None, None, "test",
            )))
            .build();
        aws_sdk_ec2::Client::new(&crate::client::with_policy(&base))
    }

    #[tokio::test]
    async fn throttling_is_retried_within_bounded_time() {
        let (url, served) = throttling_server(2);
        let found = super::refresh_region(&client(&url), "us-east-1", "p").await.expect("retried into success");
        assert!(found.is_empty());
        assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 3);

        // Throttled for good: the attempts are bounded and the error says so.
        let (url, served) = throttling_server(usize::MAX);
        let started = std::time::Instant::now();
        let err = super::refresh_region(&client(&url), "us-east-1", "p").await.expect_err("always throttled");
        assert_eq!(err.class, ErrorClass::Throttled, "{err}");
        assert!(err.message.contains("RequestLimitExceeded"), "{}", err.message);
        let policy = drplan_retry::RetryPolicy::DEFAULT;
        assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), policy.max_attempts as usize);
        assert!(started.elapsed() < policy.budget, "{:?}", started.elapsed());
    }
}
