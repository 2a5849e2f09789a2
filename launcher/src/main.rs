//! gpu-launcher: starts the stack as init does — virtio-gpud, then syncd,
//! then drmd, each once the one before is ready — and stays as drmd's
//! supervisor: it keeps drmd's file-descriptor store, so drmd's socket and
//! its clients' connections outlive it, and starts a new drmd when one
//! exits. It is ready (its own `INIT_NOTIFY` byte) once all three are.
//!
//! Usage: `gpu-launcher [--status FILE] [VIRTIO-GPUD ARGS...]`. The
//! daemons are the binaries next to this one. With `--status`, FILE says
//! `drmd_pid`, `restarts` and `last_restart_ms`, rewritten at each
//! change. SIGTERM stops drmd, syncd and virtio-gpud, in that order.

mod supervise;

use std::process::ExitCode;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let status = match args.iter().position(|a| a == "--status") {
        Some(i) if i + 1 < args.len() => {
            let file = args.remove(i + 1);
            args.remove(i);
            Some(std::path::PathBuf::from(file))
        }
        Some(_) => {
            eprintln!("usage: gpu-launcher [--status FILE] [VIRTIO-GPUD ARGS...]");
            return ExitCode::FAILURE;
        }
        None => None,
    };
    match supervise::run(&args, status.as_deref()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
