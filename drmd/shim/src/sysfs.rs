//! The device files and sysfs entries Mesa's loader and libdrm look at, for
//! a virtio-gpu device that Linux does not have here.
//!
//! libdrm's `drmGetDevice2` (which EGL needs) checks that the node is a
//! character device, reads `/sys/dev/char/226:N/device/subsystem`
//! ("virtio"), follows `device` to its PCI parent and reads its uevent and
//! ids; `drmGetDevices2` lists `/dev/dri`. Those paths are redirected into
//! a tree made once per bus directory, shaped as Linux's for a virtio-gpu
//! PCI function, and the node entries in it are reported as character
//! devices 226:0 and 226:128.

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The directory whose `card0` and `renderD128` are the DRM nodes
/// (`DRM_SHIM_DIR`, default `/dev/dri`).
pub fn dri_dir() -> &'static str {
    static DIR: OnceLock<String> = OnceLock::new();
    DIR.get_or_init(|| std::env::var("DRM_SHIM_DIR").unwrap_or_else(|_| "/dev/dri".into()))
}

/// The nodes: (file name, minor, mode).
pub const NODES: [(&str, u32, u32); 2] = [("card0", 0, 0o660), ("renderD128", 128, 0o666)];

/// The DRM major number.
pub const DRM_MAJOR: u32 = 226;

/// The node a path names (the node path itself, or its entry in the fake
/// tree, which `realpath` leads to), as (scheme path, minor).
pub fn node(path: &str) -> Option<(String, u32)> {
    let path = Path::new(path);
    let (minor, _) = node_entry(path)?;
    let name = path.file_name()?.to_str()?;
    Some((format!("/scheme/drm/{name}"), minor))
}

/// Where the fake tree is.
fn root_path() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| scheme_seam::linux::scheme_dir().join("drm-sysfs"))
}

/// The fake tree, made on first use. (Making it opens files, which come
/// back through the shim's `open`: nothing on that path may wait for this.)
fn root() -> Option<&'static Path> {
    static MADE: OnceLock<bool> = OnceLock::new();
    let made = *MADE.get_or_init(|| {
        let root = root_path();
        if root.exists() {
            return true;
        }
        build(root)
            .map_err(|e| eprintln!("drm-shim: cannot make {}: {e}", root.display()))
            .is_ok()
    });
    made.then(root_path)
}

/// The PCI function the device sits on, as QEMU places virtio-gpu-pci.
const PCI_SLOT: &str = "0000:00:02.0";

/// Makes the tree in a staging directory and renames it into place, so
/// processes starting together see it whole or not at all.
fn build(root: &Path) -> std::io::Result<()> {
    use std::fs;
    use std::os::unix::fs::symlink;
    let staging = root.with_extension(format!("tmp{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    let pci = staging.join("sys/devices/pci0000:00").join(PCI_SLOT);
    let virtio = pci.join("virtio0");
    fs::create_dir_all(staging.join("sys/bus/pci"))?;
    fs::create_dir_all(staging.join("sys/bus/virtio"))?;
    fs::create_dir_all(staging.join("sys/dev/char"))?;
    fs::create_dir_all(staging.join("sys/class/drm"))?;
    fs::create_dir_all(staging.join("dev/dri"))?;
    fs::create_dir_all(&virtio)?;
    // The PCI function: virtio-gpu-pci (modern device id 0x1050).
    for (file, text) in [
        ("vendor", "0x1af4"),
        ("device", "0x1050"),
        ("subsystem_vendor", "0x1af4"),
        ("subsystem_device", "0x1100"),
        ("revision", "0x01"),
        ("class", "0x030000"),
    ] {
        fs::write(pci.join(file), format!("{text}\n"))?;
    }
    fs::write(
        pci.join("uevent"),
        format!(
            "DRIVER=virtio-pci\nPCI_CLASS=30000\nPCI_ID=1AF4:1050\n\
             PCI_SUBSYS_ID=1AF4:1100\nPCI_SLOT_NAME={PCI_SLOT}\n"
        ),
    )?;
    symlink("../../../bus/pci", pci.join("subsystem"))?;
    // The virtio device: id 16 (GPU).
    fs::write(virtio.join("vendor"), "0x1af4\n")?;
    fs::write(virtio.join("device"), "0x0010\n")?;
    fs::write(
        virtio.join("uevent"),
        "DRIVER=virtio_gpu\nMODALIAS=virtio:d00000010v00001AF4\n",
    )?;
    symlink("../../../../bus/virtio", virtio.join("subsystem"))?;
    for (name, minor, _) in NODES {
        let dir = virtio.join("drm").join(name);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join("dev"), format!("{DRM_MAJOR}:{minor}\n"))?;
        fs::write(
            dir.join("uevent"),
            format!("MAJOR={DRM_MAJOR}\nMINOR={minor}\nDEVNAME=dri/{name}\n"),
        )?;
        symlink("../../../virtio0", dir.join("device"))?;
        let target = format!("../../devices/pci0000:00/{PCI_SLOT}/virtio0/drm/{name}");
        let char_dev = staging
            .join("sys/dev/char")
            .join(format!("{DRM_MAJOR}:{minor}"));
        symlink(&target, char_dev)?;
        symlink(&target, staging.join("sys/class/drm").join(name))?;
        fs::write(staging.join("dev/dri").join(name), "")?;
    }
    match fs::rename(&staging, root) {
        Ok(()) => Ok(()),
        // Another process made it first.
        Err(_) if root.exists() => fs::remove_dir_all(&staging),
        Err(e) => Err(e),
    }
}

/// The fake-tree path standing for `path`, if `path` is one the shim
/// answers for.
pub fn redirect(path: &str) -> Option<PathBuf> {
    let rest = if let Some(rest) = path.strip_prefix(dri_dir()) {
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        format!("dev/dri{rest}")
    } else if path.starts_with("/sys/dev/char/226:") || path.starts_with("/sys/class/drm") {
        path[1..].to_string()
    } else {
        return None;
    };
    Some(root()?.join(rest))
}

/// [`redirect`] for a C path; None when not redirected (or not UTF-8).
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
pub unsafe fn redirect_c(path: *const libc::c_char) -> Option<CString> {
    if path.is_null() {
        return None;
    }
    // SAFETY: the caller's guarantee.
    let s = unsafe { CStr::from_ptr(path) }.to_str().ok()?;
    let to = redirect(s)?;
    CString::new(to.into_os_string().into_encoded_bytes()).ok()
}

/// If `path` (already redirected or not) is a node entry of the fake tree
/// or the node path itself, its (minor, mode).
pub fn node_entry(path: &Path) -> Option<(u32, u32)> {
    let name = path.file_name()?.to_str()?;
    let parent = path.parent()?;
    let in_tree = parent == root_path().join("dev/dri");
    if !(in_tree || parent == Path::new(dri_dir())) {
        return None;
    }
    NODES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, minor, mode)| (*minor, *mode))
}

/// Makes `st` describe DRM node `minor` with permissions `mode`.
pub fn as_char_device(st: &mut libc::stat64, minor: u32, mode: u32) {
    st.st_mode = libc::S_IFCHR | mode;
    st.st_rdev = libc::makedev(DRM_MAJOR, minor);
    st.st_size = 0;
}
