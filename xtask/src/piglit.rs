//! Piglit runs for comparing the stack with Mesa's reference path.
//!
//! A run takes a subset file (`tests/piglit/subset.txt`: one test a line,
//! `<name>\t<binary> <args...>`), runs every test as its own process with a
//! given environment added to ours, and classifies each as piglit does
//! (pass, fail, skip, warn, crash, timeout). Results are plain text
//! (`<name>\t<result>`), so a reference run and a stack run can be compared
//! later: [`compare_report`] lists every test whose result differs and flags
//! the ones that pass on the reference and not on the stack.
//!
//! The reference is Mesa's own virgl path, vtest: [`VtestServer`] starts
//! `virgl_test_server` and gives the environment its clients need. Mesa
//! falls back to llvmpipe without a word when virgl fails, so a run should
//! be bracketed with [`check_renderer`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

type Result<T = ()> = std::result::Result<T, String>;

/// Where Debian 12's `piglit` package installs piglit: test binaries in
/// `bin/`, shader_test files and data under `tests/`.
pub const PIGLIT_ROOT: &str = "/usr/lib/x86_64-linux-gnu/piglit";

/// The subset file, relative to the workspace root.
pub const SUBSET: &str = "tests/piglit/subset.txt";

/// The socket path Mesa 22.3's vtest client always connects to.
pub const VTEST_SOCKET: &str = "/tmp/.virgl_test";

/// Per-test time limit used by `cargo xtask piglit-reference`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Tests run at once by `cargo xtask piglit-reference`.
pub const DEFAULT_JOBS: usize = 2;

/// How one test ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// `PIGLIT: {"result": "pass"}` and exit status 0.
    Pass,
    /// The test reported `fail`.
    Fail,
    /// The test reported `skip` (a missing extension, version or feature).
    Skip,
    /// The test reported `warn`, or reported `pass` but exited non-zero.
    Warn,
    /// Killed by a signal, or exited without a result line.
    Crash,
    /// Still running at the time limit; it was killed.
    Timeout,
}

impl Outcome {
    /// Every outcome, in the order counts are printed.
    pub const ALL: [Outcome; 6] = [
        Outcome::Pass,
        Outcome::Fail,
        Outcome::Skip,
        Outcome::Warn,
        Outcome::Crash,
        Outcome::Timeout,
    ];

    /// The lower-case name piglit uses (`pass`, `fail`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Skip => "skip",
            Outcome::Warn => "warn",
            Outcome::Crash => "crash",
            Outcome::Timeout => "timeout",
        }
    }

    /// The outcome named `name` (as [`Outcome::as_str`] writes it).
    pub fn parse(name: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One piglit test: its name and its command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Test {
    /// piglit's name for it (e.g. `spec@!opengl 2.0@gl-2.0-vertexattribpointer`).
    pub name: String,
    /// The binary (a name in [`PIGLIT_ROOT`]`/bin`) and its arguments;
    /// relative paths (`tests/...shader_test`) are relative to [`PIGLIT_ROOT`].
    pub argv: Vec<String>,
}

/// Reads a subset file: `<name>\t<binary> <args...>` a line, arguments split
/// on spaces; blank lines and lines starting with `#` are skipped.
pub fn read_subset(path: &Path) -> Result<Vec<Test>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let mut tests = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, command) = line.split_once('\t').ok_or(format!(
            "{}:{}: no tab between name and command",
            path.display(),
            number + 1
        ))?;
        let argv: Vec<String> = command.split_whitespace().map(String::from).collect();
        if argv.is_empty() {
            return Err(format!("{}:{}: no command", path.display(), number + 1));
        }
        tests.push(Test {
            name: name.to_string(),
            argv,
        });
    }
    Ok(tests)
}

/// The results of a run: every test's outcome, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Results {
    /// Outcome of each test, by test name.
    pub outcomes: BTreeMap<String, Outcome>,
}

impl Results {
    /// How many tests ended with each outcome (every outcome present, maybe 0).
    pub fn counts(&self) -> BTreeMap<Outcome, usize> {
        let mut counts: BTreeMap<Outcome, usize> = Outcome::ALL.iter().map(|&o| (o, 0)).collect();
        for outcome in self.outcomes.values() {
            *counts.entry(*outcome).or_default() += 1;
        }
        counts
    }

    /// One line of counts: `pass 350, fail 20, skip 15, warn 0, crash 1, timeout 0 (of 386)`.
    pub fn summary(&self) -> String {
        let counts = self.counts();
        let parts: Vec<String> = Outcome::ALL
            .iter()
            .map(|o| format!("{o} {}", counts[o]))
            .collect();
        format!("{} (of {})", parts.join(", "), self.outcomes.len())
    }

    /// Writes `<name>\t<result>` lines, after a `#` header with `note`
    /// (e.g. the renderer and the date) and the counts.
    pub fn write(&self, path: &Path, note: &str) -> Result {
        let mut text = String::new();
        for line in note.lines() {
            let _ = writeln!(text, "# {line}");
        }
        let _ = writeln!(text, "# {}", self.summary());
        for (name, outcome) in &self.outcomes {
            let _ = writeln!(text, "{name}\t{outcome}");
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
    }

    /// Reads what [`Results::write`] wrote (`#` lines are skipped).
    pub fn read(path: &Path) -> Result<Results> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let mut outcomes = BTreeMap::new();
        for (number, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let outcome = line
                .rsplit_once('\t')
                .and_then(|(name, result)| Some((name, Outcome::parse(result.trim())?)))
                .ok_or(format!(
                    "{}:{}: not <name>\\t<result>",
                    path.display(),
                    number + 1
                ))?;
            outcomes.insert(outcome.0.to_string(), outcome.1);
        }
        Ok(Results { outcomes })
    }
}

/// Runs `tests`, `jobs` at a time, each with `env` added to this process's
/// environment, in [`PIGLIT_ROOT`] with `PIGLIT_SOURCE_DIR` set to it (piglit
/// reads shaders and data from there). A test still running after `timeout`
/// is killed. When `log_dir` is given, the output of every test that does
/// not pass is kept there as `<name>.log` (name with `/` and spaces replaced).
/// Prints each non-passing result and a progress line every 50 tests.
pub fn run(
    tests: &[Test],
    env: &[(String, String)],
    jobs: usize,
    timeout: Duration,
    log_dir: Option<&Path>,
) -> Result<Results> {
    let scratch = scratch_dir("run")?;
    if let Some(dir) = log_dir {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let outcomes = Mutex::new(BTreeMap::new());
    let errors = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for worker in 0..jobs.max(1) {
            let (scratch, next, done, outcomes, errors) =
                (&scratch, &next, &done, &outcomes, &errors);
            scope.spawn(move || {
                while let Some(test) = tests.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let out = scratch.join(format!("{worker}.out"));
                    let err = scratch.join(format!("{worker}.err"));
                    let outcome = match run_one(test, env, timeout, &out, &err) {
                        Ok(outcome) => outcome,
                        Err(e) => {
                            errors.lock().unwrap().push(format!("{}: {e}", test.name));
                            continue;
                        }
                    };
                    if outcome != Outcome::Pass {
                        println!("{}: {outcome}", test.name);
                        if let Some(dir) = log_dir {
                            keep_log(dir, test, outcome, &out, &err);
                        }
                    }
                    outcomes.lock().unwrap().insert(test.name.clone(), outcome);
                    let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if finished % 50 == 0 {
                        println!("[{finished}/{}]", tests.len());
                    }
                }
            });
        }
    });
    let _ = std::fs::remove_dir_all(&scratch);
    let errors = errors.into_inner().unwrap();
    if !errors.is_empty() {
        return Err(format!("could not run tests: {}", errors.join("; ")));
    }
    Ok(Results {
        outcomes: outcomes.into_inner().unwrap(),
    })
}

/// Reads the subset file at `subset` and [`run`]s it.
pub fn run_subset(
    subset: &Path,
    env: &[(String, String)],
    jobs: usize,
    timeout: Duration,
    log_dir: Option<&Path>,
) -> Result<Results> {
    run(&read_subset(subset)?, env, jobs, timeout, log_dir)
}

/// Runs one test with its stdout and stderr in the files `out` and `err`.
fn run_one(
    test: &Test,
    env: &[(String, String)],
    timeout: Duration,
    out: &Path,
    err: &Path,
) -> Result<Outcome> {
    let mut child = piglit_command(&test.argv, env)
        .stdout(File::create(out).map_err(|e| e.to_string())?)
        .stderr(File::create(err).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", test.argv[0]))?;
    let status = match wait_until(&mut child, Instant::now() + timeout)? {
        Some(status) => status,
        None => return Ok(Outcome::Timeout),
    };
    let stdout = std::fs::read(out).map_err(|e| e.to_string())?;
    Ok(classify(
        &String::from_utf8_lossy(&stdout),
        status.code(),
        status.signal(),
    ))
}

/// A command for a piglit binary (`argv[0]`, a name in `bin/`) with `env`.
fn piglit_command(argv: &[String], env: &[(String, String)]) -> Command {
    let mut command = Command::new(Path::new(PIGLIT_ROOT).join("bin").join(&argv[0]));
    command
        .args(&argv[1..])
        .current_dir(PIGLIT_ROOT)
        .env("PIGLIT_SOURCE_DIR", PIGLIT_ROOT)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        // Its own process group, so a timeout can stop all of it.
        .process_group(0);
    command
}

/// Waits for `child` until `deadline`; past it, kills the child's process
/// group and returns `None`.
fn wait_until(child: &mut Child, deadline: Instant) -> Result<Option<std::process::ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            kill_group(child.id(), "KILL");
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `signal` to the process group led by `pid` (std has no killpg).
fn kill_group(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([format!("-{signal}"), "--".into(), format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
}

/// Classifies a finished test as piglit's framework does: a signal is a
/// crash; otherwise the last `PIGLIT: {"result": ...}` line counts (failing
/// that, the worst subtest result), with `pass` turned into `warn` on a
/// non-zero exit; no result at all is a crash.
fn classify(stdout: &str, code: Option<i32>, signal: Option<i32>) -> Outcome {
    if signal.is_some() {
        return Outcome::Crash;
    }
    let mut result = None;
    let mut worst_subtest: Option<Outcome> = None;
    for line in stdout.lines() {
        let Some(json) = line.strip_prefix("PIGLIT:") else {
            continue;
        };
        if let Some(r) = json_string_after(json, "\"result\"").and_then(Outcome::parse) {
            result = Some(r);
        } else if json.contains("\"subtest\"") {
            let sub = json
                .rsplit_once(':')
                .and_then(|(_, v)| v.split('"').nth(1))
                .and_then(Outcome::parse);
            if let Some(sub) = sub {
                worst_subtest = Some(worst_subtest.map_or(sub, |w| worse(w, sub)));
            }
        }
    }
    match (result.or(worst_subtest), code) {
        (None, _) => Outcome::Crash,
        (Some(Outcome::Pass), Some(c)) if c != 0 => Outcome::Warn,
        (Some(outcome), _) => outcome,
    }
}

/// The worse of two results, in piglit's order (skip < pass < warn < fail <
/// crash < timeout).
fn worse(a: Outcome, b: Outcome) -> Outcome {
    let rank = |o: Outcome| match o {
        Outcome::Skip => 0,
        Outcome::Pass => 1,
        Outcome::Warn => 2,
        Outcome::Fail => 3,
        Outcome::Crash => 4,
        Outcome::Timeout => 5,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// The string value after `key` in a one-level JSON object (`{"result": "pass" }`).
fn json_string_after<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let rest = &json[json.find(key)? + key.len()..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    Some(&rest[..rest.find('"')?])
}

/// Copies a test's command, stdout and stderr to `<dir>/<name>.log`.
fn keep_log(dir: &Path, test: &Test, outcome: Outcome, out: &Path, err: &Path) {
    let file: String = test
        .name
        .chars()
        .map(|c| {
            if c == '/' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let text = format!(
        "{}: {outcome}\n$ {}\n--- stdout\n{}--- stderr\n{}",
        test.name,
        test.argv.join(" "),
        String::from_utf8_lossy(&std::fs::read(out).unwrap_or_default()),
        String::from_utf8_lossy(&std::fs::read(err).unwrap_or_default()),
    );
    let _ = std::fs::write(dir.join(format!("{file}.log")), text);
}

/// The `GL_RENDERER` piglit's `glinfo` reports under `env`; an error unless
/// it contains `expected` (e.g. `virgl`, to prove Mesa did not fall back to
/// llvmpipe).
pub fn check_renderer(env: &[(String, String)], expected: &str) -> Result<String> {
    let argv = ["glinfo".to_string(), "-auto".into()];
    let output = piglit_command(&argv, env)
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("running glinfo: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let renderer = stdout
        .lines()
        .find_map(|l| l.strip_prefix("GL_RENDERER = "))
        .map(str::to_string)
        .ok_or(format!(
            "glinfo reported no GL_RENDERER ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))?;
    if renderer.contains(expected) {
        Ok(renderer)
    } else {
        Err(format!(
            "GL_RENDERER is {renderer:?}, not {expected}: Mesa fell back"
        ))
    }
}

/// One test whose result differs between two runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// The test's name.
    pub name: String,
    /// Its outcome on the reference (`None`: not in that run).
    pub reference: Option<Outcome>,
    /// Its outcome on the stack (`None`: not in that run).
    pub stack: Option<Outcome>,
}

impl Difference {
    /// Passes on the reference, but not on the stack.
    pub fn is_regression(&self) -> bool {
        self.reference == Some(Outcome::Pass) && self.stack != Some(Outcome::Pass)
    }
}

/// Every test whose outcome differs between `reference` and `stack`
/// (including tests only one of them ran), by name.
pub fn compare(reference: &Results, stack: &Results) -> Vec<Difference> {
    let mut names: Vec<&String> = reference
        .outcomes
        .keys()
        .chain(stack.outcomes.keys())
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let (r, s) = (
                reference.outcomes.get(name).copied(),
                stack.outcomes.get(name).copied(),
            );
            (r != s).then(|| Difference {
                name: name.clone(),
                reference: r,
                stack: s,
            })
        })
        .collect()
}

/// A report of two runs: counts side by side, then every difference, the
/// regressions (pass on the reference, anything else on the stack) marked
/// `REGRESSION` and counted on the last line.
pub fn compare_report(reference: &Results, stack: &Results) -> String {
    let (rc, sc) = (reference.counts(), stack.counts());
    let mut text = format!("{:<10}{:>10}{:>10}\n", "", "reference", "stack");
    for o in Outcome::ALL {
        let _ = writeln!(text, "{:<10}{:>10}{:>10}", o.as_str(), rc[&o], sc[&o]);
    }
    let _ = writeln!(
        text,
        "{:<10}{:>10}{:>10}",
        "total",
        reference.outcomes.len(),
        stack.outcomes.len()
    );
    let differences = compare(reference, stack);
    let show = |o: Option<Outcome>| o.map_or("-", Outcome::as_str);
    for d in &differences {
        let _ = writeln!(
            text,
            "{}{}: {} -> {}",
            if d.is_regression() { "REGRESSION " } else { "" },
            d.name,
            show(d.reference),
            show(d.stack)
        );
    }
    let regressions = differences.iter().filter(|d| d.is_regression()).count();
    let _ = writeln!(
        text,
        "{} differ, {regressions} regressions (pass on reference, not on stack)",
        differences.len()
    );
    text
}

/// A `virgl_test_server` serving Mesa's vtest clients, the reference path;
/// stopped (with its per-client children) when dropped.
///
/// Mesa 22.3 connects to the fixed path [`VTEST_SOCKET`], so that path is
/// made a symlink to this server's socket: only one reference run at a time.
pub struct VtestServer {
    child: Child,
    dir: PathBuf,
}

impl VtestServer {
    /// Starts the server (EGL surfaceless, on llvmpipe here) with its socket
    /// and log in a new temporary directory, points [`VTEST_SOCKET`] at it
    /// and waits (up to 10 s) for the socket to appear.
    pub fn start() -> Result<VtestServer> {
        let dir = scratch_dir("vtest")?;
        let socket = dir.join("socket");
        let log = dir.join("server.log");
        let log_file = File::create(&log).map_err(|e| e.to_string())?;
        let child = Command::new("virgl_test_server")
            .arg("--use-egl-surfaceless")
            // `--socket-path PATH` would take PATH as a replay file.
            .arg(format!("--socket-path={}", socket.display()))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file)
            .process_group(0)
            .spawn()
            .map_err(|e| {
                format!("starting virgl_test_server (Debian package virgl-server): {e}")
            })?;
        let mut server = VtestServer { child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            if !server.is_running() || Instant::now() >= deadline {
                return Err(format!(
                    "virgl_test_server made no socket (log: {})",
                    log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let link = Path::new(VTEST_SOCKET);
        if link.symlink_metadata().is_ok() {
            std::fs::remove_file(link).map_err(|e| format!("removing {VTEST_SOCKET}: {e}"))?;
        }
        std::os::unix::fs::symlink(&socket, link)
            .map_err(|e| format!("linking {VTEST_SOCKET}: {e}"))?;
        Ok(server)
    }

    /// The environment for clients of the reference path: Mesa's gallium
    /// `virpipe` driver (virgl over vtest) and piglit's surfaceless EGL
    /// platform (no window system; tests render to FBOs).
    pub fn env(&self) -> Vec<(String, String)> {
        reference_env()
    }

    /// The server's log file.
    pub fn log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// Whether the server process is still alive.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for VtestServer {
    fn drop(&mut self) {
        kill_group(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.is_running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        kill_group(self.child.id(), "KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
        let link = Path::new(VTEST_SOCKET);
        if std::fs::read_link(link).is_ok_and(|target| target.starts_with(&self.dir)) {
            let _ = std::fs::remove_file(link);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The reference path's environment (see [`VtestServer::env`]).
pub fn reference_env() -> Vec<(String, String)> {
    [
        ("GALLIUM_DRIVER", "virpipe"),
        ("PIGLIT_PLATFORM", "surfaceless_egl"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A fresh directory `xtask-piglit-<what>-<pid>` under the temporary directory.
fn scratch_dir(what: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("xtask-piglit-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok(dir)
}

/// `cargo xtask piglit-reference [RESULTS]`: runs the subset on the vtest
/// reference path, checking the renderer is virgl before and after, and
/// writes the results (default `target/piglit/reference.txt`, logs of
/// non-passing tests beside it in `reference-logs/`). With an earlier
/// results file at that path, also prints how this run differs from it.
pub fn reference(workspace: &Path, results: Option<&str>) -> Result {
    let path = results.map_or_else(
        || workspace.join("target/piglit/reference.txt"),
        |r| workspace.join(r),
    );
    let logs = path.with_file_name(format!(
        "{}-logs",
        path.file_stem().unwrap_or_default().to_string_lossy()
    ));
    if !Path::new(PIGLIT_ROOT).join("bin/glinfo").exists() {
        return Err(format!(
            "no piglit in {PIGLIT_ROOT}: install Debian's piglit (`sudo cargo xtask setup`)"
        ));
    }
    let subset = workspace.join(SUBSET);
    let count = read_subset(&subset)?.len();
    let previous = Results::read(&path).ok();
    let mut server = VtestServer::start()?;
    let env = server.env();
    let renderer = check_renderer(&env, "virgl")?;
    println!("piglit: {count} tests on {renderer}, {DEFAULT_JOBS} at a time");
    let started = Instant::now();
    let run = run_subset(&subset, &env, DEFAULT_JOBS, DEFAULT_TIMEOUT, Some(&logs))?;
    let wall = started.elapsed();
    check_renderer(&env, "virgl").map_err(|e| format!("after the run: {e}"))?;
    if !server.is_running() {
        return Err(format!(
            "virgl_test_server died during the run (log: {})",
            server.log().display()
        ));
    }
    drop(server);
    run.write(
        &path,
        &format!(
            "piglit reference run (vtest): {renderer}\nwall time {:.1} s, {DEFAULT_JOBS} jobs",
            wall.as_secs_f64()
        ),
    )?;
    if let Some(previous) = previous {
        println!("compared with the previous {}:", path.display());
        print!("{}", compare_report(&previous, &run));
    }
    println!("piglit reference: {}", run.summary());
    println!(
        "wall time {:.1} s; results in {}",
        wall.as_secs_f64(),
        path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_like_piglit() {
        let pass = "x\nPIGLIT: {\"result\": \"pass\" }\n";
        assert_eq!(classify(pass, Some(0), None), Outcome::Pass);
        assert_eq!(classify(pass, Some(1), None), Outcome::Warn);
        assert_eq!(classify(pass, None, Some(6)), Outcome::Crash);
        assert_eq!(classify("", Some(1), None), Outcome::Crash);
        let skip = "PIGLIT: {\"result\": \"skip\" }\n";
        assert_eq!(classify(skip, Some(0), None), Outcome::Skip);
        let subtests = "PIGLIT: {\"subtest\": {\"a b\" : \"pass\"}}\n\
                        PIGLIT: {\"subtest\": {\"c\" : \"fail\"}}\n";
        assert_eq!(classify(subtests, Some(1), None), Outcome::Fail);
    }

    #[test]
    fn results_round_trip_and_compare() {
        let mut a = Results::default();
        a.outcomes.insert("spec@x@one two".into(), Outcome::Pass);
        a.outcomes.insert("y".into(), Outcome::Skip);
        let path = scratch_dir("unit").unwrap().join("r.txt");
        a.write(&path, "note").unwrap();
        assert_eq!(Results::read(&path).unwrap(), a);
        let mut b = a.clone();
        b.outcomes.insert("spec@x@one two".into(), Outcome::Timeout);
        let d = compare(&a, &b);
        assert_eq!(d.len(), 1);
        assert!(d[0].is_regression());
        assert!(compare_report(&a, &b).contains("1 regressions"));
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
