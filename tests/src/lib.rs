//! Harness for tests that span processes: a bus directory for this test
//! process, and daemons started the way init starts them (readiness on
//! `INIT_NOTIFY`), stopped with SIGTERM.

use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use scheme_seam::daemon::Started;
use scheme_seam::SchemeFd;

pub mod display;
pub mod gl;
pub mod launched;
pub mod pci;
pub mod qemu;
pub mod rfb;

/// The bus directory of this test process, created and exported (the
/// client side reads it from the environment) on first use. Each test
/// serves schemes of its own names in it.
pub fn bus_dir() -> PathBuf {
    static ONCE: Once = Once::new();
    let dir = target_dir()
        .join("tmp")
        .join(format!("bus-{}", std::process::id()));
    ONCE.call_once(|| {
        std::fs::create_dir_all(&dir).expect("creating the bus directory");
        // SAFETY: set once, before any test thread opens a scheme.
        unsafe { std::env::set_var(scheme_seam::linux::SCHEME_DIR, &dir) };
    });
    dir
}

/// `target/<profile>`, where this test executable's `deps/` folder is.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps")
        .to_path_buf()
}

/// The cargo target directory.
fn target_dir() -> PathBuf {
    profile_dir()
        .parent()
        .expect("target/<profile>")
        .to_path_buf()
}

/// A workspace binary next to this test's own (built by
/// `cargo build --workspace --bins`, which `cargo xtask test` runs).
pub fn workspace_binary(name: &str) -> PathBuf {
    let path = profile_dir().join(name);
    assert!(
        path.is_file(),
        "{} is not built: run `cargo build --workspace --bins` (cargo xtask test does)",
        path.display()
    );
    path
}

/// A command running `program` (an unmodified Mesa client) on the stack
/// through the shim, with virgl as Mesa's only driver.
pub fn mesa_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let shim = profile_dir().join("libdrm_shim.so");
    let env = drmd::mesa::environment(&shim, &bus_dir().join("virgl-drivers"))
        .expect("preparing the Mesa environment");
    let mut command = Command::new(program);
    command.envs(env);
    command
}

/// The three daemons, started in init's order: virtio-gpud (and with it the
/// device), syncd, drmd; stopped when dropped.
pub struct Stack {
    /// virtio-gpud.
    pub gpu: Daemon,
    /// syncd.
    pub sync: Daemon,
    /// drmd.
    pub drm: Daemon,
}

/// Starts the [`Stack`].
pub fn stack() -> Stack {
    let gpu = Daemon::start(&workspace_binary("virtio-gpud"), &[], "virtio-gpu");
    let sync = Daemon::start(&workspace_binary("syncd"), &[], "sync");
    let drm = Daemon::start(&workspace_binary("drmd"), &[], "drm");
    Stack { gpu, sync, drm }
}

/// The [`Stack`] on the 2D display device (`virtio-gpud --2d`): what KMS
/// tests scan out on and read back from `display/N`.
pub fn stack_2d() -> Stack {
    stack_with(&["--2d"])
}

/// The [`Stack`] with `gpu_args` for virtio-gpud (`--2d`, `--display WxH`).
pub fn stack_with(gpu_args: &[&str]) -> Stack {
    let gpu = Daemon::start(&workspace_binary("virtio-gpud"), gpu_args, "virtio-gpu");
    let sync = Daemon::start(&workspace_binary("syncd"), &[], "sync");
    let drm = Daemon::start(&workspace_binary("drmd"), &[], "drm");
    Stack { gpu, sync, drm }
}

/// A command running `program` (an unmodified DRM client) on the stack
/// through the shim, Mesa's drivers left as they are.
pub fn shim_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(program);
    command.env("LD_PRELOAD", profile_dir().join("libdrm_shim.so"));
    command
}

/// A daemon process serving scheme `name`; stopped when dropped.
#[derive(Debug)]
pub struct Daemon {
    started: Started,
    name: String,
}

impl Daemon {
    /// Starts `program args…` as init would and waits for its readiness
    /// byte, with its log in the bus directory.
    pub fn start(program: &Path, args: &[&str], name: &str) -> Daemon {
        let dir = bus_dir();
        // Keep daemon logs out of test output; a failing test names the file.
        let log = dir.join(format!("{name}.log"));
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stderr(std::fs::File::create(&log).expect("creating the daemon log"))
            .env(scheme_seam::linux::SCHEME_DIR, &dir);
        let started = Started::start(cmd)
            .unwrap_or_else(|e| panic!("{}: {e}; its log: {}", program.display(), log.display()));
        assert!(dir.join(name).exists(), "socket exists once ready");
        Daemon {
            started,
            name: name.into(),
        }
    }

    /// `/scheme/<name>/<rest>`.
    pub fn path(&self, rest: &str) -> String {
        format!("/scheme/{}/{rest}", self.name)
    }

    /// Opens `rest` in the daemon's scheme, panicking on failure.
    pub fn open(&self, rest: &str) -> SchemeFd {
        SchemeFd::open(&self.path(rest), 0).unwrap_or_else(|e| panic!("open {rest}: {e}"))
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.started.pid()
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.started.terminate().expect("waiting for the daemon")
    }

    /// Whether the daemon's socket is still in the bus directory.
    pub fn socket_exists(&self) -> bool {
        bus_dir().join(&self.name).exists()
    }
}

/// Whether `fd` becomes readable within `timeout_ms`.
pub fn poll_readable(fd: BorrowedFd<'_>, timeout_ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, timeout_ms) == 1 && p.revents & libc::POLLIN != 0 }
}

/// A daemon's text file (`/scheme/virtio-gpu/stats`, `/scheme/drm/stats`,
/// ...), read whole.
pub fn scheme_text(path: &str) -> String {
    let fd = SchemeFd::open(path, 0).unwrap_or_else(|e| panic!("opening {path}: {e}"));
    let mut buf = vec![0u8; 64 * 1024];
    let n = fd
        .read(&mut buf)
        .unwrap_or_else(|e| panic!("reading {path}: {e}"));
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// What virtio-gpud's object table holds, one line per object (its
/// `objects` file): empty when no session owns anything.
pub fn device_objects() -> String {
    scheme_text("/scheme/virtio-gpu/objects")
}

/// Starts `gpu-tool <command>` and reads what it prints until it reports
/// that it holds its objects (its last line: it prints nothing after, so
/// its pipe may go); the lines before that.
pub fn holding(command: &str) -> (std::process::Child, Vec<String>) {
    let mut child = Command::new(workspace_binary("gpu-tool"))
        .arg(command)
        .env(scheme_seam::linux::SCHEME_DIR, bus_dir())
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting gpu-tool");
    let mut lines = Vec::new();
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line.expect("reading gpu-tool");
        if line == "holding" {
            return (child, lines);
        }
        lines.push(line);
    }
    let status = child.wait();
    panic!("gpu-tool {command} ended ({status:?}) before holding anything: {lines:?}");
}

/// Runs `gpu-tool <command>` until it holds objects on the device, kills it
/// (no chance to clean up), and waits until virtio-gpud's object table is
/// empty again; returns what the tool held.
pub fn kill_holder_and_await_release(command: &str) -> String {
    let (mut child, _) = holding(command);
    let held = device_objects();
    child.kill().expect("killing gpu-tool");
    child.wait().expect("reaping gpu-tool");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !device_objects().is_empty() {
        assert!(
            Instant::now() < deadline,
            "still held: {}",
            device_objects()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    held
}
