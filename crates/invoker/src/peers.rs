//! Peer maps on the invoker's side: registers an instance with the directory while its
//! activation runs, follows every group it hosts, and writes each new map — atomically, as
//! `addrMap.txt` (the seed's `id=ip&id=ip`) and `peers.json` — into the folder of every
//! container currently serving that group, plus a host copy under
//! `<data>/addrMap/<namespace>/<group>/`. Keeps its lease with heartbeats and re-registers
//! its running instances when the directory comes back after an outage.

use futures::StreamExt;
use parking_lot::Mutex;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use whisk_directory::{Peer, PeerDirectory, PeerMap};

/// Port the peers library listens on by default (the seed's).
pub const PEER_PORT: u32 = 65432;

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
    host_root: PathBuf,
    groups: Mutex<HashMap<Key, Group>>,
    running: Mutex<HashMap<(String, String, String), Peer>>,
    /// Which group each container folder serves now; every write to a folder holds its lock
    /// and checks the owner, so a late write of a group never lands in a folder that has
    /// moved on to another group.
    owners: Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<Owner>>>>,
}

impl Peers {
    /// A writer whose host copies live under `host_root` (`<data>/addrMap`).
    pub fn new(
        directory: Arc<dyn PeerDirectory>,
        invoker_id: u32,
        host_root: PathBuf,
    ) -> Arc<Self> {
        Arc::new(Self {
            directory,
            invoker_id,
            host_root,
            groups: Mutex::default(),
            running: Mutex::default(),
            owners: Mutex::default(),
        })
    }

    /// Keeps the invoker's lease alive (every `lease / 3`); after a failed heartbeat, the next
    /// successful one re-registers every instance still running here.
    pub fn start_heartbeat(self: &Arc<Self>, lease: Duration, shutdown: CancellationToken) {
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
        });
    }

    /// Gives `folder` the maps of (`namespace`, `group`) from now on (and the current one at
    /// once, when known).
    pub async fn attach(self: &Arc<Self>, namespace: &str, group: &str, folder: &Path) {
        let key = (namespace.to_string(), group.to_string());
        // Own the folder first: a write of the group that races with this attach waits for
        // the lock, then finds the folder owned and writes only what is newer.
        let lock = self.owner_lock(folder);
        let mut owner = lock.lock().await;
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
        let host = self
            .host_root
            .join(path_segment(&key.0))
            .join(path_segment(&key.1));
        let mut backoff = Duration::from_millis(50);
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

/// A namespace or group as one path segment (`/` and `%` percent-encoded).
fn path_segment(s: &str) -> String {
    s.replace('%', "%25").replace('/', "%2F")
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
}
