//! The environment variables `upstream_authorization_env` names, looked up as the filter's Wasm
//! VM would see them.
//!
//! For a plain JSON configuration that is the process environment, with `--env NAME=VALUE`
//! taking precedence. For an Envoy file it is what the file declares for the VM: the literal
//! `key_values`, and the `host_env_keys` copied from Envoy's own environment (for which the
//! process environment and `--env` stand in). A variable the Envoy file does not declare is not
//! set, exactly as in the VM, even when the process has it. `--ignore-missing-env` substitutes
//! a placeholder for a variable that would be taken from the environment but is not set, so CI
//! can validate a configuration without holding the secrets.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::source::VmEnvironment;

/// What stands in for a missing variable under `--ignore-missing-env`: a valid header value.
pub const PLACEHOLDER: &str = "Bearer placeholder-for-validation";

/// The `--env` and `--ignore-missing-env` options.
#[derive(Debug, Clone, Default)]
pub struct EnvOptions {
    /// Values given with `--env NAME=VALUE`.
    pub supplied: BTreeMap<String, String>,
    /// Whether a missing variable gets [`PLACEHOLDER`].
    pub ignore_missing: bool,
}

impl EnvOptions {
    /// Parses the `--env` arguments.
    pub fn new(pairs: &[String], ignore_missing: bool) -> Result<EnvOptions, String> {
        let mut supplied = BTreeMap::new();
        for pair in pairs {
            let (name, value) = pair
                .split_once('=')
                .filter(|(name, _)| !name.is_empty())
                .ok_or_else(|| format!("--env {pair:?}: expected NAME=VALUE"))?;
            supplied.insert(name.to_owned(), value.to_owned());
        }
        Ok(EnvOptions {
            supplied,
            ignore_missing,
        })
    }
}

/// Looks variables up for one configuration and remembers what it had to make up or refuse,
/// for the notes printed afterwards.
pub struct Lookup<'a> {
    options: &'a EnvOptions,
    vm_env: Option<&'a VmEnvironment>,
    placeholders: RefCell<Vec<String>>,
    undeclared: RefCell<Vec<String>>,
}

impl<'a> Lookup<'a> {
    /// A lookup for a configuration whose VM declares `vm_env` (`None`: a plain document).
    pub fn new(options: &'a EnvOptions, vm_env: Option<&'a VmEnvironment>) -> Lookup<'a> {
        Lookup {
            options,
            vm_env,
            placeholders: RefCell::new(Vec::new()),
            undeclared: RefCell::new(Vec::new()),
        }
    }

    /// The value of `name` in the VM's environment.
    pub fn get(&self, name: &str) -> Option<String> {
        let from_host = || {
            self.options
                .supplied
                .get(name)
                .cloned()
                .or_else(|| std::env::var(name).ok())
        };
        let found = match self.vm_env {
            None => from_host(),
            Some(vm) => {
                if let Some(value) = self.options.supplied.get(name) {
                    if vm.key_values.contains_key(name)
                        || vm.host_env_keys.iter().any(|k| k == name)
                    {
                        return Some(value.clone());
                    }
                }
                if let Some(value) = vm.key_values.get(name) {
                    return Some(value.clone());
                }
                if !vm.host_env_keys.iter().any(|k| k == name) {
                    self.undeclared.borrow_mut().push(name.to_owned());
                    return None;
                }
                from_host()
            }
        };
        match found {
            Some(value) if !value.is_empty() => Some(value),
            _ if self.options.ignore_missing => {
                self.placeholders.borrow_mut().push(name.to_owned());
                Some(PLACEHOLDER.to_owned())
            }
            other => other,
        }
    }

    /// Lines to print after the configuration was compiled.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for name in self.placeholders.borrow().iter() {
            notes.push(format!(
                "note: environment variable {name:?} is not set; a placeholder was used (--ignore-missing-env)"
            ));
        }
        for name in self.undeclared.borrow().iter() {
            notes.push(format!(
                "note: {name:?} is in neither vm_config.environment_variables.key_values nor host_env_keys of the Envoy file, so the Wasm VM does not have it"
            ));
        }
        notes
    }
}
