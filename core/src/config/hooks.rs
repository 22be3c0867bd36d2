//! `hook` blocks: the team's own scripts, each a container run as a Kubernetes Job at a named
//! point of a failover (or a drill). Checked here: the point, where it runs, its timeout,
//! retries and failure mode, and values in `env` whose names say they are secrets.

use std::collections::BTreeMap;

use super::build::Builder;
use super::duration::Duration;
use super::model::*;
use super::tree::{Node, Val, Value, list};
use crate::diagnostics::{Code, Diagnostic};
use crate::plan::step::HookPoint;
use crate::suggest::closest;

/// How long a hook may run, unless told.
pub const DEFAULT_HOOK_TIMEOUT: u64 = 600;

/// Name endings that say an environment variable holds a secret.
const SECRET_ENDINGS: [&str; 5] = ["PASSWORD", "TOKEN", "KEY", "SECRET", "CREDENTIALS"];

/// Whether the variable `name` looks like it holds a secret (`DB_PASSWORD`, `API_TOKEN`).
pub fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_ENDINGS.iter().any(|end| upper == *end || upper.ends_with(&format!("_{end}")))
}

impl Builder<'_> {
    pub(super) fn hooks(&mut self, root: &Node) -> Option<Vec<Hook>> {
        let regions: Vec<(&str, &Node)> =
            root.children("region").filter_map(|r| r.label().map(|(l, _)| (l.as_str(), r))).collect();
        let hooks: Vec<Option<Hook>> = root.children("hook").map(|h| self.hook(h, &regions)).collect();
        hooks.into_iter().collect()
    }

    fn hook(&mut self, h: &Node, regions: &[(&str, &Node)]) -> Option<Hook> {
        // Part of its Job's name (`drplan-drill-hook-NAME-ID`, 63 characters at most).
        let name = self.label_name(h, super::build::NameRule::Dns(36));
        let at = self.hook_point(h);
        let region = self.hook_region(h, regions);
        let image = self.opt_str(h, "image");
        let (command, env, env_from_secret) = self.container(h);
        let timeout = match h.get("timeout") {
            None => Some(Duration::from_secs(DEFAULT_HOOK_TIMEOUT)),
            Some(_) => match self.duration(h, "timeout") {
                Some(t) if t.as_secs() == 0 => {
                    if let Some((_, v)) = h.str("timeout") {
                        self.diags.push(
                            Diagnostic::error(Code::InvalidDuration, "invalid duration")
                                .label(v.span.clone(), "a hook cannot finish in no time")
                                .help("give the longest the hook may take, such as \"10m\""),
                        );
                    }
                    None
                }
                t => t,
            },
        };
        let retries = match h.get("retries") {
            None => Some(0),
            Some(_) => self.int_in(h, "retries", 0, 10).map(|n| n as u32),
        };
        let drill = matches!(h.get("drill").map(|v| &v.val), Some(Val::Bool(true)));
        let stop = match h.get("on_failure") {
            None => Some(true),
            Some(_) => self.keyword(
                h,
                "on_failure",
                |s| match s {
                    "stop" => Some(true),
                    "continue" => Some(false),
                    _ => None,
                },
                &["stop", "continue"],
            ),
        };
        // In the old region, before traffic moves, and not allowed to fail: a failover away
        // from a lost region could never run it, so that failover would never happen.
        if let (Some(HookRegion::Old), Some(true), Some(p)) = (&region, stop, at)
            && p < HookPoint::AfterTraffic
            && let Some((_, v)) = h.str("region")
        {
            self.diags.push(
                Diagnostic::warning(Code::HookBlocksDisaster, "a hook that stops a disaster failover")
                    .label(v.span.clone(), format!("`{}` runs in the old active region before traffic moves", p.as_str()))
                    .help("when that region is lost the hook cannot run, and `on_failure = \"stop\"` then stops the failover away from it: give it `on_failure = \"continue\"`, or run it in the target"),
            );
        }
        Some(Hook {
            name: name?,
            at: at?,
            region: region?,
            image: image?,
            command,
            env: env?,
            env_from_secret,
            timeout: timeout?,
            retries: retries?,
            drill,
            stop: stop?,
        })
    }

    /// A container's `command`, `env` and `env_from_secret` (a hook's, a backup's). A value
    /// in `env` whose name says it is a secret is a warning; a name drplan sets itself
    /// (`DRPLAN_*`) is an error.
    pub(super) fn container(&mut self, n: &Node) -> (Vec<String>, Option<BTreeMap<String, String>>, Vec<String>) {
        let strings = |attr: &str| match n.get(attr) {
            Some(Value { val: Val::List(items), .. }) => {
                items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect()
            }
            _ => Vec::new(),
        };
        let mut env = BTreeMap::new();
        let mut ok = true;
        if let Some(Value { val: Val::Map(entries), .. }) = n.get("env") {
            for (key, key_span, value) in entries {
                let Some(text) = value.as_str() else { continue };
                if key.starts_with("DRPLAN_") {
                    self.diags.push(
                        Diagnostic::error(Code::InvalidValue, "invalid value")
                            .label(key_span.clone(), format!("`{key}` is one of drplan's own variables"))
                            .help("drplan sets every `DRPLAN_*` variable itself: give yours another name"),
                    );
                    ok = false;
                    continue;
                }
                if looks_secret(key) && !text.is_empty() {
                    self.diags.push(
                        Diagnostic::warning(Code::SecretInEnv, "a secret in `env`")
                            .label(key_span.clone(), format!("`{key}` looks like a secret, and its value is written here"))
                            .help(format!("keep secrets out of the configuration: put `{key}` in a Kubernetes Secret and name the Secret in `env_from_secret`")),
                    );
                }
                env.insert(key.clone(), text.to_string());
            }
        }
        (strings("command"), ok.then_some(env), strings("env_from_secret"))
    }

    fn hook_point(&mut self, h: &Node) -> Option<HookPoint> {
        let (text, v) = h.str("at")?;
        if text == "on_incident" {
            self.diags.push(
                Diagnostic::error(Code::UnsupportedHookPoint, "no incidents to run a hook at")
                    .label(v.span.clone(), "`on_incident` runs when an incident's isolation is applied")
                    .help("drplan does not declare incidents yet, so this hook would never run: use one of the failover's points, such as `before_failover`"),
            );
            return None;
        }
        self.keyword(h, "at", HookPoint::parse, &HookPoint::NAMES)
    }

    fn hook_region(&mut self, h: &Node, regions: &[(&str, &Node)]) -> Option<HookRegion> {
        let Some((text, v)) = h.str("region") else { return Some(HookRegion::Target) };
        match text {
            "target" => return Some(HookRegion::Target),
            "old" => return Some(HookRegion::Old),
            _ => {}
        }
        let Some((_, region)) = regions.iter().find(|(n, _)| *n == text) else {
            let mut d = Diagnostic::error(Code::UnknownRegion, "unknown region")
                .label(v.span.clone(), format!("no region is named `{text}`"));
            let names = regions.iter().map(|(n, _)| *n);
            d = match closest(text, names.clone()) {
                Some(s) => d.help(format!("did you mean `{s}`? or `target`, `old`")),
                None => d.help(format!("`target`, `old`, or a declared region: {}", list(names))),
            };
            self.diags.push(d);
            return None;
        };
        if region.child("kubernetes").is_none() {
            self.diags.push(
                Diagnostic::error(Code::HookWithoutCluster, "hook in a region without a cluster")
                    .label(v.span.clone(), format!("the hook runs as a Job in `{text}`'s cluster"))
                    .label(region.ident_span.clone(), format!("region `{text}` has no `kubernetes` block"))
                    .help(format!("add `kubernetes {{ context = \"...\", namespace = \"...\" }}` to region `{text}`, or run the hook elsewhere")),
            );
            return None;
        }
        Some(HookRegion::Named(text.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::looks_secret;

    #[test]
    fn secret_looking_names() {
        for name in ["DB_PASSWORD", "API_TOKEN", "AWS_SECRET_ACCESS_KEY", "SLACK_TOKEN", "password", "GCP_CREDENTIALS"]
        {
            assert!(looks_secret(name), "{name}");
        }
        for name in ["CHECK_LEVEL", "REGIONS", "KEYSPACE", "TOKENIZER_MODE", "BACKUP_TYPE"] {
            assert!(!looks_secret(name), "{name}");
        }
    }
}
