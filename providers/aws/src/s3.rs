//! S3 backup buckets: existence, versioning, drplan's lifecycle rule, and the age of the
//! newest backup under the prefix.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration,
    ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, Transition, TransitionStorageClass,
    VersioningConfiguration,
};
use drplan_core::plan::resource::Kind;
use drplan_core::plan::{Action, Attrs, Observed, Resource, Value};
use drplan_core::provider::{ApplyRequest, ErrorClass, ProviderError};

use drplan_retry::RetryPolicy;

use crate::LIFECYCLE_RULE_ID;
use crate::client::send;
use crate::error::sdk_error;

/// What the refresh of the backup buckets saw.
#[derive(Debug, Default)]
pub struct Buckets {
    pub objects: Vec<Observed>,
    /// Per bucket address, the age in seconds of its newest object under the prefix.
    pub ages: BTreeMap<String, u64>,
    /// Buckets whose region could not be reached, by address, with the reason.
    pub unreachable: BTreeMap<String, String>,
}

/// Reads each desired AWS bucket, all at once: a bucket in a region that is down costs its
/// own timeout, not everyone else's, and is reported rather than failing the refresh.
pub async fn refresh(client_for: impl Fn(&str) -> Client, desired: &[Resource]) -> Result<Buckets, ProviderError> {
    let reads = desired.iter().filter(|r| r.kind == Kind::Bucket && r.str("cloud") == Some("aws")).filter_map(|r| {
        let (bucket, location) = (r.str("bucket")?, r.str("location")?);
        let client = client_for(location);
        Some(async move {
            let seen = async {
                let Some(o) = read(&client, &r.address, bucket).await? else { return Ok((None, None)) };
                let prefix = o.resource.str("prefix").unwrap_or_default().to_owned();
                let age = newest_age(&client, bucket, &prefix).await?;
                Ok::<_, ProviderError>((Some(o), age))
            };
            (r.address.as_str(), seen.await)
        })
    });
    let mut out = Buckets::default();
    for (address, result) in futures_util::future::join_all(reads).await {
        match result {
            Ok((object, age)) => {
                out.objects.extend(object);
                if let Some(age) = age {
                    out.ages.insert(address.to_owned(), age);
                }
            }
            Err(e) if e.class == ErrorClass::Unreachable => {
                out.unreachable.insert(address.to_owned(), e.message);
            }
            Err(e) => return Err(e.at(address)),
        }
    }
    Ok(out)
}

/// The bucket as it is, under `address`; `None` when it does not exist.
pub async fn read(client: &Client, address: &str, bucket: &str) -> Result<Option<Observed>, ProviderError> {
    let head = match send(&RetryPolicy::DEFAULT, &format!("HeadBucket {bucket}"), || {
        client.head_bucket().bucket(bucket).send()
    })
    .await
    {
        Ok(h) => h,
        Err(err) => return if err.class == ErrorClass::NotFound { Ok(None) } else { Err(err) },
    };
    let location = match head.bucket_region() {
        Some(r) => r.to_owned(),
        None => {
            let out = send(&RetryPolicy::DEFAULT, &format!("GetBucketLocation {bucket}"), || {
                client.get_bucket_location().bucket(bucket).send()
            })
            .await?;
            match out.location_constraint().map(|c| c.as_str()) {
                None | Some("") => "us-east-1".to_owned(),
                Some("EU") => "eu-west-1".to_owned(),
                Some(c) => c.to_owned(),
            }
        }
    };
    let versioning = send(&RetryPolicy::DEFAULT, &format!("GetBucketVersioning {bucket}"), || {
        client.get_bucket_versioning().bucket(bucket).send()
    })
    .await?;
    let mut a: Attrs = [
        ("cloud", Value::from("aws")),
        ("bucket", bucket.into()),
        ("location", location.into()),
        ("versioning", (versioning.status() == Some(&BucketVersioningStatus::Enabled)).into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let rules = lifecycle_rules(client, bucket).await?;
    if let Some(rule) = rules.iter().find(|r| r.id() == Some(LIFECYCLE_RULE_ID)) {
        #[allow(deprecated)]
        let prefix = rule.filter().and_then(|f| f.prefix()).or(rule.prefix()).unwrap_or_default();
        a.insert("prefix".into(), prefix.into());
        if let Some(days) = rule.expiration().and_then(|e| e.days()) {
            a.insert("expire_days".into(), i64::from(days).into());
        }
        // Disabled while an incident holds retention: the rule and its days stay.
        a.insert("expiry_paused".into(), (rule.status() == &ExpirationStatus::Disabled).into());
        if let Some(class) = rule.transitions().first().and_then(|t| t.storage_class()) {
            a.insert("storage_class".into(), class.as_str().into());
        }
    }
    Ok(Some(Observed {
        resource: Resource { address: address.to_owned(), kind: Kind::Bucket, region: None, attrs: a },
        id: bucket.to_owned(),
    }))
}

/// Listing pages read at most for the newest backup (1,000 keys each). Retention bounds what
/// a prefix holds (hourly backups kept 30 days are 720 objects, one page); the cap only keeps
/// a prefix shared with something else from turning a refresh into thousands of calls.
pub const NEWEST_BACKUP_PAGES: usize = 100;

/// Seconds since the newest object under `prefix` was written. Listings come in key order,
/// not time order, so every page is read: the newest backup may be on the last one.
async fn newest_age(client: &Client, bucket: &str, prefix: &str) -> Result<Option<u64>, ProviderError> {
    let mut newest: Option<i64> = None;
    let mut token: Option<String> = None;
    for _ in 0..NEWEST_BACKUP_PAGES {
        let out = send(&RetryPolicy::DEFAULT, &format!("ListObjectsV2 {bucket}"), || {
            client.list_objects_v2().bucket(bucket).prefix(prefix).set_continuation_token(token.clone()).send()
        })
        .await?;
        let on_page = out.contents().iter().filter_map(|o| o.last_modified()).map(|t| t.secs()).max();
        newest = newest.max(on_page);
        match out.next_continuation_token() {
            Some(next) if out.is_truncated() == Some(true) => token = Some(next.to_string()),
            _ => break,
        }
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default();
    Ok(newest.map(|t| now.saturating_sub(t).max(0) as u64))
}

fn text<'a>(a: &'a Attrs, name: &str) -> Result<&'a str, ProviderError> {
    match a.get(name) {
        Some(Value::Str(s)) => Ok(s),
        _ => Err(ProviderError::new(ErrorClass::Invalid, format!("the bucket has no `{name}`"))),
    }
}

/// Days before objects move to `class`: the infrequent-access classes take objects only
/// after 30 days; the archive classes at once.
fn transition_days(class: &str) -> i32 {
    match class {
        "STANDARD_IA" | "ONEZONE_IA" => 30,
        _ => 0,
    }
}

/// The lifecycle rule drplan owns, from the desired attributes.
pub fn lifecycle_rule(a: &Attrs) -> Result<LifecycleRule, ProviderError> {
    let days = match a.get("expire_days") {
        Some(Value::Int(d)) => i32::try_from(*d).ok(),
        _ => None,
    }
    .ok_or_else(|| ProviderError::new(ErrorClass::Invalid, "the bucket has no valid `expire_days`"))?;
    let mut rule = LifecycleRule::builder()
        .id(LIFECYCLE_RULE_ID)
        .status(match a.get("expiry_paused") {
            Some(Value::Bool(true)) => ExpirationStatus::Disabled,
            _ => ExpirationStatus::Enabled,
        })
        .filter(LifecycleRuleFilter::builder().prefix(text(a, "prefix")?).build())
        .expiration(LifecycleExpiration::builder().days(days).build());
    if let Some(Value::Str(class)) = a.get("storage_class") {
        rule = rule.transitions(
            Transition::builder()
                .days(transition_days(class))
                .storage_class(TransitionStorageClass::from(class.as_str()))
                .build(),
        );
    }
    rule.build().map_err(|e| ProviderError::new(ErrorClass::Invalid, format!("lifecycle rule: {e}")))
}

/// Versioning on, and drplan's rule in place beside any other rules the bucket has.
async fn configure(client: &Client, bucket: &str, a: &Attrs) -> Result<(), ProviderError> {
    let status = if a.get("versioning") == Some(&Value::Bool(false)) {
        BucketVersioningStatus::Suspended
    } else {
        BucketVersioningStatus::Enabled
    };
    send(&RetryPolicy::DEFAULT, &format!("PutBucketVersioning {bucket}"), || {
        client
            .put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(VersioningConfiguration::builder().status(status.clone()).build())
            .send()
    })
    .await?;
    let mut rules = lifecycle_rules(client, bucket).await?;
    rules.retain(|r| r.id() != Some(LIFECYCLE_RULE_ID));
    rules.push(lifecycle_rule(a)?);
    let config = BucketLifecycleConfiguration::builder()
        .set_rules(Some(rules))
        .build()
        .map_err(|e| ProviderError::new(ErrorClass::Invalid, format!("lifecycle configuration: {e}")))?;
    send(&RetryPolicy::DEFAULT, &format!("PutBucketLifecycleConfiguration {bucket}"), || {
        client.put_bucket_lifecycle_configuration().bucket(bucket).lifecycle_configuration(config.clone()).send()
    })
    .await?;
    Ok(())
}

pub async fn apply(
    client: &Client,
    location: &str,
    request: &ApplyRequest<'_>,
) -> Result<Option<Observed>, ProviderError> {
    let change = request.change;
    let address = change.address.as_str();
    let attrs = change
        .after
        .as_ref()
        .or(change.before.as_ref())
        .ok_or_else(|| ProviderError::new(ErrorClass::Invalid, "a bucket change needs attributes"))?;
    let bucket = text(attrs, "bucket")?;
    let gone = || ProviderError::new(ErrorClass::NotFound, format!("bucket {bucket} does not exist"));
    match change.action {
        Action::Create => {
            let mut create = client.create_bucket().bucket(bucket);
            // us-east-1 is the default location and rejects being named.
            if location != "us-east-1" {
                create = create.create_bucket_configuration(
                    CreateBucketConfiguration::builder()
                        .location_constraint(BucketLocationConstraint::from(location))
                        .build(),
                );
            }
            drplan_retry::run(&RetryPolicy::DEFAULT, || async {
                match create.clone().send().await {
                    Ok(_) => Ok(()),
                    // Ours already (a retried create): configure it like a new one.
                    Err(e)
                        if e.as_service_error().and_then(|s| aws_sdk_s3::error::ProvideErrorMetadata::code(s))
                            == Some("BucketAlreadyOwnedByYou") =>
                    {
                        Ok(())
                    }
                    Err(e) => Err(sdk_error(&format!("CreateBucket {bucket}"), &e)),
                }
            })
            .await?;
            configure(client, bucket, attrs).await?;
            read(client, address, bucket).await?.ok_or_else(gone).map(Some)
        }
        Action::Update => {
            if read(client, address, bucket).await?.is_none() {
                return Err(gone());
            }
            configure(client, bucket, attrs).await?;
            read(client, address, bucket).await?.ok_or_else(gone).map(Some)
        }
        Action::Adopt => read(client, address, bucket).await?.ok_or_else(gone).map(Some),
        Action::Replace => Err(ProviderError::new(
            ErrorClass::Invalid,
            format!(
                "bucket {bucket} cannot move to {location} in place: its backups would have to be copied; \
                 create a new destination instead"
            ),
        )),
        Action::Delete => {
            match send(&RetryPolicy::DEFAULT, &format!("DeleteBucket {bucket}"), || {
                client.delete_bucket().bucket(bucket).send()
            })
            .await
            {
                Ok(_) => Ok(None),
                Err(err) => {
                    if err.class == ErrorClass::NotFound {
                        Ok(None)
                    } else {
                        Err(err)
                    }
                }
            }
        }
    }
}

/// The bucket's lifecycle rules; none when it has no lifecycle configuration at all
/// (S3 answers NoSuchLifecycleConfiguration).
async fn lifecycle_rules(client: &Client, bucket: &str) -> Result<Vec<LifecycleRule>, ProviderError> {
    let got = send(&RetryPolicy::DEFAULT, &format!("GetBucketLifecycleConfiguration {bucket}"), || {
        client.get_bucket_lifecycle_configuration().bucket(bucket).send()
    })
    .await;
    match got {
        Ok(out) => Ok(out.rules.unwrap_or_default()),
        Err(err) => {
            if err.class == ErrorClass::NotFound {
                Ok(Vec::new())
            } else {
                Err(err)
            }
        }
    }
}
