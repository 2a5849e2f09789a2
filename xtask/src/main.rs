//! Project automation, run as `cargo xtask <command>`:
//!
//! - `setup`: installs what the device tests need when it is missing: QEMU's
//!   `vhost-user-gpu` backend and the libraries virglrenderer and Mesa's
//!   llvmpipe need (as root through apt-get; otherwise it names the steps).
//! - `demo [OUTPUT.png]`: the main job: starts virtio-gpud (and with it the
//!   device), syncd and drmd, then renders through scheme:drm as Mesa
//!   does, writing the read-back image as a PNG.
//! - `test`: set-up, formatting and lint checks, the Redox build check, the
//!   demo, then every test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use scheme_seam::daemon::Started;
use scheme_seam::linux::SCHEME_DIR;
use virtio_gpud::transport::vhost_user::{find_backend, PROJECT_BACKEND};

/// The stack's daemons, in the order init starts them.
const DAEMONS: [&str; 3] = ["virtio-gpud", "syncd", "drmd"];

/// Debian 12 packages the backend binary needs at run time (virglrenderer,
/// Mesa's EGL/GBM with llvmpipe, and the backend's own libraries).
const RUNTIME_PACKAGES: &[&str] = &[
    "libvirglrenderer1",
    "libgl1-mesa-dri",
    "libegl-mesa0",
    "libegl1",
    "libgbm1",
    "libepoxy0",
    "libglib2.0-0",
    "libpixman-1-0",
    "libnuma1",
    "libdrm2",
];
/// The package that ships the backend (taken apart, not installed: its
/// GUI dependencies are not needed).
const BACKEND_PACKAGE: &str = "qemu-system-gui";
const BACKEND_IN_PACKAGE: &str = "usr/lib/qemu/vhost-user-gpu";

type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup(),
        Some("demo") => demo(args.get(1).map(String::as_str)),
        Some("test") => test(),
        _ => Err("usage: cargo xtask (setup | demo [OUTPUT.png] | test)".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Runs `program args…`, failing with its name when it fails.
fn run(program: &str, args: &[&str]) -> Result {
    println!("+ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("running {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{program} {} failed: {status}", args.join(" ")))
    }
}

/// The cargo running this xtask.
fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn cargo(args: &[&str]) -> Result {
    run(&cargo_bin(), args)
}

/// Shared libraries `binary` needs that the system cannot find.
fn missing_libraries(binary: &Path) -> Result<Vec<String>> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| format!("running ldd: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("not found"))
        .map(|l| l.trim().to_string())
        .collect())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// The Redox target every daemon crate must keep compiling for.
const REDOX_TARGET: &str = "x86_64-unknown-redox";
/// Workspace members that only run on the build host.
const HOST_ONLY: &[&str] = &["xtask", "stack-tests"];

fn setup() -> Result {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(workspace_root())
        .output()
        .map_err(|e| format!("running rustup: {e}"))?;
    if !String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|t| t == REDOX_TARGET)
    {
        run("rustup", &["target", "add", REDOX_TARGET])?;
    }
    let backend = find_backend().ok();
    let missing = match &backend {
        Some(b) => missing_libraries(b)?,
        None => vec![],
    };
    if let (Some(ready), true) = (&backend, missing.is_empty()) {
        println!("setup: device backend ready at {}", ready.display());
        return Ok(());
    }
    if !is_root() {
        return Err(format!(
            "the device backend needs installing, which takes root. Run `sudo cargo xtask setup`, \
             or by hand: apt-get install {}; apt-get download {BACKEND_PACKAGE}; dpkg -x the .deb \
             and copy its {BACKEND_IN_PACKAGE} to {PROJECT_BACKEND}{}",
            RUNTIME_PACKAGES.join(" "),
            if missing.is_empty() {
                String::new()
            } else {
                format!(" (missing now: {})", missing.join(", "))
            }
        ));
    }
    run("apt-get", &["update", "-q"])?;
    let mut install = vec!["install", "-y", "-q", "--no-install-recommends"];
    install.extend_from_slice(RUNTIME_PACKAGES);
    run("apt-get", &install)?;
    if backend.is_none() {
        install_backend()?;
    }
    let backend = find_backend().map_err(|e| e.to_string())?;
    let missing = missing_libraries(&backend)?;
    if !missing.is_empty() {
        return Err(format!(
            "{} still lacks libraries: {}",
            backend.display(),
            missing.join(", ")
        ));
    }
    println!("setup: device backend ready at {}", backend.display());
    Ok(())
}

/// Extracts the backend from its Debian package into [`PROJECT_BACKEND`].
fn install_backend() -> Result {
    let work = workspace_root().join("target/backend-package");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("creating {}: {e}", work.display()))?;
    let status = Command::new("apt-get")
        .args(["download", "-q", BACKEND_PACKAGE])
        .current_dir(&work)
        .status()
        .map_err(|e| format!("running apt-get download: {e}"))?;
    if !status.success() {
        return Err(format!(
            "apt-get download {BACKEND_PACKAGE} failed: {status}"
        ));
    }
    let deb = std::fs::read_dir(&work)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or("apt-get download left no .deb")?;
    let root = work.join("root");
    run(
        "dpkg",
        &["-x", &deb.to_string_lossy(), &root.to_string_lossy()],
    )?;
    let target = Path::new(PROJECT_BACKEND);
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    std::fs::copy(root.join(BACKEND_IN_PACKAGE), target)
        .map_err(|e| format!("installing {}: {e}", target.display()))?;
    println!("setup: installed {PROJECT_BACKEND} from {BACKEND_PACKAGE}");
    Ok(())
}

fn demo(output: Option<&str>) -> Result {
    setup()?;
    let output = output.unwrap_or("out/drm-render.png");
    let mut build = vec!["build", "--quiet", "--release"];
    for package in DAEMONS {
        build.extend(["--package", package]);
    }
    build.extend(["--bins", "--example", "render"]);
    cargo(&build)?;
    let release = workspace_root().join("target/release");
    // A bus of the demo's own: /scheme/ for these daemons and this client.
    let bus = workspace_root().join("target/demo/bus");
    let _ = std::fs::remove_dir_all(&bus);
    std::fs::create_dir_all(&bus).map_err(|e| format!("creating {}: {e}", bus.display()))?;
    // Started in init's order; each is stopped (SIGTERM) when dropped.
    let mut running = Vec::new();
    for daemon in DAEMONS {
        let log = bus.join(format!("{daemon}.log"));
        let mut cmd = Command::new(release.join(daemon));
        cmd.env(SCHEME_DIR, &bus)
            .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?);
        let started =
            Started::start(cmd).map_err(|e| format!("{daemon}: {e} (log: {})", log.display()))?;
        println!(
            "started {daemon} (pid {}, log {})",
            started.pid(),
            log.display()
        );
        running.push(started);
    }
    let status = Command::new(release.join("examples/render"))
        .arg(output)
        .env(SCHEME_DIR, &bus)
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("running the render client: {e}"))?;
    drop(running);
    if status.success() {
        Ok(())
    } else {
        Err(format!("the render client failed: {status}"))
    }
}

fn test() -> Result {
    setup()?;
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    // Everything else must build for Redox, lint-clean (redox-scheme's
    // nightly feature is allowed by .cargo/config.toml).
    let mut check = vec!["clippy", "--workspace", "--target", REDOX_TARGET];
    for krate in HOST_ONLY {
        check.extend(["--exclude", krate]);
    }
    check.extend(["--", "-D", "warnings"]);
    cargo(&check)?;
    // Daemon binaries are started by the cross-process tests.
    cargo(&["build", "--workspace", "--bins"])?;
    // The main job must keep working too.
    demo(Some("target/demo/drm-render.png"))?;
    cargo_test()
}

/// Runs every test, echoing cargo's output, and closes with one
/// `N passed, N failed` line totalled over all test binaries.
fn cargo_test() -> Result {
    let args = ["test", "--workspace", "--no-fail-fast"];
    println!("+ cargo {}", args.join(" "));
    let mut child = Command::new(cargo_bin())
        .args(args)
        .current_dir(workspace_root())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running cargo test: {e}"))?;
    let (mut passed, mut failed) = (0u64, 0u64);
    let stdout = child.stdout.take().expect("piped");
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading cargo test output: {e}"))?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            passed += count_before(rest, " passed");
            failed += count_before(rest, " failed");
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    println!("{passed} passed, {failed} failed");
    if status.success() && failed == 0 && passed > 0 {
        Ok(())
    } else {
        Err(format!("cargo test failed: {status}"))
    }
}

/// The number just before `label` in a `test result:` line.
fn count_before(line: &str, label: &str) -> u64 {
    line.find(label)
        .and_then(|end| line[..end].rsplit([' ', ';', '.']).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
