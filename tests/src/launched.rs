//! The stack under `gpu-launcher`, drmd's supervisor: what the restart
//! tests start, kill drmd under, and read the launcher's counters from.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use scheme_seam::daemon::Started;

use crate::{bus_dir, workspace_binary};

/// The launcher and, under it, the three daemons; stopped when dropped.
#[derive(Debug)]
pub struct Launched {
    started: Started,
    status: PathBuf,
    /// Where the launcher and the daemons log.
    pub log: PathBuf,
}

/// What the launcher's status file says.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Status {
    /// The running drmd.
    pub drmd_pid: u32,
    /// drmd restarts so far.
    pub restarts: u64,
    /// How long the last one took, from its exit seen to the new one ready.
    pub last_restart_ms: f64,
}

impl Launched {
    /// Starts the launcher with `gpu_args` for virtio-gpud and waits until
    /// the stack is ready.
    pub fn start(gpu_args: &[&str]) -> Launched {
        let dir = bus_dir();
        let status = dir.join("launcher.status");
        let log = dir.join("launcher.log");
        let mut cmd = Command::new(workspace_binary("gpu-launcher"));
        cmd.arg("--status")
            .arg(&status)
            .args(gpu_args)
            .env(scheme_seam::linux::SCHEME_DIR, &dir)
            .stderr(std::fs::File::create(&log).expect("creating the launcher log"));
        let started = Started::start(cmd)
            .unwrap_or_else(|e| panic!("gpu-launcher: {e}; its log: {}", log.display()));
        Launched {
            started,
            status,
            log,
        }
    }

    /// The launcher's status now.
    pub fn status(&self) -> Status {
        let text = std::fs::read_to_string(&self.status).expect("the launcher's status");
        let field = |name: &str| -> &str {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .unwrap_or_else(|| panic!("no {name} in {text}"))
        };
        Status {
            drmd_pid: field("drmd_pid").parse().expect("a pid"),
            restarts: field("restarts").parse().expect("a count"),
            last_restart_ms: field("last_restart_ms").parse().expect("a time"),
        }
    }

    /// SIGKILLs drmd and waits until the launcher has a new one ready;
    /// returns the launcher's status then.
    pub fn kill_drmd(&self) -> Status {
        let before = self.status();
        // SAFETY: signalling a process of this test's stack.
        unsafe { libc::kill(before.drmd_pid as libc::pid_t, libc::SIGKILL) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let now = self.status();
            if now.restarts > before.restarts {
                return now;
            }
            assert!(
                Instant::now() < deadline,
                "drmd was not restarted; the log: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The launcher's process id.
    pub fn pid(&self) -> u32 {
        self.started.pid()
    }
}
