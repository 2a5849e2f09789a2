//! What the PCI test (`tests/tests/pci.rs`) needs: QEMU 10 from
//! bookworm-backports (the version its `virtio-gpu-gl-pci` command line was
//! checked with), and Debian's kernel and busybox-static unpacked into
//! `target/pci-guest/` for the guest's initramfs.

use std::path::Path;
use std::process::Command;

use crate::{is_root, run, Result};

/// The suite QEMU 10 comes from.
const BACKPORTS: &str = "bookworm-backports";
/// Where setup puts its sources entry when no source names [`BACKPORTS`].
const BACKPORTS_LIST: &str = "/etc/apt/sources.list.d/bookworm-backports.list";
const BACKPORTS_ENTRY: &str = "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] \
                               http://deb.debian.org/debian bookworm-backports main\n";
/// The emulator, and the module that gives it `egl-headless` (the GL
/// device refuses to run without a GL display).
const QEMU_PACKAGES: &[&str] = &["qemu-system-x86", "qemu-system-modules-opengl"];
/// The backend's GL library; QEMU 10 must not move it off bookworm's
/// 0.10.4, which the vhost-user-gpu setup is built and tested against.
const VIRGLRENDERER: &str = "libvirglrenderer1";
/// The metapackage naming bookworm's current kernel ABI.
const KERNEL_META: &str = "linux-image-amd64";
const BUSYBOX: &str = "busybox-static";
/// Written last into `target/pci-guest/`: the unpacked packages, one per
/// line; while it exists setup downloads nothing.
const MARKER: &str = "unpacked";

/// Installs QEMU 10 (root only; otherwise names the commands) and unpacks
/// the guest's kernel and busybox into `target/pci-guest/` under
/// `workspace`.
pub fn install_pci_guest(workspace: &Path) -> Result {
    let root = is_root();
    let mut updated = false;
    match qemu_version() {
        Some(version) if qemu_ready(&version) => println!("setup: {version} ready"),
        found if !root => println!(
            "setup: the PCI test needs QEMU 10 with its OpenGL module ({}); as root: add \
             `{}` to {BACKPORTS_LIST}, apt-get update, apt-get install --no-install-recommends \
             -t {BACKPORTS} {}",
            found.as_deref().unwrap_or("none installed"),
            BACKPORTS_ENTRY.trim(),
            QEMU_PACKAGES.join(" ")
        ),
        _ => {
            add_backports()?;
            run("apt-get", &["update", "-q"])?;
            updated = true;
            install_qemu()?;
        }
    }
    let dir = workspace.join("target/pci-guest");
    if dir.join(MARKER).is_file() {
        println!("setup: guest kernel and busybox ready in {}", dir.display());
        return Ok(());
    }
    if root && !updated {
        run("apt-get", &["update", "-q"])?;
    }
    unpack_guest(&dir)
}

/// `qemu-system-x86_64 --version`'s first line, if it runs.
fn qemu_version() -> Option<String> {
    let out = Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    out.status
        .success()
        .then(|| text.lines().next().unwrap_or_default().to_string())
}

/// Whether `version` is QEMU 10 and the OpenGL module is installed too.
fn qemu_ready(version: &str) -> bool {
    version
        .strip_prefix("QEMU emulator version ")
        .is_some_and(|v| v.starts_with("10."))
        && package_version("qemu-system-modules-opengl").is_some()
}

/// The installed version of `package`.
fn package_version(package: &str) -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Status} ${Version}", package])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.strip_prefix("install ok installed ")
        .map(str::to_string)
}

/// Adds [`BACKPORTS_ENTRY`] unless some configured source already has the
/// suite.
fn add_backports() -> Result {
    let mut files = vec![std::path::PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        // apt reads only these two kinds; others (`.disabled`, backups) are off.
        files.extend(
            dir.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "list" || x == "sources")),
        );
    }
    let configured = files
        .iter()
        .any(|file| std::fs::read_to_string(file).is_ok_and(|text| names_suite(&text, BACKPORTS)));
    if configured {
        return Ok(());
    }
    std::fs::write(BACKPORTS_LIST, BACKPORTS_ENTRY)
        .map_err(|e| format!("writing {BACKPORTS_LIST}: {e}"))?;
    println!("setup: added {BACKPORTS} to apt's sources ({BACKPORTS_LIST})");
    Ok(())
}

/// Whether an apt sources file (one-line `deb URI SUITE...` or deb822
/// `Suites:`) names `suite` in a line that is not commented out.
fn names_suite(text: &str, suite: &str) -> bool {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .any(|line| {
            let words = if let Some(rest) = line.strip_prefix("Suites:") {
                rest
            } else if line.starts_with("deb ") {
                // `deb [options] URI suite components`: options may hold spaces.
                line.rsplit(']').next().unwrap_or(line)
            } else {
                return false;
            };
            words.split_whitespace().any(|w| w == suite)
        })
}

/// Installs [`QEMU_PACKAGES`] from backports, checking that the backend's
/// virglrenderer stays where it was.
fn install_qemu() -> Result {
    let before = package_version(VIRGLRENDERER);
    let mut install = vec![
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        "-t",
        BACKPORTS,
    ];
    install.extend_from_slice(QEMU_PACKAGES);
    run("apt-get", &install)?;
    let after = package_version(VIRGLRENDERER);
    if before != after {
        return Err(format!(
            "installing QEMU from {BACKPORTS} moved {VIRGLRENDERER} from {} to {}; the \
             vhost-user-gpu backend is tested against bookworm's (apt-get install \
             {VIRGLRENDERER}/bookworm restores it)",
            before.as_deref().unwrap_or("none"),
            after.as_deref().unwrap_or("none")
        ));
    }
    let version = qemu_version().unwrap_or_default();
    if !qemu_ready(&version) {
        return Err(format!(
            "after installing {} from {BACKPORTS}, qemu-system-x86_64 says `{version}`, not 10.x",
            QEMU_PACKAGES.join(" ")
        ));
    }
    println!("setup: installed {version}");
    Ok(())
}

/// The versioned kernel package [`KERNEL_META`] depends on now
/// (`linux-image-6.1.0-N-amd64`).
fn kernel_package() -> Result<String> {
    let out = Command::new("apt-cache")
        .args(["depends", KERNEL_META])
        .output()
        .map_err(|e| format!("running apt-cache: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-6.1.0-") && p.ends_with("-amd64"))
        .map(str::to_string)
        .ok_or_else(|| {
            format!(
                "apt-cache depends {KERNEL_META} names no linux-image-6.1.0-*-amd64 (is apt's \
                 bookworm list there? apt-get update)"
            )
        })
}

/// Downloads the kernel and busybox packages and unpacks them into
/// `dir/kernel` and `dir/busybox`; the marker goes last, so an interrupted
/// run starts over.
fn unpack_guest(dir: &Path) -> Result {
    let kernel = kernel_package()?;
    let _ = std::fs::remove_dir_all(dir);
    let debs = dir.join("debs");
    std::fs::create_dir_all(&debs).map_err(|e| format!("creating {}: {e}", debs.display()))?;
    let mut marker = String::new();
    for (package, into) in [(kernel.as_str(), "kernel"), (BUSYBOX, "busybox")] {
        println!("+ apt-get download -q {package}");
        let status = Command::new("apt-get")
            .args(["download", "-q", package])
            .current_dir(&debs)
            .status()
            .map_err(|e| format!("running apt-get download: {e}"))?;
        if !status.success() {
            return Err(format!("apt-get download {package} failed: {status}"));
        }
        let deb = std::fs::read_dir(&debs)
            .map_err(|e| format!("reading {}: {e}", debs.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{package}_")) && n.ends_with(".deb"))
            })
            .ok_or_else(|| format!("apt-get download {package} left no .deb"))?;
        let target = dir.join(into);
        run(
            "dpkg",
            &["-x", &deb.to_string_lossy(), &target.to_string_lossy()],
        )?;
        marker.push_str(&deb.file_name().unwrap_or_default().to_string_lossy());
        marker.push('\n');
        // The unpacked tree is what the tests read; the .deb is only bulk.
        std::fs::remove_file(&deb).map_err(|e| format!("removing {}: {e}", deb.display()))?;
    }
    let _ = std::fs::remove_dir(&debs);
    std::fs::write(dir.join(MARKER), marker)
        .map_err(|e| format!("writing {}: {e}", dir.join(MARKER).display()))?;
    println!(
        "setup: unpacked {kernel} and {BUSYBOX} into {}",
        dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::names_suite;

    #[test]
    fn finds_the_suite_in_both_formats() {
        let deb822 = "Types: deb\nURIs: http://deb.debian.org/debian\n\
                      Suites: bookworm bookworm-updates\nComponents: main\n";
        assert!(!names_suite(deb822, "bookworm-backports"));
        assert!(names_suite(
            &deb822.replace("updates", "backports"),
            "bookworm-backports"
        ));
        assert!(names_suite(
            "deb [signed-by=/k.gpg arch=amd64] http://deb.debian.org/debian bookworm-backports main",
            "bookworm-backports"
        ));
        assert!(!names_suite(
            "# deb http://deb.debian.org/debian bookworm-backports main",
            "bookworm-backports"
        ));
    }
}
