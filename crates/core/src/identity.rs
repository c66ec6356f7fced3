//! Subjects, their keys and namespaces, per-namespace limits, and the well-known keys that
//! OpenWhisk's standalone mode ships.

use crate::error::WhiskError;
use serde::{Deserialize, Serialize};

/// The guest key of OpenWhisk's standalone mode (`uuid:key`), namespace `guest`.
pub const GUEST_KEY: &str =
    "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";
/// The whisk.system key, namespace `whisk.system`.
pub const SYSTEM_KEY: &str =
    "789c46b1-71f6-4ed5-8c54-816aa4f8c502:abczO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

/// Per-namespace limits; `None` means the system default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserLimits {
    /// Invocations per minute.
    #[serde(
        rename = "invocationsPerMinute",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub invocations_per_minute: Option<u32>,
    /// Activations in flight at once.
    #[serde(
        rename = "concurrentInvocations",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub concurrent_invocations: Option<u32>,
    /// Trigger fires per minute.
    #[serde(
        rename = "firesPerMinute",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub fires_per_minute: Option<u32>,
}

/// Who is calling: a subject with one namespace and its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The subject (user) name.
    pub subject: String,
    /// The namespace the key belongs to.
    pub namespace: String,
    /// The key's uuid part.
    pub uuid: String,
    /// The key's secret part.
    pub key: String,
    /// Per-namespace limits.
    #[serde(default)]
    pub limits: UserLimits,
}

impl Identity {
    /// Builds an identity from a `uuid:key` string.
    pub fn from_api_key(subject: &str, namespace: &str, api_key: &str) -> Result<Self, WhiskError> {
        let (uuid, key) = split_key(api_key)?;
        Ok(Self {
            subject: subject.to_string(),
            namespace: namespace.to_string(),
            uuid: uuid.to_string(),
            key: key.to_string(),
            limits: UserLimits::default(),
        })
    }
    /// A fresh identity with random credentials.
    pub fn generate(subject: &str, namespace: &str) -> Self {
        let uuid = uuid::Uuid::new_v4().to_string();
        let key: String = {
            use rand::Rng;
            const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
            let mut rng = rand::rng();
            (0..64)
                .map(|_| ALPHA[rng.random_range(0..ALPHA.len())] as char)
                .collect()
        };
        Self {
            subject: subject.to_string(),
            namespace: namespace.to_string(),
            uuid,
            key,
            limits: UserLimits::default(),
        }
    }
    /// `uuid:key`.
    pub fn api_key(&self) -> String {
        format!("{}:{}", self.uuid, self.key)
    }
    /// The guest identity.
    pub fn guest() -> Self {
        Self::from_api_key("guest", "guest", GUEST_KEY).expect("well-formed constant")
    }
    /// The whisk.system identity.
    pub fn system() -> Self {
        Self::from_api_key("whisk.system", "whisk.system", SYSTEM_KEY)
            .expect("well-formed constant")
    }
}

/// Splits `uuid:key`, rejecting anything else.
pub fn split_key(api_key: &str) -> Result<(&str, &str), WhiskError> {
    match api_key.split_once(':') {
        Some((u, k)) if !u.is_empty() && !k.is_empty() => Ok((u, k)),
        _ => Err(WhiskError::new(
            crate::error::ErrorKind::Unauthorized,
            "The supplied authentication is invalid",
        )),
    }
}
