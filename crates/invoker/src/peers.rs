//! Peer maps on the invoker's side: registers an instance with the directory while its
//! activation runs, follows every group it hosts, and writes each new map — atomically, as
//! `addrMap.txt` (the seed's `id=ip&id=ip`) and `peers.json` — into the folder of every
//! container currently serving that group, plus a host copy under
//! `<data>/addrMap/<namespace>/<group>/`. Keeps its lease with heartbeats and re-registers
//! its running instances when the directory comes back after an outage.
//!
//! Each group has a secret that only its instances get: [`PeerKey::group_secret`], HMAC-SHA256
//! of the cluster's peer key over the namespace and group, written as `group.key` into the
//! folder of every container serving that group (per container, read-only to the action)
//! before its activation runs, and removed when it ends. `whisk_peers` proves knowledge of it
//! on every connection. The host copies never hold it. Namespaces and groups become one path
//! segment each ([`path_segment`]): no name, not even `..`, leaves `<data>/addrMap`.

use futures::StreamExt;
use parking_lot::Mutex;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use whisk_directory_api::{Peer, PeerDirectory, PeerMap};

/// Port the peers library listens on by default (the seed's).
pub const PEER_PORT: u32 = 65432;

/// The file of a container's peer folder that holds its group's secret.
pub const GROUP_KEY_FILE: &str = "group.key";

/// The cluster's peer key: every invoker with the same key gives a group the same secret.
#[derive(Clone)]
pub struct PeerKey(ring::hmac::Key);

impl std::fmt::Debug for PeerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerKey(..)")
    }
}

impl PeerKey {
    /// A random key of this process.
    pub fn random() -> Self {
        let bytes: [u8; 32] = rand::random();
        Self::from_bytes(&bytes)
    }

    /// A key from its bytes.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        PeerKey(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, bytes))
    }

    /// The key in `path` (its text, trimmed; at least 32 characters).
    pub fn from_file(path: &Path) -> std::io::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            std::io::Error::new(e.kind(), format!("peer key {}: {e}", path.display()))
        })?;
        let text = text.trim();
        if text.len() < 32 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "peer key {}: {} characters, at least 32 needed (`whisk certs --peer-key`)",
                    path.display(),
                    text.len()
                ),
            ));
        }
        Ok(Self::from_bytes(text.as_bytes()))
    }

    /// The file `path` when given, else a random key (logged: groups then only authenticate
    /// between instances of this invoker).
    pub fn load(path: Option<&Path>) -> std::io::Result<Self> {
        match path {
            Some(p) => Self::from_file(p),
            None => Ok(Self::random()),
        }
    }

    /// The secret of (`namespace`, `group`), as 64 hex digits: HMAC-SHA256(key,
    /// `"whisk-rs peers v1\n" len(namespace) namespace len(group) group`), lengths as 8-byte
    /// big-endian integers so that no two (namespace, group) pairs share an input.
    pub fn group_secret(&self, namespace: &str, group: &str) -> String {
        let mut ctx = ring::hmac::Context::with_key(&self.0);
        ctx.update(b"whisk-rs peers v1\n");
        for part in [namespace, group] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part.as_bytes());
        }
        ctx.sign()
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

type Key = (String, String);

/// The group a folder serves and the newest version written into it.
#[derive(Default)]
struct Owner {
    key: Option<Key>,
    version: u64,
}

struct Group {
    folders: HashSet<PathBuf>,
    last: Option<PeerMap>,
    written: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

/// The invoker's peer-map writer and directory registrations.
pub struct Peers {
    directory: Arc<dyn PeerDirectory>,
    invoker_id: u32,
    key: PeerKey,
    host_root: PathBuf,
    groups: Mutex<HashMap<Key, Group>>,
    running: Mutex<HashMap<(String, String, String), Peer>>,
    /// Which group each container folder serves now; every write to a folder holds its lock
    /// and checks the owner, so a late write of a group never lands in a folder that has
    /// moved on to another group.
    owners: Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<Owner>>>>,
}

impl Peers {
    /// A writer whose host copies live under `host_root` (`<data>/addrMap`), with a random
    /// peer key.
    pub fn new(
        directory: Arc<dyn PeerDirectory>,
        invoker_id: u32,
        host_root: PathBuf,
    ) -> Arc<Self> {
        Self::with_key(directory, invoker_id, host_root, PeerKey::random())
    }

    /// Like [`Peers::new`], with the cluster's peer `key`.
    pub fn with_key(
        directory: Arc<dyn PeerDirectory>,
        invoker_id: u32,
        host_root: PathBuf,
        key: PeerKey,
    ) -> Arc<Self> {
        Arc::new(Self {
            directory,
            invoker_id,
            key,
            host_root,
            groups: Mutex::default(),
            running: Mutex::default(),
            owners: Mutex::default(),
        })
    }

    /// Keeps the invoker's lease alive (every `lease / 3`); after a failed heartbeat, the next
    /// successful one re-registers every instance still running here. The task ends once
    /// `shutdown` is cancelled.
    pub fn start_heartbeat(
        self: &Arc<Self>,
        lease: Duration,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let peers = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval((lease / 3).max(Duration::from_millis(10)));
            let mut healthy = true;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => {}
                }
                match peers.directory.heartbeat(peers.invoker_id, lease).await {
                    Ok(lease) if !healthy || lease.new_lease => {
                        healthy = true;
                        tracing::info!(
                            "new lease at the directory; registering running instances again"
                        );
                        let running: Vec<_> = peers
                            .running
                            .lock()
                            .iter()
                            .map(|((ns, g, _), p)| (ns.clone(), g.clone(), p.clone()))
                            .collect();
                        for (ns, g, p) in running {
                            if let Err(e) = peers.directory.register(&ns, &g, p).await {
                                tracing::warn!(error = %e, "re-registering an instance failed");
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if healthy {
                            tracing::warn!(error = %e, "directory heartbeat failed; peer maps will catch up when it returns");
                        }
                        healthy = false;
                    }
                }
            }
        })
    }

    /// Gives `folder` the group's secret, and the maps of (`namespace`, `group`) from now on
    /// (and the current one at once, when known).
    pub async fn attach(self: &Arc<Self>, namespace: &str, group: &str, folder: &Path) {
        let key = (namespace.to_string(), group.to_string());
        // Own the folder first: a write of the group that races with this attach waits for
        // the lock, then finds the folder owned and writes only what is newer.
        let lock = self.owner_lock(folder);
        let mut owner = lock.lock().await;
        let secret = self.key.group_secret(namespace, group);
        if let Err(e) = write_atomic(folder, GROUP_KEY_FILE, secret).await {
            tracing::warn!(error = %e, folder = %folder.display(), "writing a group secret failed; its peers will refuse this instance");
        }
        *owner = Owner {
            key: Some(key.clone()),
            version: 0,
        };
        let last = {
            let mut groups = self.groups.lock();
            if let Some(g) = groups.get_mut(&key) {
                g.folders.insert(folder.to_path_buf());
                g.last.clone()
            } else {
                let (written, _) = watch::channel(0);
                let task = tokio::spawn(self.clone().follow(key.clone()));
                let mut folders = HashSet::new();
                folders.insert(folder.to_path_buf());
                groups.insert(
                    key.clone(),
                    Group {
                        folders,
                        last: None,
                        written,
                        task,
                    },
                );
                None
            }
        };
        if let Some(map) = last {
            owner.version = map.version;
            write_map(folder, &map).await;
        }
    }

    fn owner_lock(&self, folder: &Path) -> Arc<tokio::sync::Mutex<Owner>> {
        self.owners
            .lock()
            .entry(folder.to_path_buf())
            .or_default()
            .clone()
    }

    /// Writes `map` into every folder of `folders` that still serves `key` and has nothing
    /// newer, and into the host copy, in one blocking batch. Folder locks are taken in path
    /// order, so two writers never wait on each other in a cycle.
    async fn write_owned(&self, mut folders: Vec<PathBuf>, host: &Path, key: &Key, map: &PeerMap) {
        folders.sort();
        let locks: Vec<_> = {
            let owners = self.owners.lock();
            folders
                .into_iter()
                .filter_map(|f| owners.get(&f).cloned().map(|l| (f, l)))
                .collect()
        };
        let mut guards = Vec::with_capacity(locks.len());
        let mut targets = Vec::with_capacity(locks.len() + 1);
        for (folder, lock) in locks {
            let owner = lock.lock_owned().await;
            if owner.key.as_ref() == Some(key) && map.version >= owner.version {
                targets.push(folder);
                guards.push(owner);
            }
        }
        targets.push(host.to_path_buf());
        write_maps(targets, map).await;
        for g in &mut guards {
            g.version = map.version;
        }
    }

    /// Stops giving maps to `folder` and empties it; the group's watch ends with its last
    /// folder.
    pub async fn detach(&self, namespace: &str, group: &str, folder: &Path) {
        let key = (namespace.to_string(), group.to_string());
        {
            let mut groups = self.groups.lock();
            if let Some(g) = groups.get_mut(&key) {
                g.folders.remove(folder);
                if g.folders.is_empty() {
                    if let Some(g) = groups.remove(&key) {
                        g.task.abort();
                    }
                }
            }
        }
        let empty = PeerMap {
            namespace: namespace.into(),
            group: group.into(),
            version: 0,
            peers: vec![],
        };
        let lock = self.owner_lock(folder);
        let mut owner = lock.lock().await;
        *owner = Owner::default();
        let _ = tokio::fs::remove_file(folder.join(GROUP_KEY_FILE)).await;
        write_map(folder, &empty).await;
        self.owners.lock().remove(folder);
    }

    /// Registers an instance (its activation starts running).
    pub async fn register(
        &self,
        namespace: &str,
        group: &str,
        id: &str,
        ip: std::net::IpAddr,
        activation_id: &str,
    ) {
        let peer = Peer {
            id: id.to_string(),
            ip: ip.to_string(),
            port: PEER_PORT,
            invoker_id: self.invoker_id,
            activation_id: activation_id.to_string(),
            since_ms: whisk_core::now_ms(),
        };
        whisk_metrics::peer_registered();
        self.running
            .lock()
            .insert((namespace.into(), group.into(), id.into()), peer.clone());
        if let Err(e) = self.directory.register(namespace, group, peer).await {
            tracing::warn!(error = %e, namespace, group, id, "registering an instance failed; it runs without a peer map entry");
        }
    }

    /// Deregisters an instance (its activation ended or its container died).
    pub async fn deregister(&self, namespace: &str, group: &str, id: &str, activation_id: &str) {
        self.running
            .lock()
            .remove(&(namespace.into(), group.into(), id.into()));
        if let Err(e) = self
            .directory
            .deregister(namespace, group, id, activation_id)
            .await
        {
            tracing::warn!(error = %e, namespace, group, id, "deregistering an instance failed");
        }
    }

    /// Versions written to every folder of a group (for benchmarks and tests); `None` when the
    /// group is not followed here.
    pub fn written(&self, namespace: &str, group: &str) -> Option<watch::Receiver<u64>> {
        self.groups
            .lock()
            .get(&(namespace.to_string(), group.to_string()))
            .map(|g| g.written.subscribe())
    }

    async fn follow(self: Arc<Self>, key: Key) {
        let host = host_dir(&self.host_root, &key.0, &key.1);
        let mut backoff = Duration::from_millis(50);
        let mut newest_seen = 0;
        loop {
            let mut stream = match self.directory.watch(&key.0, &key.1).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "watching a peer group failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            };
            while let Some(map) = stream.next().await {
                let folders: Vec<PathBuf> = {
                    let mut groups = self.groups.lock();
                    match groups.get_mut(&key) {
                        Some(g) => {
                            g.last = Some(map.clone());
                            g.folders.iter().cloned().collect()
                        }
                        None => return,
                    }
                };
                tracing::debug!(namespace = %key.0, group = %key.1, version = map.version, peers = map.peers.len(), folders = folders.len(), "peer map changed");
                self.write_owned(folders, &host, &key, &map).await;
                // Propagation: from the newest instance's registration to its map written here.
                if let Some(newest) = map
                    .peers
                    .iter()
                    .map(|p| p.since_ms)
                    .max()
                    .filter(|n| *n > newest_seen)
                {
                    newest_seen = newest;
                    whisk_metrics::peer_map_propagated(std::time::Duration::from_millis(
                        (whisk_core::now_ms() - newest).max(0) as u64,
                    ));
                }
                if let Some(g) = self.groups.lock().get(&key) {
                    g.written.send_replace(map.version);
                }
            }
            tokio::time::sleep(backoff).await;
        }
    }
}

/// `id=ip&id=ip` sorted by id, as the seed's functions read it.
pub fn render_addr_map(map: &PeerMap) -> String {
    let mut peers: Vec<&Peer> = map.peers.iter().collect();
    peers.sort_by(|a, b| a.id.cmp(&b.id));
    let entries: Vec<String> = peers.iter().map(|p| format!("{}={}", p.id, p.ip)).collect();
    format!("{}\n", entries.join("&"))
}

/// `{version, namespace, group, peers: [{id, ip, port, invoker, since}]}`.
pub fn render_peers_json(map: &PeerMap) -> String {
    let peers: Vec<_> = map
        .peers
        .iter()
        .map(|p| json!({"id": p.id, "ip": p.ip, "port": p.port, "invoker": p.invoker_id, "since": p.since_ms}))
        .collect();
    json!({"version": map.version, "namespace": map.namespace, "group": map.group, "peers": peers})
        .to_string()
}

/// Writes both files into `folder`, each by temp file + rename.
pub async fn write_map(folder: &Path, map: &PeerMap) {
    write_maps(vec![folder.to_path_buf()], map).await;
}

/// Writes both files into every folder of `folders` (rendered once, one blocking task).
pub async fn write_maps(folders: Vec<PathBuf>, map: &PeerMap) {
    // addrMap.txt first: whoever sees a version in peers.json finds it in addrMap.txt too.
    let files = [
        ("addrMap.txt", render_addr_map(map)),
        ("peers.json", render_peers_json(map)),
    ];
    let write = move || {
        for folder in folders {
            let one = || -> std::io::Result<()> {
                std::fs::create_dir_all(&folder)?;
                for (name, content) in &files {
                    let tmp = folder.join(format!(".{name}.tmp"));
                    std::fs::write(&tmp, content)?;
                    std::fs::rename(&tmp, folder.join(name))?;
                }
                Ok(())
            };
            if let Err(e) = one() {
                tracing::warn!(error = %e, folder = %folder.display(), "writing a peer map failed");
            }
        }
    };
    let _ = tokio::task::spawn_blocking(write).await;
}

/// Writes `content` to `folder/name` through a temporary file and a rename.
async fn write_atomic(folder: &Path, name: &str, content: String) -> std::io::Result<()> {
    tokio::fs::create_dir_all(folder).await?;
    let tmp = folder.join(format!(".{name}.tmp"));
    tokio::fs::write(&tmp, content).await?;
    tokio::fs::rename(&tmp, folder.join(name)).await
}

/// The host copy folder of (`namespace`, `group`): always a child of a child of `root`.
pub fn host_dir(root: &Path, namespace: &str, group: &str) -> PathBuf {
    root.join(path_segment(namespace)).join(path_segment(group))
}

/// A namespace or group as one path segment that never leaves its parent: `%`, `/`, `\\` and
/// NUL percent-encoded, and a leading `.` too (so neither `.` nor `..` nor a hidden name);
/// empty becomes `%`.
pub fn path_segment(s: &str) -> String {
    if s.is_empty() {
        return "%".into();
    }
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            '\\' => out.push_str("%5C"),
            '\0' => out.push_str("%00"),
            '.' if i == 0 => out.push_str("%2E"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_seed_format() {
        let p = |id: &str, ip: &str| Peer {
            id: id.into(),
            ip: ip.into(),
            port: PEER_PORT,
            ..Default::default()
        };
        let map = PeerMap {
            namespace: "guest".into(),
            group: "g".into(),
            version: 3,
            peers: vec![p("myname1", "10.0.0.185"), p("myname0", "10.0.0.184")],
        };
        assert_eq!(
            render_addr_map(&map),
            "myname0=10.0.0.184&myname1=10.0.0.185\n"
        );
        let v: serde_json::Value = serde_json::from_str(&render_peers_json(&map)).unwrap();
        assert_eq!(v["version"], 3);
        assert_eq!(v["peers"][0]["port"], 65432);
        assert_eq!(path_segment("guest/fib"), "guest%2Ffib");
    }

    #[test]
    fn host_copies_stay_under_their_root() {
        let root = Path::new("/data/addrMap");
        for (ns, group) in [
            ("guest", ".."),
            ("..", ".."),
            ("guest", "."),
            ("guest", "../../etc"),
            ("guest", "/etc"),
            ("guest", "a\\..\\b"),
            ("guest", ""),
            ("guest", ".hidden"),
        ] {
            let d = host_dir(root, ns, group);
            let parts: Vec<_> = d.strip_prefix(root).unwrap().components().collect();
            assert_eq!(parts.len(), 2, "{ns:?}/{group:?} -> {}", d.display());
            for p in parts {
                assert!(
                    matches!(p, std::path::Component::Normal(n) if !n.to_string_lossy().starts_with('.')),
                    "{ns:?}/{group:?} -> {}",
                    d.display()
                );
            }
        }
        assert_eq!(host_dir(root, "guest", "ring"), root.join("guest/ring"));
        assert_ne!(path_segment(".."), path_segment("%2E."));
    }

    #[test]
    fn group_secrets_differ_per_namespace_group_and_key() {
        let k = PeerKey::from_bytes(b"0123456789abcdef0123456789abcdef");
        let s = k.group_secret("guest", "ring");
        assert_eq!(s.len(), 64);
        assert_eq!(s, k.group_secret("guest", "ring"), "deterministic");
        assert_eq!(
            s,
            PeerKey::from_bytes(b"0123456789abcdef0123456789abcdef").group_secret("guest", "ring"),
            "the same on every invoker with the same key"
        );
        assert_ne!(s, k.group_secret("mallory", "ring"));
        assert_ne!(s, k.group_secret("guest", "ring2"));
        assert_ne!(k.group_secret("ab", "c"), k.group_secret("a", "bc"));
        assert_ne!(s, PeerKey::random().group_secret("guest", "ring"));
    }

    #[test]
    fn peer_key_files() {
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short");
        std::fs::write(&short, "abc\n").unwrap();
        let e = PeerKey::from_file(&short).unwrap_err();
        assert!(e.to_string().contains("at least 32"), "{e}");
        let good = dir.path().join("peers.key");
        std::fs::write(&good, format!("{}\n", "ab".repeat(32))).unwrap();
        let a = PeerKey::from_file(&good).unwrap();
        let b = PeerKey::from_bytes("ab".repeat(32).as_bytes());
        assert_eq!(a.group_secret("n", "g"), b.group_secret("n", "g"));
        assert!(PeerKey::from_file(&dir.path().join("missing")).is_err());
    }

    #[tokio::test]
    async fn the_secret_is_in_the_folder_only_while_attached() {
        let dir = tempfile::tempdir().unwrap();
        let registry = whisk_directory::Registry::in_memory(Default::default());
        let key = PeerKey::from_bytes(&[7; 32]);
        let peers = Peers::with_key(
            Arc::new(registry),
            0,
            dir.path().join("addrMap"),
            key.clone(),
        );
        let folder = dir.path().join("c1");
        peers.attach("guest", "g", &folder).await;
        assert_eq!(
            std::fs::read_to_string(folder.join(GROUP_KEY_FILE)).unwrap(),
            key.group_secret("guest", "g")
        );
        peers
            .register("guest", "g", "a", "127.0.0.1".parse().unwrap(), "act")
            .await;
        let mut w = peers.written("guest", "g").unwrap();
        w.wait_for(|v| *v >= 1).await.unwrap();
        let host = host_dir(&dir.path().join("addrMap"), "guest", "g");
        assert!(host.join("addrMap.txt").exists());
        assert!(
            !host.join(GROUP_KEY_FILE).exists(),
            "the host copy holds no secret"
        );
        peers.deregister("guest", "g", "a", "act").await;
        peers.detach("guest", "g", &folder).await;
        assert!(!folder.join(GROUP_KEY_FILE).exists());
    }
}
