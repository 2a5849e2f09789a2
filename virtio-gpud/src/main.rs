//! virtio-gpud: brings up the virtio-gpu device and serves
//! `scheme:virtio-gpu` until SIGTERM.

use std::error::Error;
use std::process::ExitCode;

use log::error;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Linux: the device is QEMU's vhost-user-gpu backend, started here.
#[cfg(target_os = "linux")]
fn run() -> Result<(), Box<dyn Error>> {
    use scheme_seam::daemon::Termination;
    use virtio_gpud::scheme::GpuScheme;
    use virtio_gpud::transport::vhost_user::{launch, LaunchOptions};

    let termination = Termination::install()?;
    let (gpu, _backend) = launch(&LaunchOptions::new(true)?)?;
    scheme_seam::serve("virtio-gpu", &mut GpuScheme::new(gpu), &termination)?;
    Ok(())
}

/// Redox: the device is the PCI function pcid hands over.
#[cfg(target_os = "redox")]
fn run() -> Result<(), Box<dyn Error>> {
    Err("the Redox PCI transport (pcid, BAR mapping, MSI-X) is not implemented yet".into())
}
