//! Configuration fixtures as a builder: a project, its providers and endpoints, regions
//! with roles, compute pools and clusters, failover with DNS and a health check, backups
//! with their destinations. Tests say what differs; the HCL is written one way, here.

use std::fmt::Write as _;

use drplan_core::config::Config;

/// Replicas or instances by role: `(active, standby, cold)`.
pub type Counts = (u32, u32, u32);

fn counts((active, standby, cold): Counts) -> String {
    format!("{{ active = {active}, standby = {standby}, cold = {cold} }}")
}

/// A whole configuration, written as one `main.hcl`.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    project: String,
    backend: Option<String>,
    objectives: Option<(String, String)>,
    providers: Vec<String>,
    components: Vec<String>,
    regions: Vec<Region>,
    backups: Vec<Backup>,
    failover: Option<Failover>,
}

impl Topology {
    pub fn new(project: &str) -> Topology {
        Topology { project: project.to_owned(), ..Topology::default() }
    }

    /// State in an S3 bucket on the AWS API at `endpoint`, under `key`.
    pub fn state_in_s3(mut self, bucket: &str, key: &str, region: &str, endpoint: &str) -> Topology {
        self.backend = Some(format!(
            "\n  backend \"s3\" {{\n    bucket   = \"{bucket}\"\n    key      = \"{key}\"\n    region   = \"{region}\"\n    endpoint = \"{endpoint}\"\n  }}\n"
        ));
        self
    }

    pub fn objectives(mut self, rto: &str, rpo: &str) -> Topology {
        self.objectives = Some((rto.to_owned(), rpo.to_owned()));
        self
    }

    /// The AWS provider, on the API at `endpoint` (an emulator) or the real one.
    pub fn aws(mut self, endpoint: Option<&str>) -> Topology {
        self.providers.push(match endpoint {
            Some(e) => format!("provider \"aws\" {{\n  endpoint = \"{e}\"\n}}\n"),
            None => "provider \"aws\" {}\n".to_owned(),
        });
        self
    }

    /// The GCP provider for `project` on the API at `endpoint`, without credentials (an
    /// emulator asks for none).
    pub fn gcp(mut self, project: &str, endpoint: &str) -> Topology {
        self.providers.push(format!(
            "provider \"gcp\" {{\n  project     = \"{project}\"\n  endpoint    = \"{endpoint}\"\n  credentials = \"anonymous\"\n}}\n"
        ));
        self
    }

    pub fn component(mut self, name: &str, priority: Option<u32>, replicas: Counts) -> Topology {
        let priority = priority.map(|p| format!("  priority = {p}\n")).unwrap_or_default();
        self.components.push(format!("component \"{name}\" {{\n{priority}  replicas = {}\n}}\n", counts(replicas)));
        self
    }

    pub fn region(mut self, region: Region) -> Topology {
        self.regions.push(region);
        self
    }

    pub fn backup(mut self, backup: Backup) -> Topology {
        self.backups.push(backup);
        self
    }

    pub fn failover(mut self, failover: Failover) -> Topology {
        self.failover = Some(failover);
        self
    }

    pub fn hcl(&self) -> String {
        let mut out =
            format!("drplan {{\n  project = \"{}\"\n{}}}\n", self.project, self.backend.as_deref().unwrap_or(""));
        if let Some((rto, rpo)) = &self.objectives {
            let _ = write!(out, "\nobjectives {{\n  rto = \"{rto}\"\n  rpo = \"{rpo}\"\n}}\n");
        }
        for block in self.providers.iter().chain(&self.components) {
            out.push('\n');
            out.push_str(block);
        }
        for r in &self.regions {
            out.push('\n');
            out.push_str(&r.hcl());
        }
        for b in &self.backups {
            out.push('\n');
            out.push_str(&b.hcl());
        }
        if let Some(f) = &self.failover {
            out.push('\n');
            out.push_str(&f.hcl());
        }
        out
    }

    /// The configuration, loaded; panics with the diagnostics when it does not load.
    pub fn load(&self) -> Config {
        super::load(&self.hcl())
    }
}

/// One `region` block.
#[derive(Debug, Clone)]
pub struct Region {
    name: String,
    cloud: &'static str,
    role: String,
    location: Option<String>,
    endpoint: Option<String>,
    body: String,
}

impl Region {
    pub fn aws(name: &str, role: &str) -> Region {
        Region::new(name, "aws", role, None)
    }

    pub fn gcp(name: &str, role: &str, location: &str) -> Region {
        Region::new(name, "gcp", role, Some(location))
    }

    fn new(name: &str, cloud: &'static str, role: &str, location: Option<&str>) -> Region {
        Region {
            name: name.to_owned(),
            cloud,
            role: role.to_owned(),
            location: location.map(str::to_owned),
            endpoint: None,
            body: String::new(),
        }
    }

    /// The host name the region serves on, that DNS points at and health checks probe.
    pub fn endpoint(mut self, fqdn: &str) -> Region {
        self.endpoint = Some(fqdn.to_owned());
        self
    }

    pub fn compute(mut self, pool: &str, instance_type: &str, image: &str, count: Counts) -> Region {
        let _ = write!(
            self.body,
            "\n  compute \"{pool}\" {{\n    instance_type = \"{instance_type}\"\n    image         = \"{image}\"\n    count         = {}\n  }}\n",
            counts(count)
        );
        self
    }

    pub fn kubernetes(mut self, context: &str, namespace: &str) -> Region {
        let _ = write!(
            self.body,
            "\n  kubernetes {{\n    context   = \"{context}\"\n    namespace = \"{namespace}\"\n  }}\n"
        );
        self
    }

    fn hcl(&self) -> String {
        let mut fields = vec![("cloud", self.cloud), ("role", self.role.as_str())];
        if let Some(l) = &self.location {
            fields.push(("location", l));
        }
        if let Some(e) = &self.endpoint {
            fields.push(("endpoint", e));
        }
        let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = format!("region \"{}\" {{\n", self.name);
        for (k, v) in fields {
            let _ = writeln!(out, "  {k:width$} = \"{v}\"");
        }
        out.push_str(&self.body);
        out.push_str("}\n");
        out
    }
}

/// One `backup` block and its destinations.
#[derive(Debug, Clone)]
pub struct Backup {
    name: String,
    head: String,
    body: String,
}

impl Backup {
    pub fn new(name: &str, schedule: &str, retention: &str, image: &str) -> Backup {
        Backup {
            name: name.to_owned(),
            head: format!("  schedule  = \"{schedule}\"\n  retention = \"{retention}\"\n  image     = \"{image}\"\n"),
            body: String::new(),
        }
    }

    /// `type = "full"`.
    pub fn full(mut self) -> Backup {
        self.head.push_str("  type      = \"full\"\n");
        self
    }

    pub fn gpg(mut self, recipient: &str) -> Backup {
        let _ = write!(self.body, "\n  encryption {{\n    gpg_recipient = \"{recipient}\"\n  }}\n");
        self
    }

    pub fn s3(self, destination: &str, bucket: &str, prefix: &str, region: &str, class: Option<&str>) -> Backup {
        let fields = [("bucket", bucket), ("prefix", prefix), ("region", region)];
        self.destination(destination, "s3", &fields, class)
    }

    pub fn gcs(self, destination: &str, bucket: &str, prefix: &str, location: &str, class: Option<&str>) -> Backup {
        let fields = [("bucket", bucket), ("prefix", prefix), ("location", location)];
        self.destination(destination, "gcs", &fields, class)
    }

    pub fn nas(self, destination: &str, path: &str) -> Backup {
        self.destination(destination, "nas", &[("path", path)], None)
    }

    fn destination(mut self, name: &str, target: &str, fields: &[(&str, &str)], class: Option<&str>) -> Backup {
        let mut fields = fields.to_vec();
        if let Some(c) = class {
            fields.push(("storage_class", c));
        }
        let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let _ = write!(self.body, "\n  destination \"{name}\" {{\n    {target} {{\n");
        for (k, v) in fields {
            let _ = writeln!(self.body, "      {k:width$} = \"{v}\"");
        }
        self.body.push_str("    }\n  }\n");
        self
    }

    fn hcl(&self) -> String {
        format!("backup \"{}\" {{\n{}{}}}\n", self.name, self.head, self.body)
    }
}

/// The `failover` block: manual, with the regions to promote in order.
#[derive(Debug, Clone)]
pub struct Failover {
    order: Vec<String>,
    body: String,
}

impl Failover {
    pub fn manual(order: &[&str]) -> Failover {
        Failover { order: order.iter().map(|r| format!("\"{r}\"")).collect(), body: String::new() }
    }

    pub fn dns(mut self, zone: &str, record: &str, ttl: u32) -> Failover {
        let _ = write!(
            self.body,
            "\n  dns {{\n    zone   = \"{zone}\"\n    record = \"{record}\"\n    ttl    = {ttl}\n  }}\n"
        );
        self
    }

    /// An HTTPS check of `/health` on port 443.
    pub fn health_check(mut self, interval: &str, threshold: u32) -> Failover {
        let _ = write!(
            self.body,
            "\n  health_check {{\n    protocol  = \"HTTPS\"\n    port      = 443\n    path      = \"/health\"\n    interval  = \"{interval}\"\n    threshold = {threshold}\n  }}\n"
        );
        self
    }

    fn hcl(&self) -> String {
        format!("failover {{\n  mode  = \"manual\"\n  order = [{}]\n{}}}\n", self.order.join(", "), self.body)
    }
}
