//! Each tenant's key record and key-set document in Envoy's shared data, common to all VMs of
//! the plugin's `vm_id` in one Envoy process. This module carries out the shared-data commands
//! of the key lifecycle (`jira_entra_guard_core::keys::lifecycle`) and decides nothing: what
//! to read, what to write and what a write's outcome means is decided there.

use jira_entra_guard_core::keys::lifecycle::WriteResult;
use jira_entra_guard_core::keys::record::{shared_document_key, shared_record_key};
use jira_entra_guard_core::policy::{Policy, TenantIndex};
use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

#[derive(Debug, Clone, Default)]
struct Slot {
    record_key: String,
    document_key: String,
}

/// The shared-data keys of every tenant of a policy.
#[derive(Debug, Clone, Default)]
pub struct SharedKeys {
    slots: Vec<Slot>,
}

impl SharedKeys {
    /// The keys of the policy's tenants.
    pub fn for_policy(policy: &Policy) -> Self {
        let slots = policy
            .tenants()
            .iter()
            .map(|t| {
                let record_key = shared_record_key(&t.tenant_id.to_string(), &t.jwks);
                Slot {
                    document_key: shared_document_key(&record_key),
                    record_key,
                }
            })
            .collect();
        SharedKeys { slots }
    }

    /// The tenant's record as stored, with its compare-and-swap token.
    pub fn read_record(&self, tenant: TenantIndex) -> (Option<Vec<u8>>, Option<u32>) {
        match self
            .slots
            .get(tenant.0)
            .map(|s| hostcalls::get_shared_data(&s.record_key))
        {
            Some(Ok((bytes, cas))) => (bytes, cas),
            _ => (None, None),
        }
    }

    /// The tenant's key-set document as stored.
    pub fn read_document(&self, tenant: TenantIndex) -> Option<Vec<u8>> {
        let slot = self.slots.get(tenant.0)?;
        hostcalls::get_shared_data(&slot.document_key).ok()?.0
    }

    /// Stores the tenant's record if it is unchanged since the read that gave `cas`.
    pub fn write_record(&self, tenant: TenantIndex, bytes: &[u8], cas: Option<u32>) -> WriteResult {
        let Some(slot) = self.slots.get(tenant.0) else {
            return WriteResult::Failed("no such tenant".to_owned());
        };
        match hostcalls::set_shared_data(&slot.record_key, Some(bytes), cas) {
            Ok(()) => WriteResult::Stored,
            Err(Status::CasMismatch) => WriteResult::CasMismatch,
            Err(status) => WriteResult::Failed(format!("{status:?}")),
        }
    }

    /// Stores a key-set document for every VM.
    pub fn publish_document(&self, tenant: TenantIndex, document: &[u8]) {
        if let Some(slot) = self.slots.get(tenant.0) {
            if let Err(status) =
                hostcalls::set_shared_data(&slot.document_key, Some(document), None)
            {
                log::warn!("cannot store key set: {status:?}");
            }
        }
    }
}
