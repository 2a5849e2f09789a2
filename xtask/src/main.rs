//! Project automation, run as `cargo xtask <command>`:
//!
//! - `setup`: installs what the device tests need when it is missing: QEMU's
//!   `vhost-user-gpu` backend and the libraries virglrenderer and Mesa's
//!   llvmpipe need (as root through apt-get; otherwise it names the steps).
//! - `demo [OUTPUT.png]`: the main job: starts virtio-gpud (and with it the
//!   device), syncd and drmd, then renders through scheme:drm as Mesa
//!   does, writing the read-back image as a PNG.
//! - `bench [ITERATIONS]`: the device figures straight from virtio-gpud's
//!   library, then the same work through the three daemons and scheme:drm,
//!   with the ratios between them.
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
        Some("bench") => bench(args.get(1).map(String::as_str).unwrap_or("1000")),
        Some("test") => test(),
        _ => {
            Err("usage: cargo xtask (setup | demo [OUTPUT.png] | bench [ITERATIONS] | test)".into())
        }
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
    build_release(&["--example", "render"])?;
    run_on_stack("demo", "render", &[output])
}

fn bench(iterations: &str) -> Result {
    setup()?;
    build_release(&["--example", "device_bench", "--example", "drm_bench"])?;
    // The reference: the device driven by virtio-gpud's library, alone.
    let device = Command::new(release_dir().join("examples/device_bench"))
        .arg(iterations)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running device_bench: {e}"))?;
    let device = String::from_utf8_lossy(&device.stdout);
    print!("{device}");
    let figure = |prefix: &str, unit: &str| {
        device
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| number_before(l, unit))
            .ok_or(format!("device_bench printed no {prefix:?}"))
    };
    let p50 = figure("fenced SUBMIT_3D (64x64 clear) round trip", " us")?;
    let rate = figure("fenced SUBMIT_3D     notify per batch", " commands/s")?;
    run_on_stack(
        "bench",
        "drm_bench",
        &[iterations, &p50.to_string(), &rate.to_string()],
    )
}

/// Runs the release example `client` with `args` against the three daemons,
/// started for it on a bus of their own under `target/<name>/bus`.
fn run_on_stack(name: &str, client: &str, args: &[&str]) -> Result {
    let bus = workspace_root().join(format!("target/{name}/bus"));
    let running = start_stack(&bus)?;
    let status = Command::new(release_dir().join("examples").join(client))
        .args(args)
        .env(SCHEME_DIR, &bus)
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("running {client}: {e}"))?;
    drop(running);
    if status.success() {
        Ok(())
    } else {
        Err(format!("{client} failed: {status}"))
    }
}

/// The first number before `unit` in `line` (e.g. a p50 before " us").
fn number_before(line: &str, unit: &str) -> Option<f64> {
    let end = line.find(unit)?;
    line[..end].split_whitespace().last()?.parse().ok()
}

/// Builds the daemons in release mode, with `extra` cargo arguments.
fn build_release(extra: &[&str]) -> Result {
    let mut build = vec!["build", "--quiet", "--release"];
    for package in DAEMONS {
        build.extend(["--package", package]);
    }
    build.push("--bins");
    build.extend(extra);
    cargo(&build)
}

fn release_dir() -> PathBuf {
    workspace_root().join("target/release")
}

/// Starts the daemons in init's order on a bus of their own in `bus` (it
/// stands for /scheme/); each is stopped (SIGTERM) when dropped.
fn start_stack(bus: &Path) -> Result<Vec<Started>> {
    let _ = std::fs::remove_dir_all(bus);
    std::fs::create_dir_all(bus).map_err(|e| format!("creating {}: {e}", bus.display()))?;
    let mut running = Vec::new();
    for daemon in DAEMONS {
        let log = bus.join(format!("{daemon}.log"));
        let mut cmd = Command::new(release_dir().join(daemon));
        cmd.env(SCHEME_DIR, bus)
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
    Ok(running)
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
    let mut failures = Vec::new();
    let stdout = child.stdout.take().expect("piped");
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading cargo test output: {e}"))?;
        println!("{line}");
        if let Some(name) = line
            .strip_prefix("test ")
            .and_then(|l| l.strip_suffix(" ... FAILED"))
        {
            failures.push(name.to_string());
        }
        if let Some(rest) = line.strip_prefix("test result: ") {
            passed += count_before(rest, " passed");
            failed += count_before(rest, " failed");
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    for name in &failures {
        println!("failed: {name}");
    }
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
