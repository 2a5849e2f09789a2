//! syncd: serves `scheme:sync` until SIGTERM.

use std::process::ExitCode;

use log::error;
use scheme_seam::daemon::Termination;
use syncd::scheme::SyncScheme;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let result = Termination::install().and_then(|termination| {
        scheme_seam::serve(
            sync_client::api::SCHEME,
            &mut SyncScheme::new()?,
            &termination,
        )
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}
