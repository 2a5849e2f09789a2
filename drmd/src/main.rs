//! drmd: serves `scheme:drm` until SIGTERM, on the device virtio-gpud owns.

use std::process::ExitCode;

use drmd::device::Device;
use drmd::scheme::DrmScheme;
use log::error;
use scheme_seam::daemon::Termination;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let result = Termination::install().and_then(|termination| {
        let device = Device::open()?;
        scheme_seam::serve("drm", &mut DrmScheme::new(device), &termination)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}
