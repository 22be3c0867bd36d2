//! An incident's evidence and quarantine of EC2 instances. Evidence: a snapshot of each EBS
//! volume, tagged with the incident and the volume in the CreateSnapshot call itself (a run
//! killed midway finds what it took and takes only the rest), then copied to another region
//! (tagged with its source) so that whoever holds the compromised region cannot delete it.
//! Snapshots are never deleted here. Quarantine: the instance's groups tagged on it, then
//! replaced by one group with no rule at all (its default allow-all egress revoked); lifting
//! it puts the tagged groups back.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, Instance, IpPermission, ResourceType, Tag, TagSpecification};
use drplan_core::plan::{Action, Attrs, Change, Observed, Resource, Value};
use drplan_core::provider::{ErrorClass, ProviderError};
use drplan_retry::RetryPolicy;

use crate::TAG_PROJECT;
use crate::client::send;

/// The tag naming the incident on what drplan took or made for it.
pub const TAG_INCIDENT: &str = "drplan:incident";
/// The tag naming the volume a snapshot is of.
pub const TAG_VOLUME: &str = "drplan:volume";
/// The tag naming the snapshot a copy was made from.
pub const TAG_SOURCE: &str = "drplan:source-snapshot";
/// The tag on a quarantined instance holding its previous security groups.
pub const TAG_PREVIOUS_GROUPS: &str = "drplan:previous-groups";

fn text<'a>(a: &'a Attrs, key: &str) -> Result<&'a str, ProviderError> {
    match a.get(key) {
        Some(Value::Str(s)) => Ok(s),
        _ => Err(ProviderError::new(ErrorClass::Invalid, format!("the change has no `{key}`"))),
    }
}

fn tags(resource: ResourceType, pairs: &[(&str, &str)]) -> TagSpecification {
    let mut spec = TagSpecification::builder().resource_type(resource);
    for (k, v) in pairs {
        spec = spec.tags(Tag::builder().key(*k).value(*v).build());
    }
    spec.build()
}

fn filter(key: &str, value: &str) -> Filter {
    Filter::builder().name(key).values(value).build()
}

async fn instance(client: &Client, id: &str) -> Result<Option<Instance>, ProviderError> {
    match send(&RetryPolicy::DEFAULT, &format!("DescribeInstances {id}"), || {
        client.describe_instances().instance_ids(id).send()
    })
    .await
    {
        Ok(out) => Ok(out.reservations().iter().flat_map(|r| r.instances()).next().cloned()),
        Err(e) if e.class == ErrorClass::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The snapshots in `client`'s region carrying every tag of `pairs`.
async fn snapshots(client: &Client, pairs: &[(&str, &str)]) -> Result<Vec<String>, ProviderError> {
    let filters: Vec<Filter> = pairs.iter().map(|(k, v)| filter(&format!("tag:{k}"), v)).collect();
    let out = send(&RetryPolicy::DEFAULT, "DescribeSnapshots", || {
        client.describe_snapshots().owner_ids("self").set_filters(Some(filters.clone())).send()
    })
    .await?;
    let mut ids: Vec<String> = out.snapshots().iter().filter_map(|s| s.snapshot_id().map(str::to_owned)).collect();
    ids.sort();
    Ok(ids)
}

/// Takes (or finds) the evidence of one instance: a snapshot per volume, each copied to
/// `copy_region` when one is named. `copy` is that region's client.
pub async fn evidence(
    client: &Client,
    copy: Option<&Client>,
    region: &str,
    project: &str,
    change: &Change,
) -> Result<Option<Observed>, ProviderError> {
    let a = change.after.as_ref().or(change.before.as_ref()).cloned().unwrap_or_default();
    if change.action == Action::Delete {
        // Evidence is forgotten, never deleted: a plan never asks, and this refuses if one did.
        return Err(ProviderError::new(ErrorClass::Invalid, "evidence snapshots are never deleted by drplan"));
    }
    let incident = text(&a, "incident")?;
    let id = text(&a, "instance_id")?;
    let found = instance(client, id).await?.ok_or_else(|| {
        ProviderError::new(
            ErrorClass::NotFound,
            format!("instance {id} no longer exists: no evidence can be taken of it"),
        )
    })?;
    let volumes: Vec<String> = found
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs().and_then(|e| e.volume_id()).map(str::to_owned))
        .collect();
    let copy_region = a.get("copy_region").and_then(Value::text).filter(|r| !r.is_empty());
    let (mut taken, mut copies) = (Vec::new(), Vec::new());
    for volume in &volumes {
        let mine = [(TAG_INCIDENT, incident), (TAG_VOLUME, volume.as_str())];
        let snapshot = match snapshots(client, &mine).await?.into_iter().next() {
            Some(s) => s,
            None => {
                let spec = tags(
                    ResourceType::Snapshot,
                    &[(TAG_INCIDENT, incident), (TAG_VOLUME, volume), ("drplan:instance", id), (TAG_PROJECT, project)],
                );
                let out = send(&RetryPolicy::DEFAULT, &format!("CreateSnapshot {volume}"), || {
                    client
                        .create_snapshot()
                        .volume_id(volume)
                        .description(format!("drplan evidence of {id} for incident {incident}"))
                        .tag_specifications(spec.clone())
                        .send()
                })
                .await?;
                out.snapshot_id().unwrap_or_default().to_string()
            }
        };
        if let (Some(copy), Some(to)) = (copy, copy_region) {
            let copied = [(TAG_INCIDENT, incident), (TAG_SOURCE, snapshot.as_str())];
            let existing = snapshots(copy, &copied).await?.into_iter().next();
            let copy_id = match existing {
                Some(c) => c,
                None => {
                    let spec = tags(
                        ResourceType::Snapshot,
                        &[
                            (TAG_INCIDENT, incident),
                            (TAG_SOURCE, &snapshot),
                            (TAG_VOLUME, volume),
                            (TAG_PROJECT, project),
                        ],
                    );
                    let out = send(&RetryPolicy::DEFAULT, &format!("CopySnapshot {snapshot} to {to}"), || {
                        copy.copy_snapshot()
                            .source_region(region)
                            .source_snapshot_id(&snapshot)
                            .description(format!("drplan evidence copy of {snapshot} for incident {incident}"))
                            .tag_specifications(spec.clone())
                            .send()
                    })
                    .await?;
                    out.snapshot_id().unwrap_or_default().to_string()
                }
            };
            copies.push(format!("{to}:{copy_id}"));
        }
        taken.push(format!("{region}:{snapshot}"));
    }
    let mut attrs = a.clone();
    attrs.insert("snapshots".into(), taken.join(",").into());
    attrs.insert("copies".into(), copies.join(",").into());
    Ok(Some(Observed {
        resource: Resource { address: change.address.clone(), kind: change.kind, region: change.region.clone(), attrs },
        id: id.to_string(),
    }))
}

/// Quarantines one instance, or lifts its quarantine (a delete).
pub async fn quarantine(client: &Client, project: &str, change: &Change) -> Result<Option<Observed>, ProviderError> {
    let a = change.after.as_ref().or(change.before.as_ref()).cloned().unwrap_or_default();
    let id = text(&a, "instance_id")?;
    let Some(found) = instance(client, id).await? else {
        // Gone (replaced): nothing to quarantine or to lift.
        return match change.action {
            Action::Delete => Ok(None),
            _ => Err(ProviderError::new(ErrorClass::NotFound, format!("instance {id} no longer exists"))),
        };
    };
    let tagged = found.tags().iter().find(|t| t.key() == Some(TAG_PREVIOUS_GROUPS)).and_then(|t| t.value());
    if change.action == Action::Delete {
        let previous = tagged
            .map(str::to_owned)
            .or_else(|| a.get("previous_groups").and_then(Value::text).map(str::to_owned))
            .unwrap_or_default();
        let groups: Vec<String> = previous.split(',').filter(|g| !g.is_empty()).map(str::to_owned).collect();
        if groups.is_empty() {
            return Err(ProviderError::new(
                ErrorClass::Invalid,
                format!("the previous security groups of {id} are not known: put them back by hand"),
            ));
        }
        send(&RetryPolicy::DEFAULT, &format!("ModifyInstanceAttribute {id}"), || {
            client.modify_instance_attribute().instance_id(id).set_groups(Some(groups.clone())).send()
        })
        .await?;
        send(&RetryPolicy::DEFAULT, &format!("DeleteTags {id}"), || {
            client.delete_tags().resources(id).tags(Tag::builder().key(TAG_PREVIOUS_GROUPS).build()).send()
        })
        .await?;
        return Ok(None);
    }
    let group_name = text(&a, "group")?;
    let incident = text(&a, "incident")?;
    // The instance's groups are its primary interface's; read those when it reports none
    // of its own (an instance launched without groups, as some APIs answer).
    let mut current: Vec<String> =
        found.security_groups().iter().filter_map(|g| g.group_id().map(str::to_owned)).collect();
    if current.is_empty() {
        let primary =
            found.network_interfaces().iter().find(|n| n.attachment().and_then(|a| a.device_index()) == Some(0));
        current = primary
            .map(|n| n.groups().iter().filter_map(|g| g.group_id().map(str::to_owned)).collect())
            .unwrap_or_default();
    }
    let vpc = found.vpc_id().unwrap_or_default().to_string();
    let group = quarantine_group(client, group_name, &vpc, incident, project).await?;
    // The groups it had, recorded on the instance before it moves: a run killed between the
    // two reads them back rather than the quarantine group.
    let previous = match tagged {
        Some(p) => p.to_string(),
        None => {
            let p = current.join(",");
            send(&RetryPolicy::DEFAULT, &format!("CreateTags {id}"), || {
                client
                    .create_tags()
                    .resources(id)
                    .tags(Tag::builder().key(TAG_PREVIOUS_GROUPS).value(&p).build())
                    .send()
            })
            .await?;
            p
        }
    };
    if current != [group.clone()] {
        send(&RetryPolicy::DEFAULT, &format!("ModifyInstanceAttribute {id}"), || {
            client.modify_instance_attribute().instance_id(id).groups(&group).send()
        })
        .await?;
    }
    let mut attrs = a.clone();
    attrs.insert("group_id".into(), group.into());
    attrs.insert("previous_groups".into(), previous.into());
    Ok(Some(Observed {
        resource: Resource { address: change.address.clone(), kind: change.kind, region: change.region.clone(), attrs },
        id: id.to_string(),
    }))
}

/// The quarantine group of the incident in `vpc`, created when missing, with no ingress
/// and its default allow-all egress revoked.
async fn quarantine_group(
    client: &Client,
    name: &str,
    vpc: &str,
    incident: &str,
    project: &str,
) -> Result<String, ProviderError> {
    let mut filters = vec![filter("group-name", name)];
    if !vpc.is_empty() {
        filters.push(filter("vpc-id", vpc));
    }
    let found = send(&RetryPolicy::DEFAULT, &format!("DescribeSecurityGroups {name}"), || {
        client.describe_security_groups().set_filters(Some(filters.clone())).send()
    })
    .await?;
    let group = match found.security_groups().first() {
        Some(g) => g.clone(),
        None => {
            // Quarantines of several instances run at once: one of them creates the group,
            // the others find it.
            let spec = tags(ResourceType::SecurityGroup, &[(TAG_INCIDENT, incident), (TAG_PROJECT, project)]);
            let created = send(&RetryPolicy::DEFAULT, &format!("CreateSecurityGroup {name}"), || {
                let mut call = client
                    .create_security_group()
                    .group_name(name)
                    .description(format!("drplan quarantine for incident {incident}: nothing in or out"))
                    .tag_specifications(spec.clone());
                if !vpc.is_empty() {
                    call = call.vpc_id(vpc);
                }
                call.send()
            })
            .await;
            let again = match created {
                Ok(c) => {
                    let id = c.group_id().unwrap_or_default().to_string();
                    send(&RetryPolicy::DEFAULT, &format!("DescribeSecurityGroups {id}"), || {
                        client.describe_security_groups().group_ids(&id).send()
                    })
                    .await?
                }
                Err(e) if e.class == ErrorClass::Conflict => {
                    send(&RetryPolicy::DEFAULT, &format!("DescribeSecurityGroups {name}"), || {
                        client.describe_security_groups().set_filters(Some(filters.clone())).send()
                    })
                    .await?
                }
                Err(e) => return Err(e),
            };
            again.security_groups().first().cloned().ok_or_else(|| {
                ProviderError::new(
                    ErrorClass::Failed,
                    format!("the quarantine group {name} was created but cannot be read"),
                )
            })?
        }
    };
    let id = group.group_id().unwrap_or_default().to_string();
    let egress: Vec<IpPermission> = group.ip_permissions_egress().to_vec();
    if !egress.is_empty() {
        let revoked = send(&RetryPolicy::DEFAULT, &format!("RevokeSecurityGroupEgress {id}"), || {
            client.revoke_security_group_egress().group_id(&id).set_ip_permissions(Some(egress.clone())).send()
        })
        .await;
        // Revoked meanwhile by another instance's quarantine: the rule is gone, as wanted.
        revoked.map(drop).or_else(|e| if e.class == ErrorClass::NotFound { Ok(()) } else { Err(e) })?;
    }
    let ingress: Vec<IpPermission> = group.ip_permissions().to_vec();
    if !ingress.is_empty() {
        let revoked = send(&RetryPolicy::DEFAULT, &format!("RevokeSecurityGroupIngress {id}"), || {
            client.revoke_security_group_ingress().group_id(&id).set_ip_permissions(Some(ingress.clone())).send()
        })
        .await;
        // Revoked meanwhile by another instance's quarantine: the rule is gone, as wanted.
        revoked.map(drop).or_else(|e| if e.class == ErrorClass::NotFound { Ok(()) } else { Err(e) })?;
    }
    Ok(id)
}
