//! The benchmarks' synthetic topology: five AWS regions of five pools each (50,000 active
//! and 4 × 12,500 standby instances) and 20 components, failing over from `us-east-1` to
//! `us-east-2`. Shared by the plan benchmark and the policy benchmark of the binary crate.

use drplan_core::plan::{Observed, Prior, Snapshot, desired};
use drplan_core::{SourceFile, config};

const REGIONS: [&str; 5] = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1"];

pub fn topology(active: &str) -> String {
    let mut s = String::from(
        "drplan {\n  project = \"bench\"\n}\n\nobjectives {\n  rto = \"2h\"\n  rpo = \"1h\"\n}\n\nprovider \"aws\" {}\n\n",
    );
    for c in 0..20 {
        s.push_str(&format!(
            "component \"service-{c}\" {{\n  replicas = {{ active = 6, standby = 2, cold = 0 }}\n}}\n\n"
        ));
    }
    for r in REGIONS {
        let role = if r == active { "active" } else { "standby" };
        // Five pools of 10,000 active / 2,500 standby: 50,000 + 4 × 12,500 = 100,000 instances.
        let pools: String = (0..5)
            .map(|p| format!("  compute \"pool-{p}\" {{\n    instance_type = \"c6i.large\"\n    image         = \"ami-0123456789abcdef0\"\n    count         = {{ active = 10000, standby = 2500, cold = 0 }}\n  }}\n\n"))
            .collect();
        s.push_str(&format!(
            "region \"{r}\" {{\n  cloud    = \"aws\"\n  role     = \"{role}\"\n  endpoint = \"{r}.bench.example.com\"\n\n{pools}  kubernetes {{\n    context = \"{r}\"\n  }}\n}}\n\n"
        ));
    }
    s.push_str("backup \"db\" {\n  schedule  = \"0 * * * *\"\n  retention = \"30d\"\n  image     = \"backup:1\"\n\n  destination \"a\" {\n    s3 {\n      bucket = \"bench-backups-a\"\n      region = \"us-east-1\"\n    }\n  }\n\n  destination \"b\" {\n    nas {\n      path = \"/mnt/nas\"\n    }\n  }\n}\n\n");
    s.push_str("failover {\n  order = [\"us-east-2\"]\n\n  dns {\n    zone   = \"bench.example.com\"\n    record = \"api.bench.example.com\"\n  }\n}\n");
    s
}

pub fn load(text: String) -> config::Config {
    let loaded = config::load(&[SourceFile::new("bench.hcl", text)], &|_| None);
    loaded.config.unwrap_or_else(|| panic!("{:?}", loaded.diagnostics))
}

/// The failover's inputs: the configuration after it, and a prior state and a live
/// snapshot holding everything the configuration before it declares.
pub fn failover() -> (config::Config, Prior, Snapshot) {
    let before = load(topology("us-east-1"));
    let after = load(topology("us-east-2"));
    let objects: std::collections::BTreeMap<String, Observed> = desired::desired(&before)
        .into_iter()
        .map(|r| (r.address.clone(), Observed { id: format!("i-{}", r.address.len()), resource: r }))
        .collect();
    let prior =
        Prior { roles: before.regions.iter().map(|r| (r.name.clone(), r.role)).collect(), objects, ..Prior::default() };
    let live = Snapshot { objects: prior.objects.clone(), ..Snapshot::default() };
    (after, prior, live)
}
