//! A Linux guest under QEMU (TCG) with QEMU's real `virtio-gpu-gl-pci`
//! device behind an emulated IOMMU: the guest image (an initramfs built
//! here), the QEMU process, its serial console, QMP and the scanout over
//! VNC. The kernel, its modules and busybox come from Debian's packages,
//! which `cargo xtask setup` unpacks into `target/pci-guest/`.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::rfb::Vnc;

/// What to say when something setup provides is missing.
const RUN_SETUP: &str = "run `cargo xtask setup`";
/// The emulator; setup installs 10.x from bookworm-backports.
const QEMU: &str = "qemu-system-x86_64";
/// Guest memory in MiB. 1024 boots as fast as 2048 under TCG and leaves
/// the 2-core CI machine more room.
const MEMORY_MIB: &str = "1024";

/// The unpacked Debian packages in `target/pci-guest/`.
struct GuestFiles {
    /// `vmlinuz-<version>`.
    kernel: PathBuf,
    /// `lib/modules/<version>`.
    modules: PathBuf,
    version: String,
    busybox: PathBuf,
}

impl GuestFiles {
    fn find() -> Result<GuestFiles, String> {
        let dir = crate::target_dir().join("pci-guest");
        if !dir.join("unpacked").is_file() {
            return Err(format!(
                "the guest kernel and busybox are not in {}: {RUN_SETUP}",
                dir.display()
            ));
        }
        let boot = dir.join("kernel/boot");
        let kernel = std::fs::read_dir(&boot)
            .map_err(|e| format!("reading {}: {e} ({RUN_SETUP})", boot.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("vmlinuz-"))
            })
            .ok_or_else(|| format!("no vmlinuz-* in {} ({RUN_SETUP})", boot.display()))?;
        let version = kernel
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("vmlinuz-"))
            .expect("matched above")
            .to_string();
        let modules = dir.join("kernel/lib/modules").join(&version);
        let busybox = dir.join("busybox/bin/busybox");
        for needed in [&modules, &busybox] {
            if !needed.exists() {
                return Err(format!("{} is missing: {RUN_SETUP}", needed.display()));
            }
        }
        Ok(GuestFiles {
            kernel,
            modules,
            version,
            busybox,
        })
    }
}

/// One initramfs entry.
enum Entry {
    Dir,
    File { data: Vec<u8>, mode: u32 },
    Symlink(String),
}

/// The guest's root file system, written as an uncompressed newc cpio
/// archive (the kernel unpacks it into its rootfs): busybox with every
/// applet linked, the mount points, and what the caller adds.
pub struct Image {
    files: GuestFiles,
    /// By guest path without the leading `/`: sorted, so every directory
    /// comes before what is in it, as the kernel's unpacker needs.
    entries: BTreeMap<String, Entry>,
    /// Guest paths of the added kernel modules, each after its
    /// dependencies.
    modules: Vec<String>,
}

impl Image {
    /// An image with busybox (`/bin/sh` and every other applet) and empty
    /// `/proc`, `/sys`, `/dev`, `/tmp`, `/run`; fails, saying to run setup,
    /// when the guest files are not unpacked.
    pub fn new() -> Result<Image, String> {
        let files = GuestFiles::find()?;
        let mut image = Image {
            files,
            entries: BTreeMap::new(),
            modules: Vec::new(),
        };
        let busybox = image.files.busybox.clone();
        image.file(&busybox, "/bin/busybox", 0o755)?;
        let list = Command::new(&busybox)
            .arg("--list-full")
            .output()
            .map_err(|e| format!("running {}: {e}", busybox.display()))?;
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            if applet != "bin/busybox" {
                image.insert(applet, Entry::Symlink("/bin/busybox".into()));
            }
        }
        for dir in ["proc", "sys", "dev", "tmp", "run"] {
            image.insert(dir, Entry::Dir);
        }
        Ok(image)
    }

    /// The guest kernel's version (`6.1.0-N-amd64`).
    pub fn kernel_version(&self) -> &str {
        &self.files.version
    }

    /// Sets `/init`, the script the kernel runs as process 1 (`#!/bin/sh`
    /// first; busybox's shell). When it exits the kernel panics, and with
    /// `panic=-1` and `-no-reboot` QEMU exits.
    pub fn init(&mut self, script: &str) -> &mut Image {
        let data = script.as_bytes().to_vec();
        self.insert("init", Entry::File { data, mode: 0o755 });
        self
    }

    /// Copies the host file `host` to `guest` with permission bits `mode`.
    pub fn file(&mut self, host: &Path, guest: &str, mode: u32) -> Result<&mut Image, String> {
        let data = std::fs::read(host).map_err(|e| format!("reading {}: {e}", host.display()))?;
        self.insert(guest, Entry::File { data, mode });
        Ok(self)
    }

    /// Copies the executable `host` to `guest`, with every shared library
    /// `ldd` resolves for it (and the dynamic loader) at the same paths as
    /// on the host.
    pub fn binary(&mut self, host: &Path, guest: &str) -> Result<&mut Image, String> {
        self.file(host, guest, 0o755)?;
        for library in shared_libraries(host)? {
            self.file(&library, &library.to_string_lossy(), 0o755)?;
        }
        Ok(self)
    }

    /// Adds the kernel modules `names` (as `modprobe` spells them, `-` or
    /// `_`) and what they depend on, uncompressed, under
    /// `/lib/modules/<version>/`; [`Image::module_paths`] lists them in load
    /// order. Soft dependencies are not followed: name those too.
    pub fn modules(&mut self, names: &[&str]) -> Result<&mut Image, String> {
        let index = module_index(&self.files.modules)?;
        for name in names {
            self.add_module(&index, &module_name(name), &mut Vec::new())?;
        }
        Ok(self)
    }

    /// Adds module `name` after its dependencies (depth first); `chain` is
    /// the path here, to report a cycle rather than recurse forever.
    fn add_module(
        &mut self,
        index: &HashMap<String, PathBuf>,
        name: &str,
        chain: &mut Vec<String>,
    ) -> Result<(), String> {
        if self.modules.iter().any(|m| module_file_name(m) == name) {
            return Ok(());
        }
        if chain.iter().any(|c| c == name) {
            return Err(format!(
                "module dependency cycle: {} -> {name}",
                chain.join(" -> ")
            ));
        }
        let relative = index.get(name).ok_or_else(|| {
            format!(
                "no module {name} in {} (built into the kernel, or misspelt?)",
                self.files.modules.display()
            )
        })?;
        let data = read_module(&self.files.modules.join(relative))?;
        chain.push(name.to_string());
        for dep in modinfo(&data, "depends")
            .map_err(|e| format!("{}: {e}", relative.display()))?
            .iter()
            .flat_map(|d| d.split(','))
            .filter(|d| !d.is_empty())
        {
            self.add_module(index, &module_name(dep), chain)?;
        }
        chain.pop();
        let relative = relative.to_string_lossy();
        let guest = format!(
            "/lib/modules/{}/{}.ko",
            self.files.version,
            relative
                .strip_suffix(".ko.xz")
                .or_else(|| relative.strip_suffix(".ko"))
                .unwrap_or(&relative)
        );
        self.insert(&guest, Entry::File { data, mode: 0o644 });
        self.modules.push(guest);
        Ok(())
    }

    /// Guest paths of the modules [`Image::modules`] added, each after
    /// its dependencies: `insmod` them in this order.
    pub fn module_paths(&self) -> &[String] {
        &self.modules
    }

    /// Adds `entry` at `path` (leading `/` optional), with its parent
    /// directories; a later entry at the same path replaces the earlier.
    fn insert(&mut self, path: &str, entry: Entry) {
        let path = path.trim_start_matches('/');
        let mut parent = Path::new(path).parent();
        while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
            self.entries
                .entry(dir.to_string_lossy().into_owned())
                .or_insert(Entry::Dir);
            parent = dir.parent();
        }
        self.entries.insert(path.to_string(), entry);
    }

    /// The archive, in the kernel's `newc` cpio format.
    fn cpio(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut ino = 0;
        let mut record = |name: &str, mode: u32, data: &[u8]| {
            ino += 1;
            let nlink = if mode & 0o170000 == 0o040000 { 2 } else { 1 };
            let fields = [ino, mode, 0, 0, nlink, 0, data.len() as u32, 0, 0, 0, 0];
            out.extend_from_slice(b"070701");
            for field in fields {
                out.extend_from_slice(format!("{field:08x}").as_bytes());
            }
            out.extend_from_slice(format!("{:08x}{:08x}", name.len() + 1, 0).as_bytes());
            out.extend_from_slice(name.as_bytes());
            out.push(0);
            out.resize(out.len().next_multiple_of(4), 0);
            out.extend_from_slice(data);
            out.resize(out.len().next_multiple_of(4), 0);
        };
        for (path, entry) in &self.entries {
            match entry {
                Entry::Dir => record(path, 0o040755, &[]),
                Entry::File { data, mode } => record(path, 0o100000 | mode, data),
                Entry::Symlink(target) => record(path, 0o120777, target.as_bytes()),
            }
        }
        record("TRAILER!!!", 0, &[]);
        out
    }
}

/// Shared libraries `binary` loads, the dynamic loader included; none for
/// a static one.
fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, String> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| format!("running ldd: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return if stdout.contains("not a dynamic executable") {
            Ok(Vec::new())
        } else {
            Err(format!(
                "ldd {}: {}{stdout}",
                binary.display(),
                String::from_utf8_lossy(&out.stderr)
            ))
        };
    }
    let mut libraries = Vec::new();
    for line in stdout.lines().map(str::trim) {
        if line.contains("not found") {
            return Err(format!("{}: {line}", binary.display()));
        }
        // `libc.so.6 => /lib/.../libc.so.6 (0x...)` or `/lib64/ld-... (0x...)`;
        // the vDSO has no file.
        let path = line.split_once(" => ").map_or(line, |(_, p)| p);
        let path = path.split(" (").next().unwrap_or_default();
        if path.starts_with('/') {
            libraries.push(PathBuf::from(path));
        }
    }
    Ok(libraries)
}

/// How the kernel names a module: `-` and `_` are the same to it.
fn module_name(name: &str) -> String {
    name.replace('-', "_")
}

/// The module name of a module file path.
fn module_file_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file
        .strip_suffix(".ko.xz")
        .or_else(|| file.strip_suffix(".ko"))
        .unwrap_or(file);
    module_name(stem)
}

/// Every module under `modules/kernel`, by name, as a path relative to
/// `modules`. Debian's package has no `modules.dep` (its postinst runs
/// depmod), so the dependencies come from each module's own `.modinfo`.
fn module_index(modules: &Path) -> Result<HashMap<String, PathBuf>, String> {
    let mut index = HashMap::new();
    let mut dirs = vec![modules.join("kernel")];
    while let Some(dir) = dirs.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let relative = path.strip_prefix(modules).expect("under modules");
            let name = module_file_name(&relative.to_string_lossy());
            index.insert(name, relative.to_path_buf());
        }
    }
    Ok(index)
}

/// A module file's ELF image; `.ko.xz` ones decompressed, since busybox's
/// `insmod` loads only plain ELF.
fn read_module(path: &Path) -> Result<Vec<u8>, String> {
    if path.extension().is_some_and(|x| x == "xz") {
        let out = Command::new("xz")
            .arg("-dc")
            .arg(path)
            .output()
            .map_err(|e| format!("running xz: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "xz -dc {}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(out.stdout)
    } else {
        std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
    }
}

/// The values of `key` in an ELF64 module's `.modinfo` section (NUL
/// separated `key=value` strings).
fn modinfo(elf: &[u8], key: &str) -> Result<Vec<String>, String> {
    let bytes = |at: usize, n: usize| elf.get(at..at + n).ok_or("truncated ELF file");
    let u16_at = |at| bytes(at, 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u32_at = |at| bytes(at, 4).map(|b| u32::from_le_bytes(b.try_into().expect("4")) as usize);
    let u64_at = |at| bytes(at, 8).map(|b| u64::from_le_bytes(b.try_into().expect("8")) as usize);
    // ELF64, little-endian: the only kind an amd64 kernel loads.
    if bytes(0, 6)? != b"\x7fELF\x02\x01" {
        return Err("not a little-endian ELF64 file".into());
    }
    let (shoff, shentsize) = (u64_at(0x28)?, u16_at(0x3a)?);
    let (shnum, shstrndx) = (u16_at(0x3c)?, u16_at(0x3e)?);
    let section = |i: usize| -> Result<(usize, &[u8]), String> {
        let header = shoff + i * shentsize;
        let (offset, size) = (u64_at(header + 24)?, u64_at(header + 32)?);
        Ok((u32_at(header)?, bytes(offset, size)?))
    };
    let (_, names) = section(shstrndx)?;
    for i in 0..shnum {
        let (name, data) = section(i)?;
        let name = names.get(name..).unwrap_or_default();
        if name.split(|&b| b == 0).next() == Some(b".modinfo") {
            let prefix = format!("{key}=");
            return Ok(data
                .split(|&b| b == 0)
                .filter_map(|s| std::str::from_utf8(s).ok()?.strip_prefix(&prefix))
                .map(str::to_string)
                .collect());
        }
    }
    Err("no .modinfo section".into())
}

/// What the console reader shares with waiters.
#[derive(Default)]
struct Serial {
    state: Mutex<SerialState>,
    grew: Condvar,
}

#[derive(Default)]
struct SerialState {
    bytes: Vec<u8>,
    /// QEMU closed its end: it exited.
    closed: bool,
}

/// A running guest: QEMU with the image as its initramfs, the console on
/// its stdout (also in `serial.log`), QMP and VNC on sockets in its own
/// directory (`target/tmp/qemu-<name>/`, left there for a look after a
/// failure); killed when dropped.
pub struct Qemu {
    child: Child,
    dir: PathBuf,
    serial: Arc<Serial>,
    /// Where in the console output [`Qemu::wait_for_line`] goes on.
    cursor: usize,
    reader: Option<JoinHandle<()>>,
}

impl Qemu {
    /// Writes `image` into a fresh `target/tmp/qemu-<name>/` and boots it
    /// with the GPU's `-device` properties extended by `gpu` (e.g.
    /// `,vectors=0` for a function without MSI-X). Fails, saying to run
    /// setup, when QEMU 10 is not installed.
    pub fn boot(name: &str, image: &Image, gpu: &str) -> Result<Qemu, String> {
        let version = Command::new(QEMU)
            .arg("--version")
            .output()
            .map_err(|e| format!("{QEMU} does not run ({e}): {RUN_SETUP}"))?;
        let version = String::from_utf8_lossy(&version.stdout);
        if !version.starts_with("QEMU emulator version 10.") {
            return Err(format!(
                "{QEMU} is `{}`, the test needs 10.x: {RUN_SETUP}",
                version.lines().next().unwrap_or_default()
            ));
        }
        let dir = crate::target_dir().join("tmp").join(format!("qemu-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let initrd = dir.join("initrd.cpio");
        std::fs::write(&initrd, image.cpio())
            .map_err(|e| format!("writing {}: {e}", initrd.display()))?;
        let qemu_log = dir.join("qemu.log");
        let stderr = std::fs::File::create(&qemu_log)
            .map_err(|e| format!("creating {}: {e}", qemu_log.display()))?;
        let socket = |file: &str| dir.join(file).to_string_lossy().into_owned();
        let mut child = Command::new(QEMU)
            .args([
                "-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", MEMORY_MIB,
            ])
            .args(["-machine", "q35", "-device", "intel-iommu,intremap=on"])
            .arg("-kernel")
            .arg(&image.files.kernel)
            .arg("-initrd")
            .arg(&initrd)
            .args(["-append", "console=ttyS0 panic=-1 intel_iommu=on"])
            .arg("-device")
            .arg(format!("virtio-gpu-gl-pci,iommu_platform=on{gpu}"))
            // The GL device needs a GL display. Left to look for a DRM
            // render node, QEMU finds none on a machine without a GPU and
            // gives up; naming /dev/null gets it past that.
            .args([
                "-display",
                "egl-headless,rendernode=/dev/null",
                "-vga",
                "none",
            ])
            .arg("-vnc")
            .arg(format!("unix:{}", socket("vnc.sock")))
            .args(["-serial", "stdio", "-qmp"])
            .arg(format!("unix:{},server,nowait", socket("qmp.sock")))
            .args(["-no-reboot", "-nodefaults"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("starting {QEMU}: {e}"))?;
        let serial = Arc::new(Serial::default());
        let mut stdout = child.stdout.take().expect("piped");
        let mut log = std::fs::File::create(dir.join("serial.log"))
            .map_err(|e| format!("creating serial.log: {e}"))?;
        let shared = Arc::clone(&serial);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stdout.read(&mut buf) {
                // The file is only for people; losing it must not stop the test.
                let _ = log.write_all(&buf[..n]);
                shared
                    .state
                    .lock()
                    .expect("serial lock")
                    .bytes
                    .extend_from_slice(&buf[..n]);
                shared.grew.notify_all();
            }
            shared.state.lock().expect("serial lock").closed = true;
            shared.grew.notify_all();
        });
        Ok(Qemu {
            child,
            dir,
            serial,
            cursor: 0,
            reader: Some(reader),
        })
    }

    /// This guest's directory: the initramfs, `serial.log`, `qemu.log`
    /// (QEMU's stderr) and the sockets.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Waits up to `timeout` for a console line that `matches` (without its
    /// line end), looking only past the line the previous wait returned;
    /// returns it. Fails when QEMU exits or time runs out, with the whole
    /// console log and QEMU's stderr in the message.
    pub fn wait_for_line(
        &mut self,
        mut matches: impl FnMut(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        let serial = Arc::clone(&self.serial);
        let mut state = serial.state.lock().expect("serial lock");
        loop {
            while let Some(end) = state.bytes[self.cursor..].iter().position(|&b| b == b'\n') {
                let line = String::from_utf8_lossy(&state.bytes[self.cursor..self.cursor + end])
                    .trim_end_matches('\r')
                    .to_string();
                self.cursor += end + 1;
                if matches(&line) {
                    return Ok(line);
                }
            }
            if state.closed {
                drop(state);
                let status = self.wait_exit(Duration::from_secs(5));
                return Err(self.report(&format!(
                    "QEMU exited ({}) before the awaited console line",
                    status.map_or_else(|e| e, |s| s.to_string())
                )));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                drop(state);
                return Err(self.report(&format!("no awaited console line within {timeout:?}")));
            }
            state = serial
                .grew
                .wait_timeout(state, left)
                .expect("serial lock")
                .0;
        }
    }

    /// [`Qemu::wait_for_line`] for a line containing `marker`.
    pub fn wait_for(&mut self, marker: &str, timeout: Duration) -> Result<String, String> {
        self.wait_for_line(|line| line.contains(marker), timeout)
            .map_err(|e| format!("waiting for `{marker}`: {e}"))
    }

    /// Everything on the console so far, `\r` removed.
    pub fn serial_log(&self) -> String {
        let state = self.serial.state.lock().expect("serial lock");
        String::from_utf8_lossy(&state.bytes).replace('\r', "")
    }

    /// `what`, followed by the console log and QEMU's stderr: a failure
    /// message to diagnose from.
    pub fn report(&self, what: &str) -> String {
        let qemu_log = std::fs::read_to_string(self.dir.join("qemu.log")).unwrap_or_default();
        format!(
            "{what}\n--- guest console ({}) ---\n{}\n--- QEMU's stderr ---\n{qemu_log}",
            self.dir.join("serial.log").display(),
            self.serial_log()
        )
    }

    /// A VNC connection to the display: the scanout as the device shows it
    /// (QEMU's 640x480 placeholder until the guest sets one).
    pub fn vnc(&self) -> Result<Vnc, String> {
        Vnc::connect(&self.dir.join("vnc.sock"))
    }

    /// Sends one QMP command (a JSON object such as
    /// `{"execute":"query-status"}`) on a fresh QMP session; returns the
    /// reply line, or an error for an `"error"` reply.
    pub fn qmp(&self, command: &str) -> Result<String, String> {
        let path = self.dir.join("qmp.sock");
        let stream = UnixStream::connect(&path).map_err(|e| format!("connecting to QMP: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .map_err(|e| format!("reading the QMP greeting: {e}"))?;
        let mut reply = String::new();
        for sent in [r#"{"execute":"qmp_capabilities"}"#, command] {
            writeln!(writer, "{sent}").map_err(|e| format!("writing to QMP: {e}"))?;
            // Events may come before the reply.
            reply = loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) => return Err(format!("QMP closed before replying to {sent}")),
                    Ok(_) if line.contains("\"return\"") || line.contains("\"error\"") => {
                        break line.trim().to_string();
                    }
                    Ok(_) => {}
                    Err(e) => return Err(format!("reading QMP's reply to {sent}: {e}")),
                }
            };
            if reply.contains("\"error\"") {
                return Err(format!("QMP {sent}: {reply}"));
            }
        }
        Ok(reply)
    }

    /// Asks QEMU to quit (QMP `quit`) and waits for it to exit.
    pub fn quit(&mut self) -> Result<ExitStatus, String> {
        // QEMU closes QMP as it quits, sometimes before its reply: what
        // counts is that it exits.
        let asked = self.qmp(r#"{"execute":"quit"}"#);
        match self.wait_exit(Duration::from_secs(10)) {
            Ok(status) => Ok(status),
            Err(e) => Err(asked.err().map_or(e.clone(), |q| format!("{q}; {e}"))),
        }
    }

    /// Waits up to `timeout` for QEMU to exit: the guest powered off
    /// (`poweroff -f`) or panicked (`panic=-1` with `-no-reboot`), or QEMU
    /// was told to quit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => return Err(format!("QEMU still runs after {timeout:?}")),
                Err(e) => return Err(format!("waiting for QEMU: {e}")),
            }
        }
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpio_entries_are_aligned_and_parents_come_first() {
        let mut image = Image {
            files: GuestFiles {
                kernel: PathBuf::new(),
                modules: PathBuf::new(),
                version: String::new(),
                busybox: PathBuf::new(),
            },
            entries: BTreeMap::new(),
            modules: Vec::new(),
        };
        image.init("#!/bin/sh\n");
        image.insert("/a/b/c", Entry::Symlink("/x".into()));
        let names: Vec<&str> = image.entries.keys().map(String::as_str).collect();
        assert_eq!(names, ["a", "a/b", "a/b/c", "init"]);
        let archive = image.cpio();
        assert_eq!(archive.len() % 4, 0);
        assert!(archive.starts_with(b"070701"));
        let text = String::from_utf8_lossy(&archive);
        assert!(text.contains("a/b/c\0"));
        assert!(text.contains("TRAILER!!!\0"));
    }
}
