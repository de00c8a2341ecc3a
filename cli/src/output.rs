//! How a [`Verdict`] is printed: aligned `field: value` lines for people, one JSON object for
//! scripts (`--json`).

use jira_entra_guard_core::policy::Mode;
use serde_json::json;

use crate::check::Verdict;

/// The lines of the human-readable output.
pub fn human(verdict: &Verdict) -> String {
    let dash = || "-".to_owned();
    let mut lines = vec![
        (
            "decision",
            if verdict.allowed { "allow" } else { "deny" }.to_owned(),
        ),
        (
            "status",
            match verdict.status {
                Some(status) => status.to_string(),
                None => "- (forwarded to Jira)".to_owned(),
            },
        ),
        (
            "reason",
            verdict
                .reason
                .map_or_else(dash, |(text, code)| format!("{text} ({code})")),
        ),
        ("rule", verdict.rule.clone().unwrap_or_else(dash)),
        (
            "client",
            match (&verdict.client, &verdict.app_id) {
                (Some(name), Some(app_id)) => format!("{name} ({app_id})"),
                (Some(name), None) => name.clone(),
                _ => dash(),
            },
        ),
        ("mode", mode_line(verdict)),
        ("caller", verdict.verification.as_str().to_owned()),
    ];
    if let Some(projects) = &verdict.projects {
        // After `rule`: which path key, body field or JQL clause decided the projects.
        lines.insert(4, ("projects", projects.clone()));
    }
    if verdict.upstream_authorization {
        lines.push((
            "upstream",
            "Authorization replaced by the client's upstream_authorization_env value (not shown)"
                .to_owned(),
        ));
    }
    let mut out = String::new();
    for (name, value) in lines {
        out.push_str(&format!("{:<9} {value}\n", format!("{name}:")));
    }
    out
}

fn mode_line(verdict: &Verdict) -> String {
    match (verdict.mode, verdict.allowed) {
        (Mode::Enforce, _) => "enforce".to_owned(),
        (Mode::Audit, true) => "audit".to_owned(),
        (Mode::Audit, false) => {
            "audit (the filter logs this denial and forwards the request to Jira anyway)".to_owned()
        }
    }
}

/// The `--json` output.
pub fn json(verdict: &Verdict) -> String {
    let value = json!({
        "decision": if verdict.allowed { "allow" } else { "deny" },
        "status": verdict.status,
        "reason": verdict.reason.map(|(text, _)| text),
        "code": verdict.reason.map(|(_, code)| code),
        "rule": verdict.rule,
        "projects": verdict.projects,
        "client": verdict.client,
        "app_id": verdict.app_id,
        "mode": match verdict.mode {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
        },
        "caller": verdict.verification.as_str(),
        "upstream_authorization_replaced": verdict.upstream_authorization,
        "notes": verdict.notes,
    });
    format!("{value}\n")
}
