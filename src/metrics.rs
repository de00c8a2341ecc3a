//! Envoy stats for what the filter decides, defined on first use and then found by their static
//! name parts, so counting a request allocates nothing. Names carry one prefix and end in
//! `.<tag>.<value>` segments that `envoy.yaml`'s `stats_tags` turn into Prometheus labels
//! (e.g. `jira_entra_guard_denied_total{reason="acl"}`).

use std::collections::HashMap;

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

/// Common prefix of every stat.
pub const PREFIX: &str = "jira_entra_guard_";

/// A stat: its name and, optionally, one `(tag, value)` pair.
pub type Stat<'a> = (&'static str, Option<(&'static str, &'a str)>);

/// This VM's metric ids.
#[derive(Debug, Default)]
pub struct Metrics {
    counters: HashMap<(&'static str, &'static str, &'static str), u32>,
    gauges: HashMap<String, u32>,
}

fn full_name((stat, tag): Stat<'_>) -> String {
    match tag {
        Some((tag, value)) => format!("{PREFIX}{stat}.{tag}.{value}"),
        None => format!("{PREFIX}{stat}"),
    }
}

impl Metrics {
    /// Adds one to a counter whose name parts are all static.
    pub fn count(&mut self, stat: &'static str, tag: Option<(&'static str, &'static str)>) {
        let key = match tag {
            Some((t, v)) => (stat, t, v),
            None => (stat, "", ""),
        };
        let id = match self.counters.get(&key) {
            Some(id) => Some(*id),
            None => {
                let id =
                    hostcalls::define_metric(MetricType::Counter, &full_name((stat, tag))).ok();
                if let Some(id) = id {
                    self.counters.insert(key, id);
                }
                id
            }
        };
        if let Some(id) = id {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }

    /// Sets a gauge (per tenant; not on the request path).
    pub fn gauge(&mut self, stat: Stat<'_>, value: u64) {
        let name = full_name(stat);
        let id = match self.gauges.get(&name) {
            Some(id) => Some(*id),
            None => {
                let id = hostcalls::define_metric(MetricType::Gauge, &name).ok();
                if let Some(id) = id {
                    self.gauges.insert(name, id);
                }
                id
            }
        };
        if let Some(id) = id {
            let _ = hostcalls::record_metric(id, value);
        }
    }
}
