//! drmd: serves `scheme:drm` until SIGTERM, on the device virtio-gpud owns.

mod backend;
mod device;
mod errno;
mod file;
mod gem;
mod handle;
mod ioctl;
mod master;
mod node;
mod ring;
mod scheme;
mod stats;

use std::process::ExitCode;

use log::error;
use scheme_seam::daemon::Termination;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let result = Termination::install().and_then(|termination| {
        let device = device::Device::open()?;
        scheme_seam::serve("drm", &mut scheme::DrmScheme::new(device), &termination)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}
