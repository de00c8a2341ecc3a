//! The Microsoft clouds an Entra ID tenant can live in, and what each fixes for it: the host its
//! keys and discovery documents are served from, and the exact issuer strings of its v1 and v2
//! access tokens. The configuration stage ([`crate::config`]) reads a tenant's `cloud` setting
//! and derives the tenant's key-set authority and trusted issuers from it in one step, so a
//! tenant's tokens, keys and discovery always come from one cloud.
//!
//! Microsoft's published forms:
//!
//! | cloud | authority | v1 issuer | v2 issuer |
//! |---|---|---|---|
//! | `public` | `login.microsoftonline.com` | `https://sts.windows.net/{tid}/` | `https://login.microsoftonline.com/{tid}/v2.0` |
//! | `usgov` | `login.microsoftonline.us` | `https://sts.windows.net/{tid}/` | `https://login.microsoftonline.us/{tid}/v2.0` |
//! | `china` | `login.partner.microsoftonline.cn` | `https://sts.chinacloudapi.cn/{tid}/` | `https://login.partner.microsoftonline.cn/{tid}/v2.0` |
//! | `external_id` | `{tid}.ciamlogin.com` | none | `https://{tid}.ciamlogin.com/{tid}/v2.0` |
//!
//! The public and US Government clouds share the v1 issuer form: a v1 token alone does not say
//! which of the two issued it. What separates them is the key set, which each cloud publishes
//! under its own authority and signs with its own keys.

use std::fmt;

use crate::guid::Guid;

/// A Microsoft cloud that runs Entra ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    /// The public (commercial) cloud, `login.microsoftonline.com`.
    Public,
    /// Azure US Government (GCC High, DoD), `login.microsoftonline.us`.
    UsGov,
    /// Azure China operated by 21Vianet, `login.partner.microsoftonline.cn`.
    China,
    /// Entra External ID (customer) tenants, `{tid}.ciamlogin.com`.
    ExternalId,
}

impl Cloud {
    /// Every cloud, in the order the configuration reference lists them.
    pub const ALL: [Cloud; 4] = [Cloud::Public, Cloud::UsGov, Cloud::China, Cloud::ExternalId];

    /// The configuration name (`cloud` setting) of a cloud.
    pub fn name(self) -> &'static str {
        match self {
            Cloud::Public => "public",
            Cloud::UsGov => "usgov",
            Cloud::China => "china",
            Cloud::ExternalId => "external_id",
        }
    }

    /// The cloud a configuration name stands for.
    pub fn from_name(name: &str) -> Option<Cloud> {
        Cloud::ALL.into_iter().find(|cloud| cloud.name() == name)
    }

    /// The host that serves the tenant's key set and discovery documents.
    pub fn authority(self, tenant: Guid) -> String {
        match self {
            Cloud::Public => "login.microsoftonline.com".to_owned(),
            Cloud::UsGov => "login.microsoftonline.us".to_owned(),
            Cloud::China => "login.partner.microsoftonline.cn".to_owned(),
            Cloud::ExternalId => format!("{tenant}.ciamlogin.com"),
        }
    }

    /// The `iss` of the tenant's v1.0 access tokens; `None` where the cloud issues none.
    pub fn issuer_v1(self, tenant: Guid) -> Option<String> {
        match self {
            Cloud::Public | Cloud::UsGov => Some(format!("https://sts.windows.net/{tenant}/")),
            Cloud::China => Some(format!("https://sts.chinacloudapi.cn/{tenant}/")),
            Cloud::ExternalId => None,
        }
    }

    /// The `iss` of the tenant's v2.0 access tokens.
    pub fn issuer_v2(self, tenant: Guid) -> String {
        format!("https://{}/{tenant}/v2.0", self.authority(tenant))
    }
}

/// The clouds whose v1 or v2 issuer for `tenant` is exactly `iss` (two for the v1 form that the
/// public and US Government clouds share), for explaining an untrusted issuer.
pub fn issuing_clouds(iss: &str, tenant: Guid) -> Vec<Cloud> {
    Cloud::ALL
        .into_iter()
        .filter(|cloud| {
            cloud.issuer_v1(tenant).as_deref() == Some(iss) || cloud.issuer_v2(tenant) == iss
        })
        .collect()
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    fn tid() -> Guid {
        Guid::parse(TID).unwrap()
    }

    #[test]
    fn every_cloud_name_reads_back_as_that_cloud() {
        for cloud in Cloud::ALL {
            assert_eq!(Cloud::from_name(cloud.name()), Some(cloud));
        }
        assert_eq!(Cloud::from_name("Public"), None);
        assert_eq!(Cloud::from_name("gov"), None);
    }

    #[test]
    fn a_cloud_is_displayed_as_its_configuration_name() {
        let shown: Vec<String> = Cloud::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["public", "usgov", "china", "external_id"]);
    }

    #[test]
    fn public_cloud_has_the_published_issuers_and_authority() {
        assert_eq!(Cloud::Public.authority(tid()), "login.microsoftonline.com");
        assert_eq!(
            Cloud::Public.issuer_v1(tid()).unwrap(),
            format!("https://sts.windows.net/{TID}/")
        );
        assert_eq!(
            Cloud::Public.issuer_v2(tid()),
            format!("https://login.microsoftonline.com/{TID}/v2.0")
        );
    }

    #[test]
    fn us_government_shares_the_v1_issuer_but_not_the_v2_issuer() {
        assert_eq!(Cloud::UsGov.authority(tid()), "login.microsoftonline.us");
        assert_eq!(
            Cloud::UsGov.issuer_v1(tid()),
            Cloud::Public.issuer_v1(tid()),
        );
        assert_eq!(
            Cloud::UsGov.issuer_v2(tid()),
            format!("https://login.microsoftonline.us/{TID}/v2.0")
        );
    }

    #[test]
    fn china_has_its_own_issuers_and_authority() {
        assert_eq!(
            Cloud::China.authority(tid()),
            "login.partner.microsoftonline.cn"
        );
        assert_eq!(
            Cloud::China.issuer_v1(tid()).unwrap(),
            format!("https://sts.chinacloudapi.cn/{TID}/")
        );
        assert_eq!(
            Cloud::China.issuer_v2(tid()),
            format!("https://login.partner.microsoftonline.cn/{TID}/v2.0")
        );
    }

    #[test]
    fn external_id_tenants_are_served_from_their_own_host_and_issue_no_v1_tokens() {
        assert_eq!(
            Cloud::ExternalId.authority(tid()),
            format!("{TID}.ciamlogin.com")
        );
        assert_eq!(Cloud::ExternalId.issuer_v1(tid()), None);
        assert_eq!(
            Cloud::ExternalId.issuer_v2(tid()),
            format!("https://{TID}.ciamlogin.com/{TID}/v2.0")
        );
    }

    #[test]
    fn issuing_clouds_names_every_cloud_that_writes_an_issuer_that_way() {
        let v1 = format!("https://sts.windows.net/{TID}/");
        assert_eq!(
            issuing_clouds(&v1, tid()),
            vec![Cloud::Public, Cloud::UsGov]
        );
        let v2 = format!("https://login.partner.microsoftonline.cn/{TID}/v2.0");
        assert_eq!(issuing_clouds(&v2, tid()), vec![Cloud::China]);
        assert!(issuing_clouds("https://login.example/x/v2.0", tid()).is_empty());
    }

    #[test]
    fn tenant_ids_appear_in_lowercase_whatever_the_configured_case() {
        let upper = Guid::parse(&TID.to_uppercase()).unwrap();
        assert_eq!(Cloud::China.issuer_v2(upper), Cloud::China.issuer_v2(tid()));
    }

    /// Tokens of one cloud against a tenant configured in another, with the same tenant id and
    /// a key set that holds the signing key: only the issuer can tell them apart, and it does.
    mod tokens_across_clouds {
        use serde_json::json;

        use crate::policy::{Policy, TenantIndex};
        use crate::test_support::{header, key, keys, policy_json, sign, v1_claims, v2_claims};
        use crate::test_support::{NOW, TENANT};
        use crate::token::verify::{verify_token, VerifyFailure};
        use crate::token::TokenError;

        use super::super::Cloud;

        fn tenant_in(cloud: Cloud) -> Policy {
            let mut document = policy_json();
            document["tenants"][0]["cloud"] = json!(cloud.name());
            crate::config::compile_policy(document.to_string().as_bytes(), &|_| None).unwrap()
        }

        /// A token as `cloud` issues it for the test tenant: v2 when `v2`, else v1.
        fn token_from(cloud: Cloud, v2: bool) -> Option<String> {
            let tenant = super::tid();
            let (mut claims, iss) = if v2 {
                (v2_claims(), Some(cloud.issuer_v2(tenant)))
            } else {
                (v1_claims(), cloud.issuer_v1(tenant))
            };
            claims["iss"] = json!(iss?);
            Some(sign(&key("a"), &header("key-a"), &claims))
        }

        fn outcome(token: &str, policy: &Policy) -> Result<TenantIndex, TokenError> {
            match verify_token(token, policy, &keys(), NOW) {
                Ok(verified) => Ok(verified.tenant),
                Err(VerifyFailure::Token(error)) => Err(error),
                Err(other) => panic!("expected a token outcome, got {other:?}"),
            }
        }

        #[test]
        fn a_tenant_accepts_the_tokens_of_its_own_cloud() {
            for cloud in Cloud::ALL {
                let policy = tenant_in(cloud);
                for v2 in [false, true] {
                    if let Some(token) = token_from(cloud, v2) {
                        assert_eq!(
                            outcome(&token, &policy),
                            Ok(TenantIndex(0)),
                            "{cloud} v2={v2}"
                        );
                    }
                }
            }
        }

        #[test]
        fn a_token_of_another_cloud_is_refused_wherever_the_issuers_differ() {
            let mut refused = 0;
            for configured in Cloud::ALL {
                let policy = tenant_in(configured);
                for issued_by in Cloud::ALL.into_iter().filter(|c| *c != configured) {
                    for v2 in [false, true] {
                        let Some(token) = token_from(issued_by, v2) else {
                            continue;
                        };
                        let tenant = super::tid();
                        let same_issuer = if v2 {
                            Some(issued_by.issuer_v2(tenant)) == Some(configured.issuer_v2(tenant))
                        } else {
                            issued_by.issuer_v1(tenant) == configured.issuer_v1(tenant)
                        };
                        if same_issuer {
                            // Public and US Government v1 tokens: told apart by the key set.
                            continue;
                        }
                        assert_eq!(
                            outcome(&token, &policy),
                            Err(TokenError::UntrustedIssuer),
                            "{issued_by} v2={v2} token at a {configured} tenant"
                        );
                        refused += 1;
                    }
                }
            }
            // 4 clouds x 3 others x 2 versions = 24, less External ID's missing v1 (3 as the
            // issuer) and the two public/US Government v1 pairs.
            assert_eq!(refused, 19);
        }

        #[test]
        fn the_only_shared_issuer_is_the_public_and_us_government_v1_form() {
            let tenant = super::tid();
            for a in Cloud::ALL {
                for b in Cloud::ALL.into_iter().filter(|b| *b != a) {
                    assert_ne!(a.issuer_v2(tenant), b.issuer_v2(tenant));
                    let shared =
                        a.issuer_v1(tenant).is_some() && a.issuer_v1(tenant) == b.issuer_v1(tenant);
                    let expected = matches!(
                        (a, b),
                        (Cloud::Public, Cloud::UsGov) | (Cloud::UsGov, Cloud::Public)
                    );
                    assert_eq!(shared, expected, "{a} {b}");
                }
            }
            assert_eq!(TENANT, tenant.to_string());
        }
    }
}
