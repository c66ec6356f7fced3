//! [`RedisBackend`]: registry state in Redis, so that a restarted directory, or several
//! directories on one Redis, serve the same maps.
//!
//! Schema (`{g}` is a group: `esc(namespace):esc(group)`, where `esc` writes `%` as `%25` and
//! `:` as `%3A`, so that every (namespace, group) has its own keys):
//! - `whisk:dir:peers:{g}` — hash, instance id → peer as JSON.
//! - `whisk:dir:version:{g}` — the group's version, `INCR`ed by every change; deleted with the
//!   group's last peer.
//! - `whisk:dir:floor` — the highest version a deleted group reached: a group created again
//!   starts above it, so a group's version never goes back.
//! - `whisk:dir:groups` — set of every `{g}` that has a peer now: at most `max_groups` of them,
//!   of at most `max_group_peers` peers each (a register past either is refused, as the
//!   in-memory backend refuses it).
//! - `whisk:dir:invoker:{n}` — set of `{g}\n{id}`: the instances registered by invoker `n`.
//! - `whisk:dir:leases` — sorted set, invoker id → lease deadline (Redis server time, epoch ms):
//!   one clock for every directory.
//! - channel `whisk:dir:changes` — `{origin}\n{g}` after every change; `origin` names the
//!   directory that made it (which has already pushed it to its own watchers).
//!
//! Every mutation is one Lua script (atomic), which returns the group after it. Lua reads the
//! invoker index and leases by key names it builds, so this needs a standalone Redis (or
//! Valkey), not a cluster.

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSub};
use redis::{Client, RedisError, Script};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::backend::{BackendEvent, GroupKey, RegistryBackend};
use crate::error::DirectoryError;
use crate::proto::{Peer, PeerMap};

const GROUPS: &str = "whisk:dir:groups";
const FLOOR: &str = "whisk:dir:floor";
/// The error code of a register refused by the caps.
const FULL: &str = "WHISKFULL";
const LEASES: &str = "whisk:dir:leases";
/// The pub/sub channel of change notifications.
pub const CHANGES_CHANNEL: &str = "whisk:dir:changes";

const NOW_MS: &str = r"
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
";

// KEYS: peers, version, groups, invoker index of the new peer, leases, floor.
// ARGV: id, peer json, {g}, invoker id, channel, origin, lease ms (started when the invoker
// holds no live lease: no entry is ever outside a lease), max groups, max group peers.
const REGISTER: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  local n = redis.call('HLEN', KEYS[1])
  if n >= tonumber(ARGV[9]) then
    return redis.error_reply('WHISKFULL group holds its most instances (' .. ARGV[9] .. ')')
  end
  if n == 0 and redis.call('SCARD', KEYS[3]) >= tonumber(ARGV[8]) then
    return redis.error_reply('WHISKFULL the directory holds its most groups (' .. ARGV[8] .. '); the group cannot be created')
  end
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('SET', KEYS[2], redis.call('GET', KEYS[6]) or '0')
end
local held = redis.call('ZSCORE', KEYS[5], ARGV[4])
if not held or tonumber(held) <= now then
  redis.call('ZADD', KEYS[5], now + tonumber(ARGV[7]), ARGV[4])
end
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local inv = tostring(cjson.decode(old)['invoker_id'])
  if inv ~= ARGV[4] then
    redis.call('SREM', 'whisk:dir:invoker:' .. inv, ARGV[3] .. '\n' .. ARGV[1])
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[4], ARGV[3] .. '\n' .. ARGV[1])
redis.call('SADD', KEYS[3], ARGV[3])
local v = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[5], ARGV[6] .. '\n' .. ARGV[3])
return {v, redis.call('HGETALL', KEYS[1])}
";

// forget(g, p, vk, v): once group `g` (peers key `p`, version key `vk`, at version `v`) is
// empty, takes it out of the groups set and raises the floor to its version.
const FORGET: &str = r"
local function forget(g, p, vk, v)
  if redis.call('HLEN', p) == 0 then
    local floor = tonumber(redis.call('GET', 'whisk:dir:floor') or '0')
    if v > floor then redis.call('SET', 'whisk:dir:floor', v) end
    redis.call('SREM', 'whisk:dir:groups', g)
    redis.call('DEL', vk)
  end
end
";

// KEYS: peers, version. ARGV: id, activation id ('' = any), {g}, channel, origin.
const DEREGISTER: &str = r"
local removed = 0
local old = redis.call('HGET', KEYS[1], ARGV[1])
local v = tonumber(redis.call('GET', KEYS[2]) or redis.call('GET', 'whisk:dir:floor') or '0')
if old then
  local p = cjson.decode(old)
  if ARGV[2] == '' or p['activation_id'] == ARGV[2] then
    redis.call('HDEL', KEYS[1], ARGV[1])
    redis.call('SREM', 'whisk:dir:invoker:' .. tostring(p['invoker_id']), ARGV[3] .. '\n' .. ARGV[1])
    v = redis.call('INCR', KEYS[2])
    forget(ARGV[3], KEYS[1], KEYS[2], v)
    redis.call('PUBLISH', ARGV[4], ARGV[5] .. '\n' .. ARGV[3])
    removed = 1
  end
end
return {removed, v, redis.call('HGETALL', KEYS[1])}
";

// KEYS: peers, groups. ARGV: {g}. Drops an empty group from the set (atomically: not one that
// just got a peer).
const PRUNE: &str = r"
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end
";

// KEYS: leases. ARGV: invoker id, ttl ms. A lease lapsed but not swept yet is renewed.
const HEARTBEAT: &str = r"
local prev = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
if prev then return 0 else return 1 end
";

// KEYS: leases. ARGV: channel, origin. Returns {{g}, version, peers}... of changed groups.
const EXPIRE: &str = r"
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #lapsed == 0 then return {} end
local changed, order = {}, {}
for _, inv in ipairs(lapsed) do
  redis.call('ZREM', KEYS[1], inv)
  local ikey = 'whisk:dir:invoker:' .. inv
  for _, m in ipairs(redis.call('SMEMBERS', ikey)) do
    local nl = string.find(m, '\n', 1, true)
    if nl then
      local g, id = string.sub(m, 1, nl - 1), string.sub(m, nl + 1)
      local pkey = 'whisk:dir:peers:' .. g
      local cur = redis.call('HGET', pkey, id)
      if cur and tostring(cjson.decode(cur)['invoker_id']) == inv then
        redis.call('HDEL', pkey, id)
        if not changed[g] then changed[g] = true; table.insert(order, g) end
      end
    end
  end
  redis.call('DEL', ikey)
end
local out = {}
for _, g in ipairs(order) do
  local v = redis.call('INCR', 'whisk:dir:version:' .. g)
  forget(g, 'whisk:dir:peers:' .. g, 'whisk:dir:version:' .. g, v)
  redis.call('PUBLISH', ARGV[1], ARGV[2] .. '\n' .. g)
  table.insert(out, {g, v, redis.call('HGETALL', 'whisk:dir:peers:' .. g)})
end
return out
";

/// A peer as stored in Redis (JSON; the Lua scripts read `invoker_id` and `activation_id`).
#[derive(Serialize, Deserialize)]
struct StoredPeer {
    id: String,
    ip: String,
    #[serde(default)]
    port: u32,
    #[serde(default)]
    invoker_id: u32,
    #[serde(default)]
    activation_id: String,
    #[serde(default)]
    since_ms: i64,
}

impl From<&Peer> for StoredPeer {
    fn from(p: &Peer) -> Self {
        StoredPeer {
            id: p.id.clone(),
            ip: p.ip.clone(),
            port: p.port,
            invoker_id: p.invoker_id,
            activation_id: p.activation_id.clone(),
            since_ms: p.since_ms,
        }
    }
}

impl From<StoredPeer> for Peer {
    fn from(p: StoredPeer) -> Self {
        Peer {
            id: p.id,
            ip: p.ip,
            port: p.port,
            invoker_id: p.invoker_id,
            activation_id: p.activation_id,
            since_ms: p.since_ms,
        }
    }
}

/// Registry state in Redis.
pub struct RedisBackend {
    conn: ConnectionManager,
    url: String,
    origin: String,
    events: Mutex<Option<mpsc::UnboundedReceiver<BackendEvent>>>,
    stop: CancellationToken,
    register: Script,
    deregister: Script,
    heartbeat: Script,
    expire: Script,
    max_groups: usize,
    max_group_peers: usize,
}

impl Drop for RedisBackend {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl RedisBackend {
    /// Connects to `url` (`redis://host:port[/db]`) and subscribes to change notifications;
    /// the registry holds at most `max_groups` groups of at most `max_group_peers` peers.
    /// Fails with [`DirectoryError::Unavailable`] when Redis cannot be reached now; once
    /// connected, it reconnects by itself (calls fail with `Unavailable` meanwhile).
    pub async fn connect(
        url: &str,
        max_groups: usize,
        max_group_peers: usize,
    ) -> Result<RedisBackend, DirectoryError> {
        let client = Client::open(url)
            .map_err(|e| DirectoryError::Invalid(format!("redis url {url:?}: {e}")))?;
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_with_config(client.clone(), cfg)
            .await
            .map_err(|e| unavailable(url, e))?;
        let mut pubsub = client
            .get_async_pubsub()
            .await
            .map_err(|e| unavailable(url, e))?;
        pubsub
            .subscribe(CHANGES_CHANNEL)
            .await
            .map_err(|e| unavailable(url, e))?;
        let origin = uuid::Uuid::new_v4().simple().to_string();
        let (tx, rx) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        tokio::spawn(listen(
            client,
            pubsub,
            origin.clone(),
            tx,
            stop.clone(),
            url.to_string(),
        ));
        Ok(RedisBackend {
            conn,
            url: url.to_string(),
            origin,
            events: Mutex::new(Some(rx)),
            stop,
            register: Script::new(&format!("{NOW_MS}{REGISTER}")),
            deregister: Script::new(&format!("{FORGET}{DEREGISTER}")),
            heartbeat: Script::new(&format!("{NOW_MS}{HEARTBEAT}")),
            expire: Script::new(&format!("{NOW_MS}{FORGET}{EXPIRE}")),
            max_groups: max_groups.max(1),
            max_group_peers: max_group_peers.max(1),
        })
    }

    fn err(&self, e: RedisError) -> DirectoryError {
        if e.code() == Some(FULL) {
            return DirectoryError::Unavailable(e.detail().unwrap_or("full").to_string());
        }
        if e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
        {
            unavailable(&self.url, e)
        } else {
            DirectoryError::Internal(format!("redis at {}: {e}", self.url))
        }
    }
}

fn unavailable(url: &str, e: RedisError) -> DirectoryError {
    DirectoryError::Unavailable(format!("redis at {url} is not reachable: {e}"))
}

#[async_trait]
impl RegistryBackend for RedisBackend {
    async fn register(
        &self,
        key: &GroupKey,
        peer: Peer,
        lease: Duration,
    ) -> Result<PeerMap, DirectoryError> {
        let g = group_id(key);
        let json = serde_json::to_string(&StoredPeer::from(&peer))
            .map_err(|e| DirectoryError::Internal(e.to_string()))?;
        let (version, flat): (u64, Vec<String>) = self
            .register
            .key(format!("whisk:dir:peers:{g}"))
            .key(format!("whisk:dir:version:{g}"))
            .key(GROUPS)
            .key(format!("whisk:dir:invoker:{}", peer.invoker_id))
            .key(LEASES)
            .key(FLOOR)
            .arg(&peer.id)
            .arg(json)
            .arg(&g)
            .arg(peer.invoker_id.to_string())
            .arg(CHANGES_CHANNEL)
            .arg(&self.origin)
            .arg(lease.as_millis().max(1) as u64)
            .arg(self.max_groups)
            .arg(self.max_group_peers)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))?;
        to_map(key, version, flat)
    }

    async fn deregister(
        &self,
        key: &GroupKey,
        id: &str,
        activation_id: &str,
    ) -> Result<(bool, PeerMap), DirectoryError> {
        let g = group_id(key);
        let (removed, version, flat): (u8, u64, Vec<String>) = self
            .deregister
            .key(format!("whisk:dir:peers:{g}"))
            .key(format!("whisk:dir:version:{g}"))
            .arg(id)
            .arg(activation_id)
            .arg(&g)
            .arg(CHANGES_CHANNEL)
            .arg(&self.origin)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))?;
        Ok((removed == 1, to_map(key, version, flat)?))
    }

    async fn renew_lease(&self, invoker_id: u32, ttl: Duration) -> Result<bool, DirectoryError> {
        let new: u8 = self
            .heartbeat
            .key(LEASES)
            .arg(invoker_id)
            .arg(ttl.as_millis() as u64)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))?;
        Ok(new == 1)
    }

    async fn expire_leases(&self) -> Result<Vec<PeerMap>, DirectoryError> {
        let changed: Vec<(String, u64, Vec<String>)> = self
            .expire
            .key(LEASES)
            .arg(CHANGES_CHANNEL)
            .arg(&self.origin)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))?;
        changed
            .into_iter()
            .map(|(g, version, flat)| {
                let key = parse_group_id(&g).ok_or_else(|| {
                    DirectoryError::Internal(format!("malformed group id {g:?} in redis"))
                })?;
                to_map(&key, version, flat)
            })
            .collect()
    }

    async fn load(&self, key: &GroupKey) -> Result<PeerMap, DirectoryError> {
        let g = group_id(key);
        let (flat, version, floor): (Vec<String>, Option<u64>, Option<u64>) = redis::pipe()
            .atomic()
            .hgetall(format!("whisk:dir:peers:{g}"))
            .get(format!("whisk:dir:version:{g}"))
            .get(FLOOR)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))?;
        // A deleted group reads as empty at the floor: never below a version it had.
        to_map(key, version.or(floor).unwrap_or(0), flat)
    }

    async fn load_all(&self) -> Result<Vec<PeerMap>, DirectoryError> {
        let ids: Vec<String> = redis::cmd("SMEMBERS")
            .arg(GROUPS)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))?;
        let mut maps = Vec::with_capacity(ids.len());
        for g in ids {
            match parse_group_id(&g) {
                Some(key) => {
                    let map = self.load(&key).await?;
                    if map.peers.is_empty() {
                        // Left by a version that kept every group ever seen: not a group now.
                        let _: Result<(), _> = Script::new(PRUNE)
                            .key(format!("whisk:dir:peers:{g}"))
                            .key(GROUPS)
                            .arg(&g)
                            .invoke_async(&mut self.conn.clone())
                            .await;
                        continue;
                    }
                    maps.push(map)
                }
                None => warn!(group = %g, "ignoring a malformed group id in redis"),
            }
        }
        Ok(maps)
    }

    async fn load_namespace(&self, namespace: &str) -> Result<Vec<PeerMap>, DirectoryError> {
        let ids: Vec<String> = redis::cmd("SMEMBERS")
            .arg(GROUPS)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.err(e))?;
        let mut maps = vec![];
        for key in ids.iter().filter_map(|g| parse_group_id(g)) {
            if key.namespace == namespace {
                maps.push(self.load(&key).await?);
            }
        }
        Ok(maps)
    }

    fn take_events(&self) -> Option<mpsc::UnboundedReceiver<BackendEvent>> {
        self.events.lock().take()
    }
}

/// Reads change notifications; on a lost connection, resubscribes (with backoff) and asks for
/// a resync, since notifications may have been missed meanwhile.
async fn listen(
    client: Client,
    first: PubSub,
    origin: String,
    tx: mpsc::UnboundedSender<BackendEvent>,
    stop: CancellationToken,
    url: String,
) {
    let mut pubsub = Some(first);
    let mut backoff = Duration::from_millis(20);
    let mut warned = false;
    loop {
        if let Some(ps) = pubsub.take() {
            backoff = Duration::from_millis(20);
            let mut messages = ps.into_on_message();
            loop {
                let msg = tokio::select! {
                    _ = stop.cancelled() => return,
                    m = messages.next() => m,
                };
                let Some(msg) = msg else { break };
                let Ok(payload) = msg.get_payload::<String>() else {
                    continue;
                };
                let Some((from, g)) = payload.split_once('\n') else {
                    continue;
                };
                if from == origin {
                    continue;
                }
                if let Some(key) = parse_group_id(g) {
                    if tx.send(BackendEvent::Changed(key)).is_err() {
                        return;
                    }
                }
            }
            warn!(%url, "lost the redis change notifications; reconnecting");
            warned = true;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(1));
        let attempt = async {
            let mut ps = client.get_async_pubsub().await?;
            ps.subscribe(CHANGES_CHANNEL).await?;
            Ok::<_, RedisError>(ps)
        };
        match attempt.await {
            Ok(ps) => {
                if warned {
                    info!(%url, "redis change notifications resumed");
                    warned = false;
                }
                pubsub = Some(ps);
                if tx.send(BackendEvent::Resync).is_err() {
                    return;
                }
            }
            Err(e) => {
                if !warned {
                    warn!(%url, "cannot subscribe to redis change notifications: {e}");
                    warned = true;
                }
            }
        }
    }
}

fn esc(s: &str) -> String {
    s.replace('%', "%25").replace(':', "%3A")
}

fn unesc(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        match rest.get(i + 1..i + 3)? {
            "25" => out.push('%'),
            "3A" => out.push(':'),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// The Redis name of a group: `esc(namespace):esc(group)`.
pub fn group_id(key: &GroupKey) -> String {
    format!("{}:{}", esc(&key.namespace), esc(&key.group))
}

fn parse_group_id(g: &str) -> Option<GroupKey> {
    let (ns, group) = g.split_once(':')?;
    Some(GroupKey::new(unesc(ns)?, unesc(group)?))
}

fn to_map(key: &GroupKey, version: u64, flat: Vec<String>) -> Result<PeerMap, DirectoryError> {
    let mut peers = Vec::with_capacity(flat.len() / 2);
    for pair in flat.chunks(2) {
        let [id, json] = pair else {
            return Err(DirectoryError::Internal(format!(
                "odd reply for the peers of {key}"
            )));
        };
        let p: StoredPeer = serde_json::from_str(json).map_err(|e| {
            DirectoryError::Internal(format!("peer {id:?} of {key} in redis is not valid: {e}"))
        })?;
        peers.push(Peer::from(p));
    }
    peers.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(PeerMap {
        namespace: key.namespace.clone(),
        group: key.group.clone(),
        version,
        peers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids_are_unambiguous() {
        let cases = [
            ("a:b", "c"),
            ("a", "b:c"),
            ("a%3A", "b"),
            ("%", "%25"),
            ("guest", "default"),
        ];
        let ids: Vec<String> = cases
            .iter()
            .map(|(n, g)| group_id(&GroupKey::new(*n, *g)))
            .collect();
        for (i, (n, g)) in cases.iter().enumerate() {
            assert_eq!(parse_group_id(&ids[i]), Some(GroupKey::new(*n, *g)));
            for j in 0..i {
                assert_ne!(ids[i], ids[j]);
            }
        }
        assert_eq!(parse_group_id("a%zz:b"), None);
        assert_eq!(parse_group_id("nocolon"), None);
    }
}
