//! Drives gcplocal through the real Compute Engine client built by `drplan_provider_gcp::client`.

use std::collections::HashMap;

use drplan_harness::{Emulator, Running};
use drplan_provider_gcp::instances_client;
use google_cloud_compute_v1::model::Instance;
use google_cloud_lro::Poller;

const PROJECT: &str = "smoke";
const ZONE: &str = "us-central1-a";

#[tokio::test]
async fn instances_insert_get_and_list_with_labels() {
    let gcplocal = Running::start(Emulator::Gcplocal).expect("gcplocal should start");
    let instances = instances_client(Some(gcplocal.url()), true).await.expect("Instances client");

    let empty = instances.list().set_project(PROJECT).set_zone(ZONE).send().await.expect("list of an empty zone");
    assert!(empty.items.is_empty(), "{empty:?}");

    let labels = HashMap::from([
        ("drplan-project".to_owned(), "smoke".to_owned()),
        ("drplan-pool".to_owned(), "web".to_owned()),
    ]);
    let body = Instance::new()
        .set_name("web-1")
        .set_machine_type(format!("zones/{ZONE}/machineTypes/e2-small"))
        .set_labels(labels.clone());
    // Polling through the operation is what needs the launcher's decimal operation ids.
    let operation = instances
        .insert()
        .set_project(PROJECT)
        .set_zone(ZONE)
        .set_body(body)
        .poller()
        .until_done()
        .await
        .expect("insert operation");
    assert!(operation.error.is_none(), "{operation:?}");
    assert!(operation.id.is_some(), "operation id did not parse: {operation:?}");

    let got = instances
        .get()
        .set_project(PROJECT)
        .set_zone(ZONE)
        .set_instance("web-1")
        .send()
        .await
        .expect("get inserted instance");
    assert_eq!(got.name.as_deref(), Some("web-1"));
    assert_eq!(got.labels, labels);

    let listed = instances.list().set_project(PROJECT).set_zone(ZONE).send().await.expect("list after insert");
    let listed: Vec<_> = listed.items.iter().map(|i| (i.name.as_deref(), &i.labels)).collect();
    assert_eq!(listed, vec![(Some("web-1"), &labels)]);
}
