//! Envoy stats for what the filter decides, defined on first use and cached by name. Names
//! carry one prefix and end in `.<tag>.<value>` segments that `envoy.yaml`'s `stats_tags` turn
//! into Prometheus labels (e.g. `jira_entra_guard_denied_total{reason="acl"}`).

use std::collections::HashMap;

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

/// Common prefix of every stat.
pub const PREFIX: &str = "jira_entra_guard_";

/// This VM's metric ids.
#[derive(Debug, Default)]
pub struct Metrics {
    ids: HashMap<String, u32>,
}

impl Metrics {
    fn id(&mut self, kind: MetricType, name: &str) -> Option<u32> {
        if let Some(id) = self.ids.get(name) {
            return Some(*id);
        }
        let id = hostcalls::define_metric(kind, name).ok()?;
        self.ids.insert(name.to_owned(), id);
        Some(id)
    }

    /// Adds one to a counter.
    pub fn count(&mut self, name: &str) {
        if let Some(id) = self.id(MetricType::Counter, name) {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }

    /// Sets a gauge.
    pub fn gauge(&mut self, name: &str, value: u64) {
        if let Some(id) = self.id(MetricType::Gauge, name) {
            let _ = hostcalls::record_metric(id, value);
        }
    }
}

/// `jira_entra_guard_<stat>`
pub fn name(stat: &str) -> String {
    format!("{PREFIX}{stat}")
}

/// `jira_entra_guard_<stat>.<tag>.<value>`
pub fn tagged(stat: &str, tag: &str, value: &str) -> String {
    format!("{PREFIX}{stat}.{tag}.{value}")
}
