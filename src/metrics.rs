//! Envoy stats for what the filter decides; which counters a request touches is the core's
//! ([`jira_entra_guard_core::metrics`]), and this module only hands them to Envoy. Every counter
//! the filter can count is created at zero when the plugin is configured
//! ([`define_every_counter`]): a series that appears only with its first event hides that event
//! from Prometheus's `increase()` and `rate()`, and so from the alerts. In the VM a counter is
//! looked up on first use and then found by its static name parts, so counting a request
//! allocates nothing and calls no host function: counts are added up in the VM and handed to
//! Envoy on every tick (a quarter second). Names carry one prefix and end in `.<tag>.<value>`
//! segments that `envoy.yaml`'s `stats_tags` turn into Prometheus labels (e.g.
//! `jira_entra_guard_denied_total{reason="acl"}`).

use std::collections::HashMap;

use jira_entra_guard_core::metrics::every_counter;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

/// Common prefix of every stat.
pub const PREFIX: &str = "jira_entra_guard_";

/// A stat: its name and, optionally, one `(tag, value)` pair.
pub type Stat<'a> = (&'static str, Option<(&'static str, &'a str)>);

/// A counter's Envoy id and the counts not yet handed to Envoy.
#[derive(Debug, Clone, Copy)]
struct Counter {
    id: u32,
    pending: u64,
}

/// A counter's name parts: stat, tag, tag value (static strings, compared cheaply).
type CounterKey = (&'static str, &'static str, &'static str);

/// This VM's metric ids.
#[derive(Debug, Default)]
pub struct Metrics {
    // A handful of counters, most of them touched by every request: a short list searched in
    // order costs less than hashing the three name parts.
    counters: Vec<(CounterKey, Counter)>,
    gauges: HashMap<String, u32>,
}

/// Creates, at zero, every counter the filter can count
/// ([`jira_entra_guard_core::metrics::every_counter`]). Defining a stat that exists already is a
/// lookup in Envoy, so each VM may do it; the request path is unchanged (the VM's own list
/// still fills on first use).
pub fn define_every_counter() {
    for stat in every_counter() {
        let _ = hostcalls::define_metric(MetricType::Counter, &full_name(stat));
    }
}

fn full_name((stat, tag): Stat<'_>) -> String {
    match tag {
        Some((tag, value)) => format!("{PREFIX}{stat}.{tag}.{value}"),
        None => format!("{PREFIX}{stat}"),
    }
}

impl Metrics {
    /// Adds one to a counter whose name parts are all static (handed to Envoy by [`flush`]).
    ///
    /// [`flush`]: Metrics::flush
    pub fn count(&mut self, stat: &'static str, tag: Option<(&'static str, &'static str)>) {
        let key = match tag {
            Some((t, v)) => (stat, t, v),
            None => (stat, "", ""),
        };
        if let Some((_, counter)) = self.counters.iter_mut().find(|(k, _)| *k == key) {
            counter.pending = counter.pending.saturating_add(1);
            return;
        }
        if let Ok(id) = hostcalls::define_metric(MetricType::Counter, &full_name((stat, tag))) {
            self.counters.push((key, Counter { id, pending: 1 }));
        }
    }

    /// Hands the counts added up since the last flush to Envoy.
    pub fn flush(&mut self) {
        for (_, counter) in &mut self.counters {
            if counter.pending > 0 {
                let delta = i64::try_from(counter.pending).unwrap_or(i64::MAX);
                let _ = hostcalls::increment_metric(counter.id, delta);
                counter.pending = 0;
            }
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
