//! Project automation, run as `cargo xtask <command>`:
//!
//! - `setup`: installs what the device tests need when it is missing: QEMU's
//!   `vhost-user-gpu` backend and the libraries virglrenderer and Mesa's
//!   llvmpipe need (as root through apt-get; otherwise it names the steps);
//!   for the PCI test, QEMU 10 from bookworm-backports and Debian's kernel
//!   and busybox-static unpacked into `target/pci-guest/`.
//! - `demo [DIR]`: the main job: starts virtio-gpud (and with it the
//!   device), syncd and drmd, renders through scheme:drm the way Mesa's
//!   driver does (`drm-render.png`), then runs an unmodified GLES2 program
//!   on Debian's Mesa through the stack (`mesa-triangle.png`); both images
//!   go to DIR (default `out/`).
//! - `bench [ITERATIONS] [--repeat R] [--smoke]`: the device figures
//!   straight from virtio-gpud's library, the same work through the three
//!   daemons and scheme:drm, and GL through Mesa on the stack against Mesa
//!   on vtest, R times (default 3); one table of min/median/max and ratios,
//!   with drmd's per-ioctl counters, written into docs/PERFORMANCE.md.
//!   `--smoke`: one short run, printed only.
//! - `test`: set-up, formatting and lint checks (the fuzz crate's too), the
//!   Redox build check, the demo, every test, the piglit comparison, every
//!   fuzz target for 15 s, then the smoke benchmark.
//! - `piglit`: runs the piglit subset (`tests/piglit/subset.txt`) on Mesa's
//!   own virgl path (vtest), then on the stack, and lists every difference;
//!   fails if a test passing on the reference does not pass on the stack,
//!   unless docs/PIGLIT.md's "Known differences" names it with its cause.
//! - `piglit-reference [RESULTS]`: the reference run alone; results in
//!   `target/piglit/reference.txt`.
//! - `run PROGRAM [ARGS...]`: starts the stack and runs any Linux program on
//!   it with unmodified Mesa (the shim preloaded, virgl as Mesa's only
//!   driver), e.g. `cargo xtask run eglinfo`; the stack stops when it exits.
//! - `fuzz [SECONDS] [--runs N] [--ci] [--no-asan] [--seeds] [TARGET...]`:
//!   builds the libFuzzer targets in `fuzz/` (installing cargo-fuzz if missing) and
//!   runs each for SECONDS (default 60) and/or N executions, or CI's 15 s;
//!   fails on any crash, with the input under `fuzz/artifacts/`;
//!   `--no-asan` builds without AddressSanitizer (for long runs); `--seeds`
//!   first rewrites the seed corpora (fuzz/README.md).
//! - `storm`: the full load and kill storm (`tests/tests/storm.rs`: 16
//!   clients × 10,000 fenced submits, 1,000 client kills, 50 drmd kills) on
//!   release builds; CI runs a short one with the tests.

mod bench;
mod fuzz;
mod glbench;
mod guest;
mod piglit;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use scheme_seam::daemon::Started;
use scheme_seam::linux::SCHEME_DIR;
use virtio_gpud::transport::vhost_user::{find_backend, PROJECT_BACKEND};

/// The packages of the stack's daemons and of the launcher that starts
/// them in init's order and restarts drmd (`gpu-launcher`).
const DAEMONS: [&str; 4] = ["virtio-gpud", "syncd", "drmd", "launcher"];

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
/// Debian 12 packages only the piglit comparison needs: the tests, glxinfo
/// and eglinfo, and Mesa's vtest server (the reference path).
const TEST_PACKAGES: &[&str] = &[
    "piglit",
    "mesa-utils",
    "virgl-server",
    "libdrm-tests",
    "kmscube",
    "glmark2-es2-drm",
    "edid-decode",
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
        Some("piglit") => setup().and_then(|()| piglit_compare()),
        Some("bench") => BenchArgs::parse(&args[1..]).and_then(|a| bench(&a)),
        Some("test") => test(),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("run") if args.len() > 1 => setup().and_then(|()| run_program(&args[1..])),
        Some("storm") => setup().and_then(|()| storm()),
        Some("piglit-reference") => setup()
            .and_then(|()| piglit::reference(&workspace_root(), args.get(1).map(String::as_str))),
        _ => Err(
            "usage: cargo xtask (setup | demo [DIR] | bench [ITERATIONS] [--repeat R] [--smoke] \
             | test | piglit | piglit-reference [RESULTS] | run PROGRAM [ARGS...] | storm \
             | fuzz [SECONDS] [--runs N] [--ci] [--no-asan] [--seeds] [TARGET...])"
                .into(),
        ),
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
const HOST_ONLY: &[&str] = &["xtask", "stack-tests", "drm-shim", "launcher"];

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
    install_test_packages()?;
    // The backend's libraries first: QEMU from backports must find them
    // installed from bookworm rather than pull its own.
    install_device_backend()?;
    guest::install_pci_guest(&workspace_root())
}

/// Installs QEMU's vhost-user-gpu backend and its [`RUNTIME_PACKAGES`]
/// when missing, as root; otherwise names the steps.
fn install_device_backend() -> Result {
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

/// Installs the [`TEST_PACKAGES`] that are missing, as root; otherwise
/// only names them (the piglit comparison is the only thing needing them).
fn install_test_packages() -> Result {
    let missing: Vec<&str> = TEST_PACKAGES
        .iter()
        .copied()
        .filter(|package| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", package])
                .output()
                .is_ok_and(|o| o.stdout.ends_with(b" installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        println!(
            "setup: the piglit comparison needs {} (sudo apt-get install {0})",
            missing.join(" ")
        );
        return Ok(());
    }
    run("apt-get", &["update", "-q"])?;
    let mut install = vec!["install", "-y", "-q", "--no-install-recommends"];
    install.extend_from_slice(&missing);
    run("apt-get", &install)
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

fn demo(dir: Option<&str>) -> Result {
    setup()?;
    let dir = workspace_root().join(dir.unwrap_or("out"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    build_release(&["--example", "render", "--example", "kms"])?;
    build_mesa_clients()?;
    let bus = workspace_root().join("target/demo/bus");
    let running = start_stack(&bus)?;
    let drm_png = dir.join("drm-render.png");
    let mut render = Command::new(release_dir().join("examples/render"));
    render.arg(&drm_png);
    run_client("render", render, &bus)?;
    // The same device through Debian's unmodified Mesa.
    let mesa_png = dir.join("mesa-triangle.png");
    let mut triangle = Command::new(release_dir().join("gles-triangle"));
    triangle
        .args(["/dev/dri/renderD128".as_ref(), mesa_png.as_os_str()])
        .envs(mesa_env(&bus)?);
    run_client("gles-triangle", triangle, &bus)?;
    drop(running);
    // KMS on the display device: a mode, a picture and a cursor, and what
    // the display shows.
    let running = start_stack_with(&bus, &["--2d"])?;
    let display_png = dir.join("display.png");
    let mut kms = Command::new(release_dir().join("examples/kms"));
    kms.arg(&display_png);
    run_client("kms", kms, &bus)?;
    drop(running);
    println!(
        "demo: wrote {}, {} and {}",
        drm_png.display(),
        mesa_png.display(),
        display_png.display()
    );
    Ok(())
}

/// Builds what runs unmodified Mesa programs on the stack: the shim and
/// the GLES2 triangle program (release).
fn build_mesa_clients() -> Result {
    cargo(&[
        "build",
        "--quiet",
        "--release",
        "--package",
        "drm-shim",
        "--package",
        "stack-tests",
        "--lib",
        "--bin",
        "gles-triangle",
    ])
}

/// The environment of a Mesa program on the stack serving `bus`.
fn mesa_env(bus: &Path) -> Result<Vec<(String, String)>> {
    let shim = release_dir().join("libdrm_shim.so");
    let env = drmd::mesa::environment(&shim, &bus.join("virgl-drivers"))
        .map_err(|e| format!("preparing Mesa's environment: {e}"))?;
    let mut env: Vec<(String, String)> = env
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string_lossy().into_owned()))
        .collect();
    env.push((SCHEME_DIR.to_string(), bus.to_string_lossy().into_owned()));
    Ok(env)
}

/// Runs `client` on the stack serving `bus`.
fn run_client(name: &str, mut client: Command, bus: &Path) -> Result {
    let status = client
        .env(SCHEME_DIR, bus)
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("running {name}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{name} failed: {status}"))
    }
}

/// `cargo xtask run PROGRAM [ARGS...]`: PROGRAM on Mesa through the stack
/// (release daemons, the shim), for trying things and debugging; the
/// daemons' logs stay in `target/run/bus`.
fn run_program(command: &[String]) -> Result {
    build_release(&[])?;
    build_mesa_clients()?;
    let bus = workspace_root().join("target/run/bus");
    let running = start_stack(&bus)?;
    let mut program = Command::new(&command[0]);
    program.args(&command[1..]).envs(mesa_env(&bus)?);
    let result = run_client(&command[0], program, &bus);
    drop(running);
    result
}

/// `cargo xtask piglit`: the subset on the reference path, then on the
/// stack (release daemons, the shim, virgl as Mesa's only driver); prints
/// both side by side with every difference.
fn piglit_compare() -> Result {
    let ws = workspace_root();
    piglit::reference(&ws, None)?;
    let reference = piglit::Results::read(&ws.join("target/piglit/reference.txt"))?;
    build_release(&[])?;
    build_mesa_clients()?;
    let bus = ws.join("target/piglit/bus");
    let running = start_stack(&bus)?;
    let mut env = mesa_env(&bus)?;
    env.push(("PIGLIT_PLATFORM".into(), "surfaceless_egl".into()));
    let renderer = piglit::check_renderer(&env, "virgl")?;
    println!("piglit: the subset through the stack, on {renderer}");
    let started = std::time::Instant::now();
    let logs = ws.join("target/piglit/stack-logs");
    let _ = std::fs::remove_dir_all(&logs);
    let subset = ws.join(piglit::SUBSET);
    let stack = piglit::run_subset(
        &subset,
        &env,
        piglit::DEFAULT_JOBS,
        piglit::DEFAULT_TIMEOUT,
        Some(&logs),
    )?;
    let wall = started.elapsed().as_secs_f64();
    piglit::check_renderer(&env, "virgl").map_err(|e| format!("after the run: {e}"))?;
    drop(running);
    stack.write(
        &ws.join("target/piglit/stack.txt"),
        &format!("piglit through the stack: {renderer}\nwall time {wall:.1} s"),
    )?;
    println!("piglit through the stack: wall time {wall:.1} s");
    print!("{}", piglit::compare_report(&reference, &stack));
    // Exceptions are the backquoted names in docs/PIGLIT.md's "Known
    // differences" section.
    let page = std::fs::read_to_string(ws.join("docs/PIGLIT.md")).unwrap_or_default();
    let explained = page
        .split_once("## Known differences")
        .map(|(_, rest)| rest.split("\n## ").next().unwrap_or_default())
        .unwrap_or_default();
    let unexplained: Vec<String> = piglit::compare(&reference, &stack)
        .into_iter()
        .filter(|d| d.is_regression() && !explained.contains(&format!("`{}`", d.name)))
        .map(|d| d.name)
        .collect();
    if unexplained.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} tests pass on the reference path and not on the stack (logs in {}): {}",
            unexplained.len(),
            logs.display(),
            unexplained.join(", ")
        ))
    }
}

/// What `cargo xtask bench [ITERATIONS] [--repeat R] [--smoke]` asks.
#[derive(Clone, Debug, PartialEq)]
struct BenchArgs {
    /// Iterations per figure, passed to both programs.
    iterations: usize,
    /// Runs of each program; figures are min/median/max over them.
    repeat: usize,
    /// Seconds per GL workload and for the NOWAIT loops.
    seconds: f64,
    /// A quick check that the benchmark works: prints, writes no docs.
    smoke: bool,
    /// The command as typed, for the docs.
    command: String,
}

impl BenchArgs {
    /// The CI run: one short run of everything.
    fn smoke() -> BenchArgs {
        BenchArgs::parse(&["--smoke".to_string()]).expect("valid")
    }

    fn parse(args: &[String]) -> Result<BenchArgs> {
        let usage = || "usage: cargo xtask bench [ITERATIONS] [--repeat R] [--smoke]".to_string();
        let (mut iterations, mut repeat, mut smoke) = (None, None, false);
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--smoke" => smoke = true,
                "--repeat" => {
                    let r = it.next().and_then(|r| r.parse().ok()).ok_or_else(usage)?;
                    repeat = Some(r);
                }
                n => iterations = Some(n.parse().map_err(|_| usage())?),
            }
        }
        let mut command = String::from("cargo xtask bench");
        for arg in args {
            command.push(' ');
            command.push_str(arg);
        }
        Ok(BenchArgs {
            iterations: iterations.unwrap_or(if smoke { 20 } else { 1000 }),
            repeat: repeat.unwrap_or(if smoke { 1 } else { 3 }).max(1),
            seconds: if smoke { 0.2 } else { 1.0 },
            smoke,
            command,
        })
    }
}

/// `cargo xtask bench`: runs `device_bench` (the reference: virtio-gpud's
/// library straight on the device) and, on a fresh stack, `drm_bench` (the
/// same work through the three daemons) and the GL benchmark (Mesa through
/// the stack against Mesa on vtest), `repeat` times, alternating; then
/// prints one table of min/median/max per figure with drmd's per-ioctl
/// counters and, unless smoke, writes it into docs/PERFORMANCE.md.
fn bench(args: &BenchArgs) -> Result {
    setup()?;
    build_release(&["--example", "device_bench", "--example", "drm_bench"])?;
    build_mesa_clients()?;
    cargo(&[
        "build",
        "--quiet",
        "--release",
        "--package",
        "stack-tests",
        "--bin",
        "gl-bench",
    ])?;
    let ws = workspace_root();
    let iterations = args.iterations.to_string();
    let nowait_seconds = args.seconds.to_string();
    let mut runs = bench::Runs::default();
    let mut stats = Err("not read".to_string());
    for run in 1..=args.repeat {
        println!("bench: run {run} of {}", args.repeat);
        let mut device = Command::new(release_dir().join("examples/device_bench"));
        device.args([iterations.as_str(), "--event-idx-only"]);
        runs.add(bench::parse_figures(&captured("device_bench", device)?));

        let bus = ws.join("target/bench/bus");
        let running = start_stack(&bus)?;
        let mut client = Command::new(release_dir().join("examples/drm_bench"));
        client
            .args([iterations.as_str(), nowait_seconds.as_str()])
            .env(SCHEME_DIR, &bus);
        runs.add(bench::parse_figures(&captured("drm_bench", client)?));
        runs.add(glbench::figures(&ws, args.seconds, &mesa_env(&bus)?)?);
        if run == args.repeat {
            stats = drm_stats(&bus);
        }
        drop(running);
    }
    let mut text = format!(
        "`{}`: {} iterations per figure, {} run{} of each; ours = the stack \
         (Mesa for the GL rows), reference = the device alone (Mesa on vtest).\n\n{}",
        args.command,
        args.iterations,
        args.repeat,
        if args.repeat == 1 { "" } else { "s" },
        runs.table()
    );
    match stats.map(|s| bench::parse_stats(&s)) {
        Ok(counters) if !counters.is_empty() => {
            text.push_str(
                "\nPer ioctl, drmd's counters (`/scheme/drm/stats`) at the end of the last \
                 run (drm_bench, then the GL benchmark through Mesa):\n\n",
            );
            text.push_str(&bench::stats_table(&counters));
        }
        Ok(_) => text.push_str("\nPer-ioctl counters: `/scheme/drm/stats` had no ioctl lines.\n"),
        Err(e) => text.push_str(&format!("\nPer-ioctl counters: not available ({e}).\n")),
    }
    println!("\n{text}");
    if args.smoke {
        return Ok(());
    }
    let block = format!("{}\n{text}", machine_description()?);
    let path = ws.join("docs/PERFORMANCE.md");
    let page =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let page = bench::splice(&page, &block)
        .ok_or("docs/PERFORMANCE.md has no <!-- bench:begin --> ... <!-- bench:end --> markers")?;
    std::fs::write(&path, page).map_err(|e| format!("writing {}: {e}", path.display()))?;
    println!("bench: wrote the tables into {}", path.display());
    Ok(())
}

/// Runs `command` (`name` in messages) to completion; echoes and returns
/// its stdout.
fn captured(name: &str, mut command: Command) -> Result<String> {
    let out = command
        .current_dir(workspace_root())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running {name}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{stdout}");
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{name} failed: {}", out.status))
    }
}

/// drmd's per-ioctl counters, read from `/scheme/drm/stats` on `bus`.
fn drm_stats(bus: &Path) -> Result<String> {
    // The scheme client finds the bus through the environment; nothing
    // else runs in this process meanwhile.
    let before = std::env::var_os(SCHEME_DIR);
    std::env::set_var(SCHEME_DIR, bus);
    let read = (|| {
        let fd = scheme_seam::SchemeFd::open("/scheme/drm/stats", 0)?;
        let mut buf = vec![0u8; 1 << 20];
        let n = fd.read(&mut buf)?;
        buf.truncate(n);
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&buf).into_owned())
    })();
    match before {
        Some(v) => std::env::set_var(SCHEME_DIR, v),
        None => std::env::remove_var(SCHEME_DIR),
    }
    read.map_err(|e| format!("reading /scheme/drm/stats: {e}"))
}

/// The machine and software the figures come from, as Markdown lines.
fn machine_description() -> Result<String> {
    let output = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.trim().trim_end_matches(" kB").parse::<f64>().ok())
        .map_or("unknown".into(), |kb| {
            format!("{:.1} GiB", kb / (1 << 20) as f64)
        });
    let packages = output(
        "dpkg-query",
        &[
            "-W",
            "-f=${Package} ${Version}, ",
            "libvirglrenderer1",
            "libgl1-mesa-dri",
        ],
    );
    Ok(format!(
        "- machine: {}; {cpu}, {cores} cores, {memory} of memory\n\
         - device: QEMU's vhost-user-gpu ({}); {}\n\
         - produced {} by the command below\n",
        output("uname", &["-srm"]),
        virtio_gpud::transport::vhost_user::find_backend()
            .map_or("not found".into(), |p| p.display().to_string()),
        packages.trim_end_matches([',', ' ']),
        output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
    ))
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
/// stands for /scheme/); the launcher stops them when it is dropped
/// (SIGTERM).
fn start_stack(bus: &Path) -> Result<Started> {
    start_stack_with(bus, &[])
}

/// [`start_stack`] with `gpu_args` for virtio-gpud (`--2d`: the display
/// device): `gpu-launcher` starts virtio-gpud, syncd and drmd in init's
/// order, each once the one before is ready, and restarts drmd if it
/// exits; their logs go to `launcher.log` in the bus directory.
fn start_stack_with(bus: &Path, gpu_args: &[&str]) -> Result<Started> {
    let _ = std::fs::remove_dir_all(bus);
    std::fs::create_dir_all(bus).map_err(|e| format!("creating {}: {e}", bus.display()))?;
    let log = bus.join("launcher.log");
    let mut cmd = Command::new(release_dir().join("gpu-launcher"));
    cmd.args(gpu_args)
        .env(SCHEME_DIR, bus)
        .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?);
    let started =
        Started::start(cmd).map_err(|e| format!("gpu-launcher: {e} (log: {})", log.display()))?;
    println!(
        "started gpu-launcher (pid {}): virtio-gpud, syncd and drmd; log {}",
        started.pid(),
        log.display()
    );
    Ok(started)
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
    // The fuzz crate is a workspace of its own.
    let fuzz_manifest = workspace_root().join("fuzz/Cargo.toml");
    let fuzz_manifest = fuzz_manifest.to_str().ok_or("non-UTF-8 path")?;
    cargo(&["fmt", "--manifest-path", fuzz_manifest, "--check"])?;
    cargo(&[
        "clippy",
        "--manifest-path",
        fuzz_manifest,
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    // Daemon binaries are started by the cross-process tests, and the
    // Mesa tests preload the shim (a library).
    cargo(&["build", "--workspace"])?;
    // The main job must keep working too.
    demo(Some("target/demo"))?;
    cargo_test()?;
    piglit_compare()?;
    fuzz::ci_step()?;
    // The benchmark must keep working; its timings are not judged.
    bench(&BenchArgs::smoke())
}

/// The full storm, on release builds (the daemons it starts are the test
/// binary's profile's).
fn storm() -> Result {
    cargo(&["build", "--release", "--workspace", "--bins"])?;
    cargo(&[
        "test",
        "--release",
        "-p",
        "stack-tests",
        "--test",
        "storm",
        "--",
        "--ignored",
        "--nocapture",
    ])
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

#[cfg(test)]
mod tests {
    use super::BenchArgs;

    fn parse(args: &[&str]) -> Result<BenchArgs, String> {
        BenchArgs::parse(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn bench_arguments() {
        let a = parse(&["500", "--repeat", "5"]).unwrap();
        assert_eq!((a.iterations, a.repeat, a.smoke), (500, 5, false));
        assert_eq!(a.command, "cargo xtask bench 500 --repeat 5");
        let a = parse(&[]).unwrap();
        assert_eq!((a.iterations, a.repeat), (1000, 3));
        let smoke = BenchArgs::smoke();
        assert_eq!((smoke.iterations, smoke.repeat, smoke.smoke), (20, 1, true));
        assert!(parse(&["--repeat"]).is_err());
        assert!(parse(&["lots"]).is_err());
    }
}
