//! virtio-gpud: brings up the virtio-gpu device and serves
//! `scheme:virtio-gpu` until SIGTERM.

use std::error::Error;
use std::process::ExitCode;

use log::error;

#[cfg(target_os = "linux")]
use virtio_gpud::scheme::GpuScheme;

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

/// Linux: the device is QEMU's vhost-user-gpu backend, started here, or
/// with `--pci ADDR` a PCI function bound to vfio-pci.
#[cfg(target_os = "linux")]
fn run() -> Result<(), Box<dyn Error>> {
    use scheme_seam::daemon::Termination;
    use virtio_gpud::transport::pci::{self, vfio::VfioPlatform};
    use virtio_gpud::transport::vhost_user::{launch, LaunchOptions};

    let termination = Termination::install()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `--2d`: the backend without virgl, a 2D display device (the display
    // tests' and the KMS demo's: the virgl backend needs a GPU to scan out).
    let virgl = !args.iter().any(|a| a == "--2d");
    let mut gpu = virtio_gpud::GpuOptions::default();
    // `--pci DDDD:BB:DD.F`: drive that PCI function (bound to vfio-pci)
    // instead of starting a backend; its display is the device's own.
    // `--device-timeout-ms N`: how long a command may go unanswered before
    // the device counts as stuck (default 10 s). `--fence-wrap N`: the
    // largest fence id the device sees before ids start again (default
    // i32::MAX; small values let tests wrap).
    // `--uid-sessions N`, `--uid-memory BYTES`: each user's quota of
    // sessions (EMFILE beyond) and memory (ENOMEM beyond).
    // `--display WxH`, once per scanout: the display's scanouts and their
    // preferred sizes (default: one of 1024x768).
    let usage = "usage: virtio-gpud [--pci ADDR | [--2d] [--display WxH]...] \
                 [--device-timeout-ms N] [--fence-wrap N] [--uid-sessions N] [--uid-memory BYTES]";
    let mut displays = Vec::new();
    let mut pci_address = None;
    let mut quota = virtio_gpud::memory::Quota::default();
    let valued: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--2d")
        .collect();
    for pair in valued.chunks(2) {
        match pair {
            [flag, ms] if *flag == "--device-timeout-ms" => {
                gpu.timeout = std::time::Duration::from_millis(ms.parse()?);
            }
            [flag, n] if *flag == "--fence-wrap" => gpu.fence_wrap = n.parse()?,
            [flag, n] if *flag == "--uid-sessions" => quota.sessions = n.parse()?,
            [flag, n] if *flag == "--uid-memory" => quota.bytes = n.parse()?,
            [flag, size] if *flag == "--display" => {
                let (w, h) = size.split_once('x').ok_or(usage)?;
                displays.push((w.parse()?, h.parse()?));
            }
            [flag, address] if *flag == "--pci" => pci_address = Some(*address),
            _ => return Err(usage.into()),
        }
    }
    if let Some(address) = pci_address {
        if !virgl || !displays.is_empty() {
            return Err(usage.into());
        }
        let gpu = pci::launch(VfioPlatform::open(address)?, &gpu)?;
        let mut scheme = GpuScheme::new(gpu, quota);
        scheme_seam::serve("virtio-gpu", &mut scheme, &termination)?;
        return Ok(());
    }
    let mut opts = LaunchOptions::new(virgl)?;
    opts.gpu = gpu;
    if !displays.is_empty() {
        opts.displays = displays;
    }
    let (gpu, _backend) = launch(&opts)?;
    let mut scheme = GpuScheme::new(gpu, quota);
    scheme_seam::serve("virtio-gpu", &mut scheme, &termination)?;
    Ok(())
}

/// Redox: the device is the PCI function pcid hands over. pcid-spawner
/// waits on `INIT_NOTIFY` until the scheme serves (`serve` notifies once it
/// is registered); failing before then closes the pipe, and the spawner
/// goes on to the next function.
#[cfg(target_os = "redox")]
fn run() -> Result<(), Box<dyn Error>> {
    use scheme_seam::daemon::Termination;
    use virtio_gpud::memory::Quota;
    use virtio_gpud::scheme::GpuScheme;
    use virtio_gpud::transport::pci::{launch, redox::RedoxPci};
    use virtio_gpud::GpuOptions;

    let termination = Termination::install()?;
    let platform = RedoxPci::from_env()?;
    let gpu = launch(platform, &GpuOptions::default())?;
    let mut scheme = GpuScheme::new(gpu, Quota::default());
    scheme_seam::serve("virtio-gpu", &mut scheme, &termination)?;
    Ok(())
}
