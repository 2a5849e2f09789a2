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
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `--2d`: the backend without virgl, a 2D display device (the display
    // tests' and the KMS demo's: the virgl backend needs a GPU to scan out).
    let virgl = !args.iter().any(|a| a == "--2d");
    let mut opts = LaunchOptions::new(virgl)?;
    // `--device-timeout-ms N`: how long a command may go unanswered before
    // the device counts as stuck (default 10 s). `--fence-wrap N`: the
    // largest fence id the device sees before ids start again (default
    // i32::MAX; small values let tests wrap).
    // `--uid-sessions N`, `--uid-memory BYTES`: each user's quota of
    // sessions (EMFILE beyond) and memory (ENOMEM beyond).
    // `--display WxH`, once per scanout: the display's scanouts and their
    // preferred sizes (default: one of 1024x768).
    let usage = "usage: virtio-gpud [--2d] [--device-timeout-ms N] [--fence-wrap N] \
                 [--uid-sessions N] [--uid-memory BYTES] [--display WxH]...";
    let mut displays = Vec::new();
    let mut quota = virtio_gpud::memory::Quota::default();
    let valued: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--2d")
        .collect();
    for pair in valued.chunks(2) {
        match pair {
            [flag, ms] if *flag == "--device-timeout-ms" => {
                opts.gpu.timeout = std::time::Duration::from_millis(ms.parse()?);
            }
            [flag, n] if *flag == "--fence-wrap" => opts.gpu.fence_wrap = n.parse()?,
            [flag, n] if *flag == "--uid-sessions" => quota.sessions = n.parse()?,
            [flag, n] if *flag == "--uid-memory" => quota.bytes = n.parse()?,
            [flag, size] if *flag == "--display" => {
                let (w, h) = size.split_once('x').ok_or(usage)?;
                displays.push((w.parse()?, h.parse()?));
            }
            _ => return Err(usage.into()),
        }
    }
    if !displays.is_empty() {
        opts.displays = displays;
    }
    let (gpu, _backend) = launch(&opts)?;
    let mut scheme = GpuScheme::new(gpu, quota);
    scheme_seam::serve("virtio-gpu", &mut scheme, &termination)?;
    Ok(())
}

/// Redox: the device is the PCI function pcid hands over.
#[cfg(target_os = "redox")]
fn run() -> Result<(), Box<dyn Error>> {
    Err("the Redox PCI transport (pcid, BAR mapping, MSI-X) is not implemented yet".into())
}
