//! Each tenant's key record in Envoy's shared data, common to all VMs of the plugin's `vm_id` in
//! one Envoy process. The small lifecycle record and the key-set document are kept under two
//! keys, so that the per-tick check reads only the small one; the record is changed only with
//! compare-and-swap, which is what makes a fetch claim exclusive.

use jira_entra_guard_core::key_schedule::{shared_record_key, Claim, SharedKeyRecord};
use jira_entra_guard_core::policy::{Policy, TenantIndex};
use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

/// How often a record update is retried when another VM changed the record in between.
const CAS_ATTEMPTS: usize = 8;

#[derive(Debug, Clone, Default)]
struct Slot {
    record_key: String,
    document_key: String,
    seen_cas: Option<u32>,
}

/// The shared-data slots of every tenant of a policy.
#[derive(Debug, Clone, Default)]
pub struct SharedKeys {
    slots: Vec<Slot>,
}

impl SharedKeys {
    /// The slots of the policy's tenants.
    pub fn for_policy(policy: &Policy) -> Self {
        let slots = policy
            .tenants()
            .iter()
            .map(|t| {
                let record_key = shared_record_key(&t.tenant_id.to_string(), &t.jwks);
                Slot {
                    document_key: format!("{record_key}/document"),
                    record_key,
                    seen_cas: None,
                }
            })
            .collect();
        SharedKeys { slots }
    }

    fn read(key: &str) -> (Option<SharedKeyRecord>, Option<u32>) {
        match hostcalls::get_shared_data(key) {
            Ok((bytes, cas)) => (bytes.and_then(|b| SharedKeyRecord::decode(&b)), cas),
            Err(_) => (None, None),
        }
    }

    /// The tenant's record with its document, if it changed since this VM last looked.
    pub fn read_if_changed(&mut self, tenant: TenantIndex) -> Option<SharedKeyRecord> {
        let slot = self.slots.get_mut(tenant.0)?;
        let (record, cas) = Self::read(&slot.record_key);
        if cas == slot.seen_cas {
            return None;
        }
        slot.seen_cas = cas;
        let mut record = record.unwrap_or_default();
        if record.generation != 0 {
            if let Ok((Some(document), _)) = hostcalls::get_shared_data(&slot.document_key) {
                record.document = String::from_utf8_lossy(&document).into_owned();
            }
        }
        Some(record)
    }

    /// Applies `decide` to the current record and, when it claims a fetch, stores the claim —
    /// unless another VM changed the record in between, in which case that VM's view wins.
    pub fn claim(
        &mut self,
        tenant: TenantIndex,
        decide: impl FnOnce(&mut SharedKeyRecord) -> Claim,
    ) -> Claim {
        let Some(slot) = self.slots.get(tenant.0) else {
            return Claim::NotDue;
        };
        let (record, cas) = Self::read(&slot.record_key);
        let mut record = record.unwrap_or_default();
        let claim = decide(&mut record);
        if claim != Claim::Claimed {
            return claim;
        }
        match hostcalls::set_shared_data(&slot.record_key, Some(&record.encode()), cas) {
            Ok(()) => Claim::Claimed,
            Err(Status::CasMismatch) => Claim::InFlight,
            Err(status) => {
                log::warn!("cannot store key record: {status:?}");
                Claim::NotDue
            }
        }
    }

    /// Applies `change` to the current record, retrying when another VM changed it meanwhile.
    pub fn update(&mut self, tenant: TenantIndex, mut change: impl FnMut(&mut SharedKeyRecord)) {
        let Some(slot) = self.slots.get(tenant.0) else {
            return;
        };
        for _ in 0..CAS_ATTEMPTS {
            let (record, cas) = Self::read(&slot.record_key);
            let mut record = record.unwrap_or_default();
            record.document.clear();
            change(&mut record);
            match hostcalls::set_shared_data(&slot.record_key, Some(&record.encode()), cas) {
                Err(Status::CasMismatch) => continue,
                Err(status) => log::warn!("cannot store key record: {status:?}"),
                Ok(()) => {}
            }
            return;
        }
        log::warn!(
            "key record of tenant #{} changed too often to update",
            tenant.0
        );
    }

    /// Stores a good key-set document for every VM; written before the record that announces it.
    pub fn publish_document(&mut self, tenant: TenantIndex, document: &str) {
        if let Some(slot) = self.slots.get(tenant.0) {
            if let Err(status) =
                hostcalls::set_shared_data(&slot.document_key, Some(document.as_bytes()), None)
            {
                log::warn!("cannot store key set: {status:?}");
            }
        }
    }
}
