//! Policy results as plan data: what the team's Rego rules (conftest's `deny`, `violation`
//! and `warn`) said about a plan. The shell evaluates the rules; core only records the
//! results in the plan document and decides what they mean: a denial makes the plan not
//! applyable, a warning changes nothing.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::plan::doc::PlanDoc;

/// How a result weighs on the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// From a `deny` or `violation` rule: the plan cannot be applied.
    Deny,
    /// From a `warn` rule: shown, changes nothing.
    Warn,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Deny => "deny",
            Level::Warn => "warn",
        }
    }

    /// The level of a conftest rule name, `None` for the rules that are not results.
    pub fn of_rule(rule: &str) -> Option<Level> {
        match rule {
            "deny" | "violation" => Some(Level::Deny),
            "warn" => Some(Level::Warn),
            _ => None,
        }
    }
}

/// One message of one rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PolicyResult {
    pub level: Level,
    /// The package the rule is in, e.g. `main`.
    pub namespace: String,
    /// `deny`, `violation` or `warn`.
    pub rule: String,
    /// The message: the rule's string, or the `msg` of its object.
    pub msg: String,
    /// The rest of an object result (conftest's `details`), absent for plain messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

/// Records `results` in `doc` in a stable order (denials first), and takes a plan that a
/// rule denies out of apply's reach.
pub fn attach(doc: &mut PlanDoc, mut results: Vec<PolicyResult>) {
    results.sort_by(|a, b| (a.level, &a.namespace, &a.rule, &a.msg).cmp(&(b.level, &b.namespace, &b.rule, &b.msg)));
    results.dedup();
    if results.iter().any(|r| r.level == Level::Deny) {
        doc.applyable = false;
    }
    doc.policy = results;
}

/// Whether a policy rule denies the plan.
pub fn denied(doc: &PlanDoc) -> bool {
    doc.policy.iter().any(|r| r.level == Level::Deny)
}

/// A result of a rule, as conftest reads it: a string, or an object with a string `msg`
/// (the other fields become `details`). `None` for anything else.
pub fn result(level: Level, namespace: &str, rule: &str, value: &serde_json::Value) -> Option<PolicyResult> {
    let (msg, details) = match value {
        serde_json::Value::String(s) => (s.clone(), None),
        serde_json::Value::Object(o) => {
            let msg = o.get("msg")?.as_str()?.to_string();
            let rest: serde_json::Map<String, serde_json::Value> =
                o.iter().filter(|(k, _)| k.as_str() != "msg").map(|(k, v)| (k.clone(), v.clone())).collect();
            (msg, (!rest.is_empty()).then_some(serde_json::Value::Object(rest)))
        }
        _ => return None,
    };
    Some(PolicyResult { level, namespace: namespace.to_string(), rule: rule.to_string(), msg, details })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_objects_with_msg_are_results() {
        let r = result(Level::Deny, "main", "deny", &serde_json::json!("no")).unwrap();
        assert_eq!((r.msg.as_str(), r.details), ("no", None));
        let r = result(Level::Warn, "main", "warn", &serde_json::json!({"msg": "careful", "region": "eu"})).unwrap();
        assert_eq!(r.msg, "careful");
        assert_eq!(r.details, Some(serde_json::json!({"region": "eu"})));
        assert!(result(Level::Deny, "main", "deny", &serde_json::json!({"message": "x"})).is_none());
        assert!(result(Level::Deny, "main", "deny", &serde_json::json!(3)).is_none());
        assert_eq!(Level::of_rule("violation"), Some(Level::Deny));
        assert_eq!(Level::of_rule("allow"), None);
    }
}
