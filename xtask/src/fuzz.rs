//! `cargo xtask fuzz`: builds the libFuzzer targets of `fuzz/` (a crate
//! of its own, outside the workspace) with cargo-fuzz, installing it when
//! missing, and runs each target for a while on its seeds (`fuzz/corpus/`)
//! plus the corpus earlier runs grew (`fuzz/target/corpus/`), failing on
//! any crash. See fuzz/README.md.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::{cargo_bin, workspace_root, Result};

/// Seconds per target unless told.
const DEFAULT_SECONDS: u64 = 60;
/// Seconds per target in `cargo xtask test`: thirteen targets, about
/// three minutes.
pub const CI_SECONDS: u64 = 15;
/// Bins of the fuzz crate that are not targets.
const NOT_TARGETS: &[&str] = &["seeds"];
/// What ASan is told unless `ASAN_OPTIONS` is set: cargo-fuzz's setting,
/// and no allocation stacks (a third faster on the allocating targets;
/// rerun an artifact with `ASAN_OPTIONS=detect_odr_violation=0` for them).
const ASAN_OPTIONS: &str = "detect_odr_violation=0:malloc_context_size=0";

/// How long each target runs: for `seconds`, or `runs` executions, or
/// whichever ends first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Budget {
    seconds: Option<u64>,
    runs: Option<u64>,
}

impl Budget {
    const fn seconds(s: u64) -> Budget {
        Budget {
            seconds: Some(s),
            runs: None,
        }
    }

    /// libFuzzer's flags for it.
    fn flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if let Some(s) = self.seconds {
            flags.push(format!("-max_total_time={s}"));
        }
        if let Some(n) = self.runs {
            flags.push(format!("-runs={n}"));
        }
        flags
    }
}

/// What `cargo xtask fuzz [SECONDS] [--runs N] [--ci] [--no-asan] [--seeds]
/// [TARGET...]` asks.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Args {
    budget: Budget,
    /// The bounded run of `cargo xtask test` ([`ci_step`]).
    ci: bool,
    seeds: bool,
    /// Build with AddressSanitizer (off for long runs: several times the
    /// executions a second, overflow checks still on).
    asan: bool,
    targets: Vec<String>,
}

const USAGE: &str =
    "usage: cargo xtask fuzz [SECONDS | --runs N | --ci] [--no-asan] [--seeds] [TARGET...]";

fn parse(args: &[String]) -> Result<Args> {
    let mut parsed = Args {
        budget: Budget {
            seconds: None,
            runs: None,
        },
        ci: false,
        seeds: false,
        asan: true,
        targets: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seeds" => parsed.seeds = true,
            "--no-asan" => parsed.asan = false,
            "--ci" => parsed.ci = true,
            "--runs" => {
                let n = it.next().and_then(|n| n.parse().ok()).ok_or(USAGE)?;
                parsed.budget.runs = Some(n);
            }
            a if a.starts_with('-') => return Err(USAGE.into()),
            a => match a.parse() {
                Ok(s) => parsed.budget.seconds = Some(s),
                Err(_) => parsed.targets.push(a.to_string()),
            },
        }
    }
    if parsed.budget.seconds.is_none() && parsed.budget.runs.is_none() {
        parsed.budget.seconds = Some(DEFAULT_SECONDS);
    }
    Ok(parsed)
}

/// `cargo xtask fuzz ...`.
pub fn run(args: &[String]) -> Result {
    let args = parse(args)?;
    if args.ci {
        return ci_step();
    }
    if args.seeds && !args.asan {
        return Err("--seeds needs the ASan build (the seed generator links no libFuzzer)".into());
    }
    let built = build(args.asan)?;
    if args.seeds {
        let status = fuzz_command(&built.bin("seeds"))
            .status()
            .map_err(|e| format!("running the seed generator: {e}"))?;
        if !status.success() {
            return Err(format!("the seed generator failed: {status}"));
        }
    }
    let targets = if args.targets.is_empty() {
        built.targets.clone()
    } else {
        for t in &args.targets {
            if !built.targets.contains(t) {
                return Err(format!(
                    "no fuzz target {t} (targets: {})",
                    built.targets.join(", ")
                ));
            }
        }
        args.targets.clone()
    };
    run_targets(&built, &targets, args.budget)
}

/// The bounded run `cargo xtask test` makes (and `cargo xtask fuzz --ci`):
/// every target for [`CI_SECONDS`] (about three minutes, plus the build).
pub fn ci_step() -> Result {
    let built = build(true)?;
    run_targets(&built, &built.targets, Budget::seconds(CI_SECONDS))
}

fn fuzz_dir() -> PathBuf {
    workspace_root().join("fuzz")
}

/// A command for one of the built binaries, with the fuzzing environment.
fn fuzz_command(bin: &Path) -> Command {
    let mut cmd = Command::new(bin);
    if std::env::var_os("ASAN_OPTIONS").is_none() {
        cmd.env("ASAN_OPTIONS", ASAN_OPTIONS);
    }
    cmd.current_dir(fuzz_dir());
    cmd
}

/// A `cargo fuzz` command run in the workspace: stable rustc accepts the
/// nightly flags cargo-fuzz passes with RUSTC_BOOTSTRAP (also set by
/// fuzz/.cargo/config.toml, for `cargo fuzz` by hand).
fn cargo_fuzz(args: &[&str]) -> Command {
    let mut cmd = Command::new(cargo_bin());
    cmd.arg("fuzz")
        .args(args)
        .env("RUSTC_BOOTSTRAP", "1")
        .current_dir(workspace_root());
    cmd
}

/// Installs cargo-fuzz if `cargo fuzz` is not there.
fn ensure_cargo_fuzz() -> Result {
    let present = cargo_fuzz(&["--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    println!("+ cargo install cargo-fuzz --locked");
    let status = Command::new(cargo_bin())
        .args(["install", "cargo-fuzz", "--locked"])
        .status()
        .map_err(|e| format!("running cargo install: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo install cargo-fuzz failed: {status}"))
    }
}

/// The built targets.
struct Built {
    dir: PathBuf,
    targets: Vec<String>,
}

impl Built {
    fn bin(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Builds every target (release, debug assertions, ASan unless `asan` is
/// false or this toolchain cannot link it). Without a sanitizer the
/// targets are built one by one: the seed generator links no libFuzzer,
/// and only ASan's runtime defines the coverage hooks it was compiled
/// with.
fn build(asan: bool) -> Result<Built> {
    ensure_cargo_fuzz()?;
    let out = cargo_fuzz(&["list"])
        .output()
        .map_err(|e| format!("running cargo fuzz list: {e}"))?;
    let targets: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|t| !t.is_empty() && !NOT_TARGETS.contains(t))
        .map(String::from)
        .collect();
    let built_with_asan = asan && {
        println!("+ cargo fuzz build");
        let status = cargo_fuzz(&["build"])
            .status()
            .map_err(|e| format!("running cargo fuzz: {e}"))?;
        if !status.success() {
            println!("fuzz: the ASan build failed; building without a sanitizer");
        }
        status.success()
    };
    if !built_with_asan {
        for target in &targets {
            println!("+ cargo fuzz build --sanitizer none {target}");
            let status = cargo_fuzz(&["build", "--sanitizer", "none", target])
                .status()
                .map_err(|e| format!("running cargo fuzz: {e}"))?;
            if !status.success() {
                return Err(format!("cargo fuzz build {target} failed: {status}"));
            }
        }
    }
    let dir = fuzz_dir().join("target/x86_64-unknown-linux-gnu/release");
    Ok(Built { dir, targets })
}

/// What libFuzzer said at the end of one run.
#[derive(Clone, Debug, Default, PartialEq)]
struct Stats {
    executions: u64,
    exec_per_sec: u64,
    new_units: u64,
    /// The crashing input libFuzzer wrote, if any.
    artifact: Option<String>,
}

/// Reads libFuzzer's output: the final stats (`-print_final_stats=1`),
/// else the `#N DONE ... exec/s: R` line, and any artifact written.
fn parse_output(text: &str) -> Stats {
    let mut s = Stats::default();
    let number = |v: &str| v.trim().parse::<u64>().ok();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("stat::number_of_executed_units:") {
            s.executions = number(v).unwrap_or(s.executions);
        } else if let Some(v) = line.strip_prefix("stat::average_exec_per_sec:") {
            s.exec_per_sec = number(v).unwrap_or(s.exec_per_sec);
        } else if let Some(v) = line.strip_prefix("stat::new_units_added:") {
            s.new_units = number(v).unwrap_or(s.new_units);
        } else if let Some(rest) = line.strip_prefix('#') {
            if rest.contains("DONE") && s.executions == 0 {
                let n = rest.split_whitespace().next().and_then(number);
                s.executions = n.unwrap_or(0);
                if let Some(r) = rest.split("exec/s:").nth(1) {
                    s.exec_per_sec = r.split_whitespace().next().and_then(number).unwrap_or(0);
                }
            }
        } else if let Some((_, path)) = line.split_once("Test unit written to ") {
            s.artifact = Some(path.trim().to_string());
        }
    }
    s
}

/// What to show of a failed run: the panic message, the sanitizer's or
/// libFuzzer's verdict and the artifact line; the log's end if none.
fn crash_excerpt(text: &str) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.contains("panicked at") {
            let end = (i + 1..lines.len())
                .find(|&j| lines[j].starts_with("stack backtrace") || lines[j].starts_with("note:"))
                .unwrap_or(lines.len())
                .min(i + 12);
            out.extend_from_slice(&lines[i..end]);
            i = end;
            continue;
        }
        if (line.starts_with("==") && line.contains("ERROR"))
            || line.starts_with("SUMMARY:")
            || line.contains("Test unit written to")
        {
            out.push(line);
        }
        i += 1;
    }
    if out.is_empty() {
        out.extend_from_slice(&lines[lines.len().saturating_sub(20)..]);
    }
    out
}

/// Runs each target in turn; fails if any crashed (the others still run).
fn run_targets(built: &Built, targets: &[String], budget: Budget) -> Result {
    let fuzz = fuzz_dir();
    let logs = fuzz.join("target/logs");
    std::fs::create_dir_all(&logs).map_err(|e| format!("creating {}: {e}", logs.display()))?;
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for target in targets {
        let work = fuzz.join("target/corpus").join(target);
        let artifacts = fuzz.join("artifacts").join(target);
        for dir in [&work, &artifacts] {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        let limits = budget.flags();
        println!("fuzz: {target} ({})", limits.join(" "));
        let log = logs.join(format!("{target}.log"));
        let started = Instant::now();
        let mut cmd = fuzz_command(&built.bin(target));
        cmd.arg(&work).arg(fuzz.join("corpus").join(target));
        let regressions = fuzz.join("regressions").join(target);
        if regressions.is_dir() {
            cmd.arg(regressions);
        }
        let status = cmd
            .args(&limits)
            .args([
                "-print_final_stats=1",
                "-timeout=10",
                &format!("-artifact_prefix={}/", artifacts.display()),
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?)
            .status()
            .map_err(|e| format!("running {target}: {e}"))?;
        let seconds = started.elapsed().as_secs_f64();
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let mut stats = parse_output(&text);
        if stats.exec_per_sec == 0 && seconds > 0.0 {
            stats.exec_per_sec = (stats.executions as f64 / seconds) as u64;
        }
        let verdict = if status.success() {
            "ok".to_string()
        } else {
            println!(
                "fuzz: {target} failed ({status}); the end of {}:",
                log.display()
            );
            for line in crash_excerpt(&text) {
                println!("  {line}");
            }
            let what = stats
                .artifact
                .clone()
                .unwrap_or_else(|| format!("no artifact, see {}", log.display()));
            failed.push(format!("{target}: {what}"));
            "CRASH".to_string()
        };
        rows.push((target.clone(), stats, seconds, verdict));
    }
    println!(
        "\n{:<18} {:>12} {:>9} {:>9} {:>7}  result",
        "target", "executions", "exec/s", "new units", "seconds"
    );
    for (target, s, seconds, verdict) in &rows {
        println!(
            "{target:<18} {:>12} {:>9} {:>9} {seconds:>7.0}  {verdict}",
            s.executions, s.exec_per_sec, s.new_units
        );
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "fuzz targets crashed (inputs under fuzz/artifacts/):\n  {}",
            failed.join("\n  ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Result<Args> {
        parse(&s.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn arguments() {
        let a = args(&[]).unwrap();
        assert_eq!(a.budget, Budget::seconds(DEFAULT_SECONDS));
        let a = args(&["5", "capset", "--seeds"]).unwrap();
        assert_eq!((a.budget, a.seeds), (Budget::seconds(5), true));
        assert_eq!(a.targets, ["capset"]);
        assert!(args(&["--ci"]).unwrap().ci);
        assert!(args(&["--ci"]).unwrap().asan);
        assert!(!args(&["--no-asan"]).unwrap().asan);
        let a = args(&["--runs", "10000000", "drm_wire"]).unwrap();
        assert_eq!(a.budget.flags(), ["-runs=10000000"]);
        assert_eq!(a.targets, ["drm_wire"]);
        let a = args(&["1200", "--runs", "10000000"]).unwrap();
        assert_eq!(a.budget.flags(), ["-max_total_time=1200", "-runs=10000000"]);
        assert!(args(&["--runs"]).is_err());
        assert!(args(&["--fast"]).is_err());
    }

    #[test]
    fn libfuzzer_output() {
        let text = "#2\tINITED cov: 3 ft: 3 corp: 1/1b exec/s: 0 rss: 30Mb\n\
                    #187608\tDONE   cov: 1752 ft: 2212 corp: 252/9964b lim: 967 exec/s: 37521 rss: 144Mb\n\
                    Done 187608 runs in 5 second(s)\n\
                    stat::number_of_executed_units: 187608\n\
                    stat::average_exec_per_sec:     37521\n\
                    stat::new_units_added:          95\n";
        let s = parse_output(text);
        assert_eq!(
            (s.executions, s.exec_per_sec, s.new_units),
            (187608, 37521, 95)
        );
        let done_only =
            parse_output("#4096\tDONE   cov: 1 ft: 1 corp: 1/1b exec/s: 800 rss: 9Mb\n");
        assert_eq!((done_only.executions, done_only.exec_per_sec), (4096, 800));
        let crash = parse_output(
            "==1== ERROR: libFuzzer: deadly signal\n\
             artifact_prefix='a/'; Test unit written to fuzz/artifacts/capset/crash-12ab\n",
        );
        assert_eq!(
            crash.artifact.as_deref(),
            Some("fuzz/artifacts/capset/crash-12ab")
        );
        let log = "INFO: noise\n\
                   thread '<unnamed>' (1) panicked at src/capset.rs:10:5:\n\
                   the reason\n\
                   stack backtrace:\n   0: frames\n\
                   ==1== ERROR: libFuzzer: deadly signal\n\
                   SUMMARY: libFuzzer: deadly signal\n";
        assert_eq!(
            crash_excerpt(log),
            [
                "thread '<unnamed>' (1) panicked at src/capset.rs:10:5:",
                "the reason",
                "==1== ERROR: libFuzzer: deadly signal",
                "SUMMARY: libFuzzer: deadly signal"
            ]
        );
        assert_eq!(crash_excerpt("a\nb"), ["a", "b"]);
    }
}
