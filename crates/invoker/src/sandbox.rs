//! The process runtime's sandbox: every action proxy runs under bubblewrap (`bwrap`) in its
//! own user, mount, PID, IPC, UTS and cgroup namespaces, on the host network (each container
//! keeps its own 127.x address), as an unprivileged uid (the invoker drops from root to
//! `invoker.process.uid` before `bwrap` runs, so no file of root's is reachable), seeing a
//! read-only system, the proxy binary, its own work folder, a private `/tmp` and its own peer
//! folder read-only — nothing else of the host. Limits, pause and kill come from its cgroup
//! ([`crate::cgroup`]). `docs/security.md` says why bubblewrap and what it costs.

use crate::cgroup::{CgroupError, Cgroups};
use crate::config::ProcessConfig;
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use thiserror::Error;

/// Why the host cannot sandbox actions.
#[derive(Debug, Error)]
pub enum SandboxError {
    /// bubblewrap is missing or cannot create namespaces here.
    #[error("bubblewrap ('{bwrap}') cannot sandbox actions on this host: {why}")]
    Bwrap {
        /// The program tried.
        bwrap: String,
        /// What went wrong.
        why: String,
    },
    /// No cgroup hierarchy to hold limits.
    #[error("cannot enforce memory and pids limits: {0}")]
    Cgroup(#[from] CgroupError),
}

/// System folders every container sees read-only (those the host has).
const SYSTEM_DIRS: [&str; 7] = [
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// The bits of `/etc` an interpreter needs: the dynamic linker, time zone, name resolution,
/// users, TLS roots, `alternatives` links. Never the whole of `/etc`.
const ETC: [&str; 19] = [
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/passwd",
    "/etc/group",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/alternatives",
    "/etc/mime.types",
    "/etc/os-release",
];

/// PATH inside a container.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a host offers: namespaces through bubblewrap, and cgroups.
#[derive(Debug)]
pub struct Sandbox {
    bwrap: PathBuf,
    /// The host uid and gid to become before `bwrap` runs (when the invoker is root).
    drop_to: Option<(u32, u32)>,
    cgroups: Cgroups,
    pids_max: u64,
    /// `--ro-bind` arguments of the system folders and `/etc` files.
    system: Vec<OsString>,
}

impl Sandbox {
    /// Checks that this host can sandbox (bubblewrap runs a process in new namespaces as the
    /// unprivileged uid; cgroups can be created) and prepares the common arguments.
    pub fn probe(cfg: &ProcessConfig) -> Result<Self, SandboxError> {
        let bwrap = which(&cfg.bwrap).ok_or_else(|| SandboxError::Bwrap {
            bwrap: cfg.bwrap.display().to_string(),
            why: "not found (install the 'bubblewrap' package)".into(),
        })?;
        // SAFETY: geteuid(2) cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let drop_to = root.then_some((cfg.uid, cfg.gid));
        if drop_to.is_some_and(|(u, g)| u == 0 || g == 0) {
            return Err(SandboxError::Bwrap {
                bwrap: bwrap.display().to_string(),
                why: "invoker.process.uid and gid must not be 0".into(),
            });
        }
        let mut system = vec![];
        for dir in SYSTEM_DIRS.iter().chain(ETC.iter()) {
            let p = Path::new(dir);
            let Ok(meta) = p.symlink_metadata() else {
                continue;
            };
            if meta.file_type().is_symlink() {
                // /bin -> usr/bin on merged-/usr systems: the same link inside.
                if let Ok(target) = std::fs::read_link(p) {
                    system.extend(["--symlink".into(), target.into(), p.into()]);
                }
            } else {
                system.extend(["--ro-bind".into(), p.into(), p.into()]);
            }
        }
        let cgroups = Cgroups::open(&cfg.cgroup_parent)?;
        if root && cfg.favor_dynmods {
            match crate::cgroup::favor_dynmods() {
                Ok(true) => tracing::info!(
                    "cgroup2 remounted with favordynmods: a new container joins its cgroup without waiting for an RCU grace period (invoker.process.favor_dynmods)"
                ),
                Ok(false) => {}
                Err(e) => tracing::info!(error = %e, "cgroup2 without favordynmods: each sandbox start waits for an RCU grace period"),
            }
        }
        let sandbox = Self {
            bwrap,
            drop_to,
            cgroups,
            pids_max: cfg.pids_max,
            system,
        };
        // One real sandbox, as the containers will be started.
        let mut probe = Command::new(&sandbox.bwrap);
        probe
            .args(sandbox.args(Path::new("/usr/bin/true"), None, None, &[]))
            .arg("/usr/bin/true")
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some((uid, gid)) = drop_to {
            use std::os::unix::process::CommandExt;
            // std clears the supplementary groups when root changes uid.
            probe.uid(uid).gid(gid);
        }
        let out = probe.output().map_err(|e| SandboxError::Bwrap {
            bwrap: sandbox.bwrap.display().to_string(),
            why: e.to_string(),
        })?;
        if !out.status.success() {
            return Err(SandboxError::Bwrap {
                bwrap: sandbox.bwrap.display().to_string(),
                why: format!(
                    "{} ({}; are unprivileged user namespaces enabled? sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone)",
                    String::from_utf8_lossy(&out.stderr).trim(),
                    out.status
                ),
            });
        }
        Ok(sandbox)
    }

    /// The bubblewrap program.
    pub fn bwrap(&self) -> &Path {
        &self.bwrap
    }

    /// The host uid and gid containers run as, if the invoker changes them (it runs as root).
    pub fn drop_to(&self) -> Option<(u32, u32)> {
        self.drop_to
    }

    /// The containers' cgroups.
    pub fn cgroups(&self) -> &Cgroups {
        &self.cgroups
    }

    /// The pids limit of one container.
    pub fn pids_max(&self) -> u64 {
        self.pids_max
    }

    /// bubblewrap's arguments (the command follows them) for a container running `program`
    /// with the writable `workdir` and the read-only `peers` folder and `extra_ro` folders,
    /// each at its host path.
    pub fn args(
        &self,
        program: &Path,
        workdir: Option<&Path>,
        peers: Option<&Path>,
        extra_ro: &[PathBuf],
    ) -> Vec<OsString> {
        let mut a: Vec<OsString> = [
            "--unshare-user",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--hostname",
            "action",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        a.extend(self.system.iter().cloned());
        a.extend(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"].map(OsString::from));
        for dir in extra_ro {
            a.extend(["--ro-bind".into(), dir.into(), dir.into()]);
        }
        a.extend(["--ro-bind".into(), program.into(), program.into()]);
        if let Some(w) = workdir {
            a.extend([
                "--bind".into(),
                w.into(),
                w.into(),
                "--chdir".into(),
                w.into(),
            ]);
        }
        if let Some(p) = peers {
            a.extend(["--ro-bind".into(), p.into(), p.into()]);
        }
        // The sandbox's own root (holding the mount points) read-only too.
        a.extend(["--remount-ro", "/", "--"].map(OsString::from));
        a
    }

    /// Whether the unprivileged uid can reach `path` (search permission on every folder
    /// above it, and `mode` on it), as bubblewrap must to bind it.
    pub fn reachable(&self, path: &Path, mode: u32) -> bool {
        let Some((uid, gid)) = self.drop_to else {
            return true;
        };
        let allowed = |p: &Path, want: u32| {
            p.metadata().is_ok_and(|m| {
                let bits = m.mode();
                let granted = if m.uid() == uid {
                    bits >> 6
                } else if m.gid() == gid {
                    bits >> 3
                } else {
                    bits
                } & 0o7;
                granted & want == want
            })
        };
        path.ancestors().skip(1).all(|a| allowed(a, 0o1)) && allowed(path, mode)
    }
}

/// `program` if it names a file, else its first match in PATH.
pub fn which(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_else(|| PATH.into()))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Whether `path` lies in a folder every container sees anyway.
pub fn in_system(path: &Path) -> bool {
    SYSTEM_DIRS.iter().any(|d| path.starts_with(d))
}
