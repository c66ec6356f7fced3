//! Authentication and entitlement, below HTTP: the [`IdentityCache`] that checks `uuid:key`
//! against the store's identities (cached briefly in memory, compared in constant time),
//! [`parse_basic`] for the `Authorization` header, and [`entitle`], the rule that a caller may
//! only touch its own namespace (`_` standing for it). The request extractor built on them is
//! [`crate::api::extract::Caller`], through [`crate::services::Identities`].

use base64::Engine;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use whisk_core::names::DEFAULT_NAMESPACE;
use whisk_core::{ErrorKind, Identity, WhiskError};
use whisk_store::Store;

/// OpenWhisk's message when no credentials were sent.
pub const MISSING_MESSAGE: &str =
    "The resource requires authentication, which was not supplied with the request";
/// OpenWhisk's message for credentials that do not match.
pub const INVALID_MESSAGE: &str = "The supplied authentication is invalid";

/// Most uuids the cache remembers (known and unknown); past it, expired entries go first,
/// then every unknown one.
const CACHE_CAPACITY: usize = 100_000;

/// Identities verified recently, by key uuid — and uuids recently found to own no key, so
/// that a stranger repeating one costs no store read.
pub struct IdentityCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, Remembered>>,
}

/// What a uuid was found to be (its identity, or nobody's key) and when.
type Remembered = (Option<Arc<Identity>>, Instant);

impl IdentityCache {
    /// An empty cache whose entries live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The identity owning `uuid:key`, or 401.
    pub async fn authenticate(
        &self,
        store: &dyn Store,
        uuid: &str,
        key: &str,
    ) -> Result<Arc<Identity>, WhiskError> {
        // Every key's uuid is a UUID: anything else is refused without a store read.
        if !looks_like_uuid(uuid) {
            return Err(invalid());
        }
        let cached = self.entries.lock().get(uuid).cloned();
        let identity = match cached {
            Some((Some(id), at)) if at.elapsed() < self.ttl => id,
            Some((None, at)) if at.elapsed() < self.ttl => return Err(invalid()),
            _ => {
                let found = store.get_identity(uuid).await?.map(Arc::new);
                self.remember(uuid, found.clone());
                found.ok_or_else(invalid)?
            }
        };
        if constant_time_eq(identity.key.as_bytes(), key.as_bytes()) {
            Ok(identity)
        } else {
            Err(invalid())
        }
    }

    fn remember(&self, uuid: &str, found: Option<Arc<Identity>>) {
        let mut entries = self.entries.lock();
        if entries.len() >= CACHE_CAPACITY && !entries.contains_key(uuid) {
            entries.retain(|_, (_, at)| at.elapsed() < self.ttl);
            if entries.len() >= CACHE_CAPACITY {
                entries.retain(|_, (id, _)| id.is_some());
            }
            if entries.len() >= CACHE_CAPACITY {
                entries.clear();
            }
        }
        entries.insert(uuid.to_string(), (found, Instant::now()));
    }

    /// Forgets `uuid` (after its identity changed).
    pub fn invalidate(&self, uuid: &str) {
        self.entries.lock().remove(uuid);
    }

    /// How many uuids are remembered (known or not).
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in hex digits.
fn looks_like_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

fn invalid() -> WhiskError {
    WhiskError::new(ErrorKind::Unauthorized, INVALID_MESSAGE)
}

/// Compares without stopping at the first difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Decodes `Authorization: Basic base64(uuid:key)`; `None` when the header is absent.
pub fn parse_basic(value: Option<&str>) -> Result<Option<(String, String)>, WhiskError> {
    let Some(value) = value else { return Ok(None) };
    let (scheme, rest) = value.trim().split_once(' ').ok_or_else(invalid)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(invalid());
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| invalid())?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    let (uuid, key) = whisk_core::identity::split_key(&text)?;
    Ok(Some((uuid.to_string(), key.to_string())))
}

/// The namespace `ns` (from a request path) resolves to for `identity`: its own when `ns` is
/// it or `_`, else 403 naming `what` (`actions/hello`, `activations`, ...).
pub fn entitle(identity: &Identity, ns: &str, what: &str) -> Result<String, WhiskError> {
    if ns == DEFAULT_NAMESPACE || ns == identity.namespace {
        return Ok(identity.namespace.clone());
    }
    let resource = if what.is_empty() {
        ns.to_string()
    } else {
        format!("{ns}/{what}")
    };
    Err(WhiskError::new(
        ErrorKind::Forbidden,
        format!("The supplied authentication is not authorized to access '{resource}'."),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_basic_headers() {
        let h = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("u:k")
        );
        assert_eq!(
            parse_basic(Some(&h)).unwrap(),
            Some(("u".into(), "k".into()))
        );
        assert_eq!(parse_basic(None).unwrap(), None);
        assert!(parse_basic(Some("Bearer x")).is_err());
        assert!(parse_basic(Some("Basic !!!")).is_err());
        let no_colon = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("uk")
        );
        assert!(parse_basic(Some(&no_colon)).is_err());
    }

    #[test]
    fn compares_keys() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;
    use whisk_store::EmbeddedStore;

    #[tokio::test]
    async fn unknown_uuids_are_remembered_and_garbage_costs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("s.redb")).unwrap();
        let cache = IdentityCache::new(Duration::from_secs(60));
        let id = Identity::generate("u", "ns");
        // Unknown: 401, and remembered as unknown.
        let err = cache
            .authenticate(&store, &id.uuid, &id.key)
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unauthorized);
        // The identity appears behind the cache's back: the remembered "unknown" answers,
        // without a store read, until the entry is invalidated (as `whisk admin` does).
        store.put_identity(&id).await.unwrap();
        assert!(cache.authenticate(&store, &id.uuid, &id.key).await.is_err());
        cache.invalidate(&id.uuid);
        assert!(cache.authenticate(&store, &id.uuid, &id.key).await.is_ok());
        assert!(cache.authenticate(&store, &id.uuid, "wrong").await.is_err());
        // Malformed uuids are refused and never remembered.
        for uuid in [
            "not-a-uuid",
            "../../etc/passwd",
            "",
            "0b0b0b0b-1111-2222-3333-44445555666g",
        ] {
            let err = cache.authenticate(&store, uuid, "k").await.unwrap_err();
            assert_eq!(err.kind, ErrorKind::Unauthorized, "{uuid}");
        }
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = IdentityCache::new(Duration::from_secs(60));
        for i in 0..CACHE_CAPACITY + 10 {
            cache.remember(&format!("{i:036}"), None);
        }
        assert!(cache.len() <= CACHE_CAPACITY, "{}", cache.len());
    }
}
