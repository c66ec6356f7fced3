//! The cgroups of sandboxed process containers: one cgroup per container holding its memory
//! limit (`limits.memory`) and pids limit, frozen to pause it, killed as a whole to destroy it,
//! and read for out-of-memory kills. Works on cgroup v1 (one hierarchy per controller:
//! `memory`, `pids`, `freezer`, as on this project's CI) and v2 (the unified hierarchy); which
//! one is detected from `/sys/fs/cgroup`.
//!
//! A new process joins its container's cgroups between fork and exec (the files are opened
//! beforehand, see [`Cgroup::join_fds`] and [`join_in_child`]), so not even its first child can
//! escape the limits.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The mount point of cgroup hierarchies.
const CGROUP_FS: &str = "/sys/fs/cgroup";

/// A failure to set up or use cgroups.
#[derive(Debug, Error)]
pub enum CgroupError {
    /// No usable hierarchy: neither v2 nor v1 with memory, pids and freezer.
    #[error("no usable cgroup hierarchy: {0}")]
    Unsupported(String),
    /// A file of the hierarchy could not be created or written.
    #[error("cgroup {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Which cgroup version the host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// One hierarchy per controller.
    V1,
    /// The unified hierarchy.
    V2,
}

/// The parent of every container's cgroup, in each hierarchy used.
#[derive(Debug, Clone)]
pub struct Cgroups {
    version: Version,
    /// v1: the parent in the memory, pids and freezer hierarchies; v2: the one parent.
    parents: Vec<PathBuf>,
}

const V1_CONTROLLERS: [&str; 3] = ["memory", "pids", "freezer"];

impl Cgroups {
    /// Detects the host's hierarchy and creates `parent/<pid>-<random>` (`parent` a relative
    /// path) in it for this process's containers; on v2 the memory and pids controllers are
    /// enabled down to it. What processes that died without cleaning up left in `parent` goes.
    pub fn open(parent: &str) -> Result<Self, CgroupError> {
        let own = format!(
            "{}/{}-{:08x}",
            parent.trim_matches('/'),
            std::process::id(),
            rand::random::<u32>()
        );
        let cgroups = Self::open_at(Path::new(CGROUP_FS), &own)?;
        cgroups.sweep_dead();
        Ok(cgroups)
    }

    /// Removes the folders `<pid>-*` beside this one whose process is gone (with their
    /// emptied container cgroups).
    fn sweep_dead(&self) {
        for own in &self.parents {
            let Some(parent) = own.parent() else { continue };
            let Ok(entries) = fs::read_dir(parent) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(pid) = name.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
                    continue;
                };
                if !e.path().is_dir() || Path::new(&format!("/proc/{pid}")).exists() {
                    continue;
                }
                if let Ok(children) = fs::read_dir(e.path()) {
                    for c in children.flatten() {
                        if c.path().is_dir() {
                            let _ = fs::remove_dir(c.path());
                        }
                    }
                }
                let _ = fs::remove_dir(e.path());
            }
        }
    }

    /// Removes this process's folders with every container cgroup left in them; false while
    /// one still holds a process.
    pub fn remove(&self) -> bool {
        let mut all = true;
        for p in &self.parents {
            if let Ok(children) = fs::read_dir(p) {
                for c in children.flatten() {
                    if c.path().is_dir() && fs::remove_dir(c.path()).is_err() {
                        all = false;
                    }
                }
            }
            match fs::remove_dir(p) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => all = false,
                _ => {}
            }
        }
        all
    }

    /// As [`Cgroups::open`], with the hierarchies mounted under `root`.
    pub fn open_at(root: &Path, parent: &str) -> Result<Self, CgroupError> {
        let parent = parent.trim_matches('/');
        if parent.is_empty() || parent.split('/').any(|s| s.is_empty() || s == "..") {
            return Err(CgroupError::Unsupported(format!(
                "invalid cgroup parent '{parent}'"
            )));
        }
        if root.join("cgroup.controllers").exists() {
            let controllers = fs::read_to_string(root.join("cgroup.controllers"))
                .map_err(io_err(&root.join("cgroup.controllers")))?;
            for c in ["memory", "pids"] {
                if !controllers.split_whitespace().any(|x| x == c) {
                    return Err(CgroupError::Unsupported(format!(
                        "the cgroup v2 hierarchy has no '{c}' controller"
                    )));
                }
            }
            // Enable the controllers on every level down to the parent; the parent itself
            // holds no process, so its children may use them.
            let mut dir = root.to_path_buf();
            for seg in parent.split('/') {
                let control = dir.join("cgroup.subtree_control");
                fs::write(&control, "+memory +pids").map_err(io_err(&control))?;
                dir.push(seg);
                mkdir(&dir)?;
            }
            let control = dir.join("cgroup.subtree_control");
            fs::write(&control, "+memory +pids").map_err(io_err(&control))?;
            return Ok(Self {
                version: Version::V2,
                parents: vec![dir],
            });
        }
        let mut parents = vec![];
        for c in V1_CONTROLLERS {
            let mount = root.join(c);
            if !mount.join("cgroup.procs").exists() {
                return Err(CgroupError::Unsupported(format!(
                    "no cgroup v2 hierarchy and no v1 '{c}' hierarchy at {}",
                    mount.display()
                )));
            }
            let dir = mount.join(parent);
            fs::create_dir_all(&dir).map_err(io_err(&dir))?;
            parents.push(dir);
        }
        // Children of a v1 memory cgroup account hierarchically (the default since 5.x; the
        // file is gone or read-only then).
        let _ = fs::write(parents[0].join("memory.use_hierarchy"), "1");
        Ok(Self {
            version: Version::V1,
            parents,
        })
    }

    /// The detected version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Creates the cgroup `name` with these limits.
    pub fn create(
        &self,
        name: &str,
        memory_bytes: u64,
        pids_max: u64,
    ) -> Result<Cgroup, CgroupError> {
        let dirs: Vec<PathBuf> = self.parents.iter().map(|p| p.join(name)).collect();
        let cg = Cgroup {
            version: self.version,
            dirs,
            procs: vec![],
        };
        let result = (|| {
            for d in &cg.dirs {
                mkdir(d)?;
            }
            let (mem, pids) = match self.version {
                Version::V1 => (&cg.dirs[0], &cg.dirs[1]),
                Version::V2 => (&cg.dirs[0], &cg.dirs[0]),
            };
            match self.version {
                Version::V1 => {
                    write(mem, "memory.limit_in_bytes", &memory_bytes.to_string())?;
                    // With swap accounting, swap counts too (no swap beyond the limit).
                    if mem.join("memory.memsw.limit_in_bytes").exists() {
                        write(
                            mem,
                            "memory.memsw.limit_in_bytes",
                            &memory_bytes.to_string(),
                        )?;
                    }
                }
                Version::V2 => {
                    write(mem, "memory.max", &memory_bytes.to_string())?;
                    if mem.join("memory.swap.max").exists() {
                        write(mem, "memory.swap.max", "0")?;
                    }
                }
            }
            write(pids, "pids.max", &pids_max.to_string())?;
            Ok(())
        })();
        match result {
            Ok(()) => {
                let mut cg = cg;
                for d in &cg.dirs {
                    let path = d.join("cgroup.procs");
                    let f = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(io_err(&path))?;
                    cg.procs.push(f);
                }
                Ok(cg)
            }
            Err(e) => {
                cg.remove();
                Err(e)
            }
        }
    }
}

fn mkdir(dir: &Path) -> Result<(), CgroupError> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(CgroupError::Io {
            path: dir.to_path_buf(),
            source: e,
        }),
    }
}

fn write(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    let path = dir.join(file);
    fs::write(&path, value).map_err(io_err(&path))
}

/// Remounts the host's cgroup2 hierarchy (pure v2, or the `unified` one of a hybrid host)
/// with `favordynmods`, keeping its other options: the kernel then moves tasks between cgroups
/// without waiting for an RCU grace period (one per new container otherwise, on v1 too: the
/// lock is shared), at a small cost to every fork and exit. Ok(false) when already set or no
/// cgroup2 is mounted.
pub fn favor_dynmods() -> io::Result<bool> {
    let mounts = fs::read_to_string("/proc/self/mounts")?;
    let Some((target, opts)) = mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 4 && f[2] == "cgroup2").then(|| (f[1].to_owned(), f[3].to_owned()))
    }) else {
        return Ok(false);
    };
    let opts: Vec<&str> = opts.split(',').collect();
    if opts.contains(&"favordynmods") {
        return Ok(false);
    }
    // The mount point's own flags, kept as they are; the hierarchy's options, plus ours.
    let mut flags = libc::MS_REMOUNT;
    let mut data = vec!["favordynmods"];
    for o in &opts {
        match *o {
            "ro" => flags |= libc::MS_RDONLY,
            "nosuid" => flags |= libc::MS_NOSUID,
            "nodev" => flags |= libc::MS_NODEV,
            "noexec" => flags |= libc::MS_NOEXEC,
            "noatime" => flags |= libc::MS_NOATIME,
            "nodiratime" => flags |= libc::MS_NODIRATIME,
            "relatime" => flags |= libc::MS_RELATIME,
            "strictatime" => flags |= libc::MS_STRICTATIME,
            "rw" | "seclabel" => {}
            other => data.push(other),
        }
    }
    let target = std::ffi::CString::new(target).map_err(io::Error::other)?;
    let data = std::ffi::CString::new(data.join(",")).map_err(io::Error::other)?;
    // SAFETY: mount(2) with valid NUL-terminated strings; remounting changes no memory of ours.
    let r = unsafe {
        libc::mount(
            c"none".as_ptr(),
            target.as_ptr(),
            c"cgroup2".as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(true)
}

/// Moves the calling process into the cgroups whose `cgroup.procs` files are `fds`. Meant for
/// the child between fork and exec: only `write(2)` is called.
pub fn join_in_child(fds: &[RawFd]) -> io::Result<()> {
    for &fd in fds {
        // SAFETY: write(2) on an open descriptor with a valid 1-byte buffer; async-signal-safe.
        let n = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
        if n != 1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// One container's cgroup (a folder per hierarchy on v1).
#[derive(Debug)]
pub struct Cgroup {
    version: Version,
    /// v1: memory, pids, freezer; v2: one folder.
    dirs: Vec<PathBuf>,
    /// Open `cgroup.procs` files (close-on-exec), written by [`join_in_child`].
    procs: Vec<File>,
}

impl Cgroup {
    /// The descriptors to hand to [`join_in_child`].
    pub fn join_fds(&self) -> Vec<RawFd> {
        self.procs.iter().map(|f| f.as_raw_fd()).collect()
    }

    fn memory_dir(&self) -> &Path {
        &self.dirs[0]
    }

    fn freezer_dir(&self) -> &Path {
        match self.version {
            Version::V1 => &self.dirs[2],
            Version::V2 => &self.dirs[0],
        }
    }

    /// Freezes every process of the container (pause).
    pub fn freeze(&self) -> io::Result<()> {
        match self.version {
            Version::V1 => fs::write(self.freezer_dir().join("freezer.state"), "FROZEN"),
            Version::V2 => fs::write(self.freezer_dir().join("cgroup.freeze"), "1"),
        }
    }

    /// Thaws the container (resume).
    pub fn thaw(&self) -> io::Result<()> {
        match self.version {
            Version::V1 => fs::write(self.freezer_dir().join("freezer.state"), "THAWED"),
            Version::V2 => fs::write(self.freezer_dir().join("cgroup.freeze"), "0"),
        }
    }

    /// The pids in the container (its freezer cgroup on v1).
    pub fn pids(&self) -> Vec<i32> {
        fs::read_to_string(self.freezer_dir().join("cgroup.procs"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// SIGKILLs every process in the container, even one that forks meanwhile: `cgroup.kill`
    /// on v2, else frozen, killed and thawed.
    pub fn kill(&self) {
        if self.version == Version::V2
            && fs::write(self.freezer_dir().join("cgroup.kill"), "1").is_ok()
        {
            return;
        }
        let frozen = self.freeze().is_ok();
        for pid in self.pids() {
            // SAFETY: kill(2) touches no memory.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if frozen {
            let _ = self.thaw();
        }
    }

    /// How many processes the kernel killed for memory in this container so far.
    pub fn oom_kills(&self) -> u64 {
        let file = match self.version {
            Version::V1 => "memory.oom_control",
            Version::V2 => "memory.events",
        };
        let text = fs::read_to_string(self.memory_dir().join(file)).unwrap_or_default();
        let count = |key: &str| {
            text.lines()
                .filter_map(|l| l.split_once(' '))
                .find(|(k, _)| *k == key)
                .and_then(|(_, v)| v.trim().parse::<u64>().ok())
        };
        // `oom_kill` counts kills (v1 since Linux 4.13).
        count("oom_kill").unwrap_or(0)
    }

    /// Removes the folders; false while processes remain in one.
    pub fn remove(&self) -> bool {
        let mut all = true;
        for d in &self.dirs {
            match fs::remove_dir(d) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(_) => all = false,
            }
        }
        all
    }
}
