//! `drplan validate [PATH]`: load the configuration, print every diagnostic, exit 0 or 1.

use std::path::PathBuf;

use drplan_core::config::Config;

use super::{EXIT_ERROR, EXIT_OK};
use crate::load;
use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A configuration directory (its *.hcl files are merged) or a single file.
    #[arg(default_value = ".")]
    path: PathBuf,
}

pub fn exec(args: Args, out: &mut Output) -> u8 {
    let loaded = load::configuration(&args.path);
    out.diagnostics(&loaded.sources, &loaded.diagnostics);
    match loaded.config {
        Some(config) => {
            out.line(&summary(&config));
            EXIT_OK
        }
        None => EXIT_ERROR,
    }
}

fn summary(config: &Config) -> String {
    let mut s = format!("The configuration of `{}` is valid.\n", config.project);
    for r in &config.regions {
        let vms: u32 = r.compute.iter().map(|p| p.count.for_role(r.role)).sum();
        let cluster =
            r.kubernetes.as_ref().map_or(String::new(), |k| format!(", cluster {}/{}", k.context, k.namespace));
        s.push_str(&format!("  region {:<16} {:<4} {:<8} {vms} instance(s){cluster}\n", r.name, r.cloud, r.role));
    }
    let components: Vec<&str> = config.components.iter().map(|c| c.name.as_str()).collect();
    if !components.is_empty() {
        s.push_str(&format!("  components: {}\n", components.join(", ")));
    }
    for d in &config.databases {
        let members: Vec<String> = config
            .regions
            .iter()
            .filter_map(|r| r.member(&d.name).map(|m| format!("{} ({} {})", r.name, m.kind.as_str(), m.identifier)))
            .collect();
        let budget = d.max_lag.map_or("no budget".to_string(), |l| format!("max lag {l}"));
        s.push_str(&format!("  database {} ({}, {budget}): {}\n", d.name, d.engine, members.join(", ")));
    }
    for b in &config.backups {
        let dests: Vec<String> = b.destinations.iter().map(|d| format!("{} ({})", d.name, d.target.site())).collect();
        s.push_str(&format!("  backup {}: `{}` to {}\n", b.name, b.schedule.as_str(), dests.join(", ")));
    }
    s.pop();
    s
}
