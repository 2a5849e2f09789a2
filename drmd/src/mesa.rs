//! How to run an unmodified Mesa program on the stack (Linux): the
//! environment that preloads the shim (`libdrm_shim.so`, crate
//! `drmd/shim`) and makes Mesa pick its virgl driver, with no way to fall
//! back to another one silently.

use std::ffi::OsString;
use std::io;
use std::path::Path;

/// Debian's Mesa virgl driver.
pub const VIRGL_DRIVER: &str = "/usr/lib/x86_64-linux-gnu/dri/virtio_gpu_dri.so";

/// The variables to set for a Mesa program: `shim` is `libdrm_shim.so`;
/// `drivers` becomes a folder holding only the virgl driver, so that when
/// anything in the virtio_gpu path fails, Mesa fails instead of falling
/// back to llvmpipe. The bus directory (`SCHEME_DIR`) is inherited.
pub fn environment(shim: &Path, drivers: &Path) -> io::Result<Vec<(&'static str, OsString)>> {
    if !shim.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} is not built (package drm-shim)", shim.display()),
        ));
    }
    if !Path::new(VIRGL_DRIVER).is_file() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{VIRGL_DRIVER} is missing (package libgl1-mesa-dri)"),
        ));
    }
    std::fs::create_dir_all(drivers)?;
    let link = drivers.join("virtio_gpu_dri.so");
    if !link.exists() {
        std::os::unix::fs::symlink(VIRGL_DRIVER, &link)?;
    }
    Ok(vec![
        ("LD_PRELOAD", shim.into()),
        ("MESA_LOADER_DRIVER_OVERRIDE", "virtio_gpu".into()),
        ("LIBGL_DRIVERS_PATH", drivers.into()),
        ("GBM_DRIVERS_PATH", drivers.into()),
    ])
}
