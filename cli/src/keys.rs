//! Signing keys from files: `--jwks FILE` (one key set for every tenant) or
//! `--jwks TENANT_ID=FILE` (repeatable), parsed by the core exactly as a fetched key set is,
//! and offered to the decision through the core's [`KeySets`] interface.

use std::path::Path;

use jira_entra_guard_core::guid::Guid;
use jira_entra_guard_core::keys::jwks::{
    parse_jwks, KeySet, KeySetError, KeySetState, KeySets, Refetch,
};
use jira_entra_guard_core::policy::{Policy, TenantIndex};

/// The key set of each configured tenant, in [`Policy::tenants`] order; `None` where no file
/// was given for the tenant.
pub struct FileKeys {
    sets: Vec<Option<KeySet>>,
}

impl FileKeys {
    /// Reads the `--jwks` arguments for `policy`'s tenants.
    pub fn load(policy: &Policy, args: &[String]) -> Result<FileKeys, String> {
        let mut sets: Vec<Option<KeySet>> = vec![None; policy.tenants().len()];
        let mut for_all = None;
        for arg in args {
            match arg.split_once('=') {
                Some((tenant, file)) if Guid::parse(tenant).is_some() => {
                    let wanted = Guid::parse(tenant);
                    let index = policy
                        .tenants()
                        .iter()
                        .position(|t| Some(t.tenant_id) == wanted)
                        .ok_or_else(|| {
                            format!("--jwks {arg}: {tenant} is not a configured tenant")
                        })?;
                    if let Some(slot) = sets.get_mut(index) {
                        *slot = Some(read(Path::new(file))?);
                    }
                }
                _ => {
                    if for_all.is_some() {
                        return Err(format!(
                            "--jwks {arg}: only one key-set file may be given without a tenant; use --jwks TENANT_ID=FILE for the others"
                        ));
                    }
                    for_all = Some(read(Path::new(arg))?);
                }
            }
        }
        if let Some(set) = for_all {
            for slot in sets.iter_mut().filter(|slot| slot.is_none()) {
                *slot = Some(set.clone());
            }
        }
        Ok(FileKeys { sets })
    }

    /// True when a key set was given for the tenant.
    pub fn has(&self, tenant: TenantIndex) -> bool {
        self.sets.get(tenant.0).is_some_and(Option::is_some)
    }
}

fn read(path: &Path) -> Result<KeySet, String> {
    let body = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_jwks(&body).map_err(|e| format!("{}: {e}", path.display()))
}

impl KeySets for FileKeys {
    fn state(&self, tenant: TenantIndex) -> KeySetState<'_> {
        match self.sets.get(tenant.0) {
            Some(Some(set)) => KeySetState::Ready(set),
            _ => KeySetState::Unavailable(KeySetError::Unavailable),
        }
    }

    /// The files are all there is: a token naming a key they lack is decided as it stands.
    fn refetch(&self, _tenant: TenantIndex) -> Refetch {
        Refetch::RateLimited
    }
}
