//! The GL-level benchmark: the same Mesa workloads (`gl-bench`, from
//! `tests/src/bin/gl-bench.rs`) on Mesa's vtest reference path and through
//! the stack.
//!
//! `gl-bench` reports `FIGURE <figure> <value> <unit>` lines with no path
//! prefix: [`FIGURES`]. Here they become `vtest.<figure>` (run on the
//! surfaceless platform against `virgl_test_server`, `GALLIUM_DRIVER=virpipe`)
//! and `mesa.<figure>` (run on EGL's GBM platform through the shim and the
//! three daemons).

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::bench::{parse_figures, Figure};
use crate::piglit::VtestServer;

/// The figures `gl-bench` reports, without a path prefix, and their units:
/// glClear + glFinish round trips per second; frames of 1,000 small draws
/// (+ glFinish) per second; MB/s (10^6 bytes) of 1024x1024 RGBA8 texture
/// uploads, each sampled by a draw.
pub const FIGURES: [(&str, &str); 3] = [
    ("clear_finish_per_s", "/s"),
    ("draw_fps", "fps"),
    ("tex_upload_mbps", "MB/s"),
];

/// Runs `target/release/gl-bench` (built by the caller) for about `seconds`
/// per workload, first on the vtest path (a [`VtestServer`] of its own, the
/// surfaceless platform), then with `mesa_env`, the environment of Mesa on
/// the stack (running already; the GBM platform on `/dev/dri/renderD128`).
/// Returns both runs' figures, keys prefixed `vtest.` and `mesa.`.
pub fn figures(
    workspace: &Path,
    seconds: f64,
    mesa_env: &[(String, String)],
) -> Result<Vec<Figure>, String> {
    let program = workspace.join("target/release/gl-bench");
    if !program.is_file() {
        return Err(format!(
            "{} is not built (cargo build --release -p stack-tests --bin gl-bench)",
            program.display()
        ));
    }
    let mut figures = Vec::new();
    {
        let mut server = VtestServer::start().map_err(|e| format!("vtest path: {e}"))?;
        let output = run(&program, "surfaceless", seconds, &server.env());
        let alive = server.is_running();
        let output = output.map_err(|e| {
            format!(
                "gl-bench on the vtest path: {e} (server {}, log {})",
                if alive { "running" } else { "dead" },
                server.log().display()
            )
        })?;
        figures.extend(
            prefixed("vtest", &output).map_err(|e| format!("gl-bench on the vtest path: {e}"))?,
        );
    }
    let output = run(&program, "gbm", seconds, mesa_env)
        .map_err(|e| format!("gl-bench through the stack: {e}"))?;
    figures
        .extend(prefixed("mesa", &output).map_err(|e| format!("gl-bench through the stack: {e}"))?);
    Ok(figures)
}

/// Runs `program platform seconds` with `env` added to ours; returns its
/// stdout, or why it failed (with the tail of its stderr). It is killed if
/// it has not finished well after its workloads should have.
fn run(
    program: &Path,
    platform: &str,
    seconds: f64,
    env: &[(String, String)],
) -> Result<String, String> {
    let mut child = Command::new(program)
        .args([platform, &seconds.to_string()])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting {}: {e}", program.display()))?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    // Three workloads, each with an untimed round, plus start-up.
    let limit = Duration::from_secs_f64(60.0 + 10.0 * seconds);
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for gl-bench: {e}")),
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let tail = tail(&stderr, 20);
    match status {
        None => Err(format!(
            "still running after {} s, killed; stderr: {tail}",
            limit.as_secs()
        )),
        Some(status) if !status.success() => Err(format!("{status}; stderr: {tail}")),
        Some(_) => Ok(stdout),
    }
}

/// The last `lines` lines of `text`, or `(empty)`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    match all.len() {
        0 => "(empty)".into(),
        n => all[n.saturating_sub(lines)..].join("\n"),
    }
}

/// The figures of `output` with keys `<path>.<figure>`; every one of
/// [`FIGURES`] must be there, in its unit.
fn prefixed(path: &str, output: &str) -> Result<Vec<Figure>, String> {
    let figures = parse_figures(output);
    for (key, unit) in FIGURES {
        if !figures.iter().any(|f| f.key == key && f.unit == unit) {
            return Err(format!(
                "no FIGURE {key} (in {unit}) in its output: {}",
                tail(output, 20)
            ));
        }
    }
    Ok(figures
        .into_iter()
        .map(|f| Figure {
            key: format!("{path}.{}", f.key),
            ..f
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_get_their_path_and_must_all_be_there() {
        let output = "GL_RENDERER: virgl\nFIGURE clear_finish_per_s 2000.5 /s\n\
                      FIGURE draw_fps 30.25 fps\nFIGURE tex_upload_mbps 2100.0 MB/s\ngl-bench ok\n";
        let figures = prefixed("vtest", output).unwrap();
        let keys: Vec<&str> = figures.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "vtest.clear_finish_per_s",
                "vtest.draw_fps",
                "vtest.tex_upload_mbps"
            ]
        );
        assert_eq!(figures[1].value, 30.25);
        assert_eq!(figures[2].unit, "MB/s");
        let missing = output.replace("FIGURE draw_fps", "draw_fps");
        assert!(prefixed("mesa", &missing).unwrap_err().contains("draw_fps"));
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("", 2), "(empty)");
    }
}
