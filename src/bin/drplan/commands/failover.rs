//! `drplan failover --to REGION [PATH] [--write]`: failover as a reviewable edit. REGION
//! becomes active and the old active standby in the HCL (every comment, blank line and
//! attribute order kept); the diff of the files and the plan that follows are printed, and
//! `--write` saves the edit so it can be committed, reviewed and applied.

use drplan_core::config::edit;
use drplan_core::{Code, Diagnostic};

use super::{EXIT_ERROR, EXIT_OK};
use super::{PlanArgs, planned};
use crate::load;
use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The region to make active.
    #[arg(long, value_name = "REGION")]
    to: String,
    /// Save the edited configuration files (otherwise only show the diff and the plan).
    #[arg(long)]
    write: bool,
    #[command(flatten)]
    plan: PlanArgs,
}

pub fn exec(args: Args, out: &mut Output) -> u8 {
    let paths = match load::files(&args.plan.path) {
        Ok(p) => p,
        Err(d) => return out.report(&[], d),
    };
    let loaded = load::configuration(&args.plan.path);
    out.diagnostics(&loaded.sources, &loaded.diagnostics);
    let Some(config) = loaded.config else { return EXIT_ERROR };

    let Some(target) = config.region(&args.to) else {
        let names = config.regions.iter().map(|r| r.name.as_str());
        let hint = drplan_core::suggest::closest(&args.to, names.clone())
            .map(|s| format!("did you mean `{s}`? "))
            .unwrap_or_default();
        let all: Vec<&str> = names.collect();
        return out.report(
            &[],
            Diagnostic::error(Code::UnknownRegion, format!("no region is named `{}`", args.to))
                .help(format!("{hint}regions of this configuration: {}", all.join(", "))),
        );
    };
    let Some(active) = config.active_region() else { return EXIT_ERROR };
    if target.name == active.name {
        return out.report(
            &loaded.sources,
            Diagnostic::error(Code::InvalidValue, format!("`{}` is already the active region", target.name))
                .label(target.role_span.clone(), "already active here")
                .help("failover moves the active role to another region: name a standby or cold region"),
        );
    }

    let edit::RoleEdit { edits, sources: edited } = match edit::edit_roles(&loaded.sources, &target.name, &active.name)
    {
        Ok(e) => e,
        Err(why) => {
            return out
                .report(&[], Diagnostic::error(Code::InvalidValue, format!("cannot edit the configuration: {why}")));
        }
    };
    out.note(&format!("Failover: {} {} → active, {} active → standby.", target.name, target.role, active.name));
    for (i, text) in &edits {
        out.diff(&loaded.sources[*i].name, &loaded.sources[*i].text, text);
    }

    // Plan first, from the edit in memory: a failed refresh or plan leaves the files as they were.
    let Some(planned) = planned(&args.plan, Some("plan"), Some(edited), out) else { return EXIT_ERROR };
    out.plan(&planned.doc, false, false);
    let doc = planned.doc;
    drop(planned.lock);
    let allow = args.plan.allow_unreachable;
    // Declaring the old active lost waives the split-brain rule (its schedule cannot be
    // suspended from here) and accepts the skipped actions; every other rule still holds.
    let unsafe_plan = doc.safety.iter().any(|s| s.severity == "error" && s.code != Code::SplitBrain.as_str());
    let this = format!("drplan failover --to {}{}", target.name, super::path_arg(&args.plan.path));
    if unsafe_plan {
        out.note(
            "The plan after this failover breaks a safety rule (see above); the configuration files were not changed.",
        );
        return EXIT_ERROR;
    }
    if drplan_core::policy::denied(&doc) {
        out.note("The plan after this failover is denied by a policy (see Policy above); the configuration files were not changed.");
        return EXIT_ERROR;
    }
    if !doc.applyable {
        let mut lost: Vec<&str> = doc.unreachable.keys().map(String::as_str).collect();
        lost.extend(doc.unreachable_objects.keys().map(String::as_str));
        let lost = if lost.is_empty() { "what cannot be reached".to_string() } else { lost.join(", ") };
        let schedule = if doc.safety.iter().any(|s| s.code == Code::SplitBrain.as_str()) {
            ", and may leave a backup schedule running there"
        } else {
            ""
        };
        out.note(&format!(
            "The plan after this failover skips actions on {lost}, which cannot be reached{schedule}; the configuration files were not changed.\n\
             If {lost} is known to be down, declare it lost and write the edit: {this} --write --allow-unreachable"
        ));
        return EXIT_ERROR;
    }
    if args.write {
        for (i, text) in &edits {
            if let Err(d) = crate::load::write_atomically(&paths[*i], text) {
                return out.report(&[], d);
            }
            out.note(&format!("Wrote {}.", paths[*i].display()));
        }
        // The configuration now names what a watcher made active: its override is accepted.
        match drplan::engine::accept_override(&args.plan.path, &target.name, args.plan.lock_timeout, allow) {
            Ok(Some(o)) => out.note(&format!(
                "The automatic failover to {} ({}, {}) is accepted: its override is cleared from state.",
                o.active, o.by, o.at
            )),
            Ok(None) => {}
            Err(f) => {
                out.diagnostics(&[], &f.diagnostics);
                return EXIT_ERROR;
            }
        }
        let skips = doc.actions.iter().any(|a| a.skipped.is_some());
        let flag = if allow && skips { " --allow-unreachable" } else { "" };
        out.note(&format!(
            "Next: review and commit the edit, then apply it: drplan apply{}{flag}",
            super::path_arg(&args.plan.path)
        ));
    } else {
        out.note("The configuration files were not changed: pass --write to save the edit, then review and apply it.");
    }
    EXIT_OK
}
