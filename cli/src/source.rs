//! Where the plugin configuration comes from: a plain JSON document (what Envoy hands the filter)
//! or an Envoy bootstrap file in YAML or JSON, from which the configuration of every
//! `envoy.filters.http.wasm` filter running jira-entra-guard is taken, together with the
//! environment its Wasm VM would see.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// The `@type` of the Envoy Wasm HTTP filter's typed config.
const WASM_FILTER_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
/// The `@type` of a plugin configuration given as text.
const STRING_VALUE_TYPE: &str = "type.googleapis.com/google.protobuf.StringValue";
/// The filter's `root_id` (and usual `name`) in Envoy.
const ROOT_ID: &str = "jira-entra-guard";

/// How to read the configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Decide from the extension (`.yaml`/`.yml` are Envoy files) and, for JSON, from the
    /// content (a document with `static_resources` is an Envoy file).
    Auto,
    /// An Envoy bootstrap file, YAML or JSON.
    Envoy,
}

/// The environment of the Wasm VM, as far as an Envoy file declares it.
#[derive(Debug, Clone, Default)]
pub struct VmEnvironment {
    /// `vm_config.environment_variables.key_values`: names with literal values.
    pub key_values: BTreeMap<String, String>,
    /// `vm_config.environment_variables.host_env_keys`: names copied from Envoy's environment.
    pub host_env_keys: Vec<String>,
}

/// One plugin configuration found in the file.
#[derive(Debug, Clone)]
pub struct PluginConfig {
    /// Where it was found (`""` for a plain JSON document), e.g.
    /// `static_resources.listeners[0]...http_filters[0]`.
    pub location: String,
    /// The configuration document, as the filter receives it.
    pub json: Vec<u8>,
    /// The VM's declared environment; `None` for a plain JSON document (the process
    /// environment stands in for it).
    pub vm_env: Option<VmEnvironment>,
}

/// Reads `path` and returns every jira-entra-guard plugin configuration in it.
pub fn load(path: &Path, format: Format) -> Result<Vec<PluginConfig>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let yaml = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
    if format == Format::Envoy || yaml {
        let document: Value = if yaml {
            serde_norway::from_slice(&bytes)
                .map_err(|e| format!("{}: not a YAML document: {e}", path.display()))?
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}: not a JSON document: {e}", path.display()))?
        };
        return from_envoy(&document).map_err(|e| format!("{}: {e}", path.display()));
    }
    // A plain configuration goes to the core as it is, so that its error messages (syntax
    // errors with line and column included) are exactly the filter's.
    let looks_like_envoy = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .is_some_and(|v| v.get("static_resources").is_some());
    if looks_like_envoy {
        let document: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not a JSON document: {e}", path.display()))?;
        return from_envoy(&document).map_err(|e| format!("{}: {e}", path.display()));
    }
    Ok(vec![PluginConfig {
        location: String::new(),
        json: bytes,
        vm_env: None,
    }])
}

/// Finds the Wasm filters whose `root_id` (or, without one, `name`) is `jira-entra-guard`,
/// anywhere in the document.
fn from_envoy(document: &Value) -> Result<Vec<PluginConfig>, String> {
    let mut found = Vec::new();
    collect(document, String::new(), &mut found)?;
    if found.is_empty() {
        return Err(format!(
            "no envoy.filters.http.wasm filter with root_id {ROOT_ID:?} found"
        ));
    }
    Ok(found)
}

fn collect(value: &Value, at: String, found: &mut Vec<PluginConfig>) -> Result<(), String> {
    match value {
        Value::Object(map) => {
            if map.get("@type").and_then(Value::as_str) == Some(WASM_FILTER_TYPE) {
                if let Some(config) = map.get("config") {
                    if is_ours(config) {
                        found.push(plugin_config(config, &at)?);
                        return Ok(());
                    }
                }
            }
            for (key, child) in map {
                let next = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                collect(child, next, found)?;
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                collect(child, format!("{at}[{index}]"), found)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn is_ours(config: &Value) -> bool {
    match config.get("root_id").and_then(Value::as_str) {
        Some(root_id) => root_id == ROOT_ID,
        None => config.get("name").and_then(Value::as_str) == Some(ROOT_ID),
    }
}

fn plugin_config(config: &Value, at: &str) -> Result<PluginConfig, String> {
    let configuration = config
        .get("configuration")
        .ok_or_else(|| format!("{at}: the filter has no configuration"))?;
    let type_url = configuration.get("@type").and_then(Value::as_str);
    if type_url != Some(STRING_VALUE_TYPE) {
        return Err(format!(
            "{at}.config.configuration: expected a {STRING_VALUE_TYPE} holding the JSON document, found {}",
            type_url.unwrap_or("no @type")
        ));
    }
    let json = configuration
        .get("value")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .as_bytes()
        .to_vec();
    let variables = config
        .get("vm_config")
        .and_then(|vm| vm.get("environment_variables"));
    let mut vm_env = VmEnvironment::default();
    if let Some(Value::Object(pairs)) = variables.and_then(|v| v.get("key_values")) {
        for (name, value) in pairs {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            vm_env.key_values.insert(name.clone(), text);
        }
    }
    if let Some(Value::Array(names)) = variables.and_then(|v| v.get("host_env_keys")) {
        vm_env.host_env_keys = names
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
    }
    Ok(PluginConfig {
        location: at.to_owned(),
        json,
        vm_env: Some(vm_env),
    })
}
