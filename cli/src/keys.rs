//! Signing keys from files: `--jwks FILE` (one key set for every tenant) or
//! `--jwks TENANT_ID=FILE` (repeatable), parsed by the core exactly as a fetched key set is,
//! and offered to the decision as the core's [`FixedKeySets`]: the files are all there is, so a
//! token naming a key they lack is decided as it stands, and a tenant without a file has no
//! key set (503).

use std::path::Path;

use jira_entra_guard_core::guid::Guid;
use jira_entra_guard_core::keys::fixed::FixedKeySets;
use jira_entra_guard_core::keys::jwks::{parse_jwks, KeySet};
use jira_entra_guard_core::policy::Policy;

/// Reads the `--jwks` arguments for `policy`'s tenants: the key set of each configured
/// tenant, in [`Policy::tenants`] order, none where no file was given for the tenant.
pub fn load(policy: &Policy, args: &[String]) -> Result<FixedKeySets, String> {
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
                    .ok_or_else(|| format!("--jwks {arg}: {tenant} is not a configured tenant"))?;
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
    Ok(FixedKeySets::new(sets))
}

fn read(path: &Path) -> Result<KeySet, String> {
    let body = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_jwks(&body).map_err(|e| format!("{}: {e}", path.display()))
}
