//! The configuration document as written: strict serde shapes that reject unknown fields and
//! wrong types, so typos fail at configure time instead of silently widening access. Nothing
//! here is validated beyond its JSON type; [`super::compile`] does the rest with field paths.
//!
//! Optional fields are `Option`s so that an explicit `null` (common when the JSON is rendered
//! from YAML) means the same as leaving the field out. Every object is read through
//! [`Object`], because serde's derived structs would otherwise also accept a JSON array of
//! positional values in place of an object.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// A configuration object that must be written as a JSON object.
#[derive(Debug)]
pub(super) struct Object<T>(pub(super) T);

impl<T> std::ops::Deref for Object<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// What a configuration object is called in "expected ..." messages.
pub(super) trait Described {
    /// E.g. `a tenant object`.
    const EXPECTING: &'static str;
}

impl<'de, T: Deserialize<'de> + Described> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}

/// Accepts only a map and hands it to `T`'s derived implementation.
struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de> + Described> Visitor<'de> for ObjectVisitor<T> {
    type Value = Object<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Object)
    }
}

/// The whole plugin configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) tenants: Vec<Object<RawTenant>>,
    pub(super) clients: Vec<Object<RawClient>>,
    pub(super) public_paths: Option<Vec<Object<RawPublicRule>>>,
    pub(super) clock_skew_seconds: Option<i64>,
    pub(super) mode: Option<String>,
    pub(super) audit_log: Option<String>,
    pub(super) token_cache_size: Option<i64>,
    pub(super) key_wait_ms: Option<i64>,
}

/// One entry of `tenants`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTenant {
    pub(super) tenant_id: String,
    pub(super) audiences: Vec<String>,
    pub(super) jwks: Object<RawJwks>,
}

/// A tenant's `jwks` object: where its key set is fetched from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJwks {
    pub(super) cluster: String,
    pub(super) authority: Option<String>,
    pub(super) path: Option<String>,
    pub(super) discovery: Option<bool>,
    pub(super) refresh_seconds: Option<i64>,
    pub(super) min_refetch_seconds: Option<i64>,
    pub(super) max_stale_seconds: Option<i64>,
    pub(super) fetch_timeout_ms: Option<i64>,
}

/// One entry of `clients`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClient {
    pub(super) name: String,
    pub(super) app_id: String,
    pub(super) tenant_id: Option<String>,
    pub(super) allow: Vec<Object<RawRule>>,
    pub(super) deny: Option<Vec<Object<RawRule>>>,
    pub(super) required_roles: Option<Vec<String>>,
    pub(super) allow_client_secret: Option<bool>,
    pub(super) upstream_authorization_env: Option<String>,
    pub(super) mode: Option<String>,
}

/// An `allow` or `deny` rule of a client.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub(super) methods: Vec<String>,
    pub(super) paths: Vec<String>,
    pub(super) projects: Option<Vec<String>>,
}

/// A `public_paths` rule: like a client rule, without `projects`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPublicRule {
    pub(super) methods: Vec<String>,
    pub(super) paths: Vec<String>,
}

impl Described for RawConfig {
    const EXPECTING: &'static str = "a configuration object";
}

impl Described for RawTenant {
    const EXPECTING: &'static str = "a tenant object";
}

impl Described for RawJwks {
    const EXPECTING: &'static str = "a jwks object";
}

impl Described for RawClient {
    const EXPECTING: &'static str = "a client object";
}

impl Described for RawRule {
    const EXPECTING: &'static str = "a rule object";
}

impl Described for RawPublicRule {
    const EXPECTING: &'static str = "a rule object";
}
