//! The stack on QEMU's real `virtio-gpu-gl-pci` device, through the PCI
//! transport: a small Linux guest (TCG, q35 with an emulated Intel IOMMU)
//! binds the function to vfio-pci instead of its kernel driver, runs
//! virtio-gpud on it (`--pci`, the same transport code as on Redox, with
//! MSI-X), syncd and drmd, and the `pci-guest` client: the capset query, a
//! clear rendered by the host GPU and read back through EXECBUFFER, MAP
//! and mmap, and a virgl-rendered frame set as the scanout, which the host
//! reads over VNC and compares pixel for pixel; then the host resizes its
//! display and the configuration change reaches drmd's connector and a
//! hotplug listener. With MSI-X, and again on INTx.

use std::time::{Duration, Instant};

use stack_tests::pci::Frame;
use stack_tests::qemu::{Image, Qemu};
use stack_tests::workspace_binary;

/// /init: mounts, loads the vfio modules, binds the GPU to vfio-pci, dumps
/// its configuration space, starts the daemons in init's order with init's
/// readiness protocol (one byte on the `INIT_NOTIFY` fd), and runs the
/// client. Every fact the host checks is a `key: value` line; a failure
/// prints the daemons' logs and `pci-test: FAILED`.
const INIT: &str = r#"#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
fail() {
    echo "pci-test: failure: $1"
    for log in /tmp/*.log; do echo "== $log"; cat "$log"; done
    echo "pci-test: FAILED"
    sleep 600
}
for module in $MODULES; do
    insmod "$module" || echo "insmod-failed: $module"
done
gpu=
for dev in /sys/bus/pci/devices/*; do
    if [ "$(cat "$dev/vendor")" = 0x1af4 ] && [ "$(cat "$dev/device")" = 0x1050 ]; then
        gpu=$dev
    fi
done
addr=${gpu##*/}
echo "gpu-address: $addr"
echo vfio-pci > "$gpu/driver_override"
echo "$addr" > /sys/bus/pci/drivers_probe
echo "gpu-driver: $(basename "$(readlink "$gpu/driver")")"
echo "config-space: $(od -An -v -tx1 -N256 "$gpu/config" | tr -d '\n')"
export SCHEME_DIR=/run/schemes RUST_LOG=info
mkdir -p $SCHEME_DIR
start() {
    name=$1
    shift
    mkfifo /tmp/$name.ready
    INIT_NOTIFY=3 "$@" 3>/tmp/$name.ready 2>/tmp/$name.log &
    [ "$(head -c1 /tmp/$name.ready | wc -c)" = 1 ] || fail "$name did not become ready"
    echo "pci-test: $name ready"
}
start virtio-gpud /bin/virtio-gpud --pci "$addr"
start syncd /bin/syncd
start drmd /bin/drmd
grep -h "virtio PCI\|vfio:" /tmp/virtio-gpud.log
/bin/pci-guest || fail "pci-guest exited with $?"
"#;

/// The value of the first `key: value` line in `log`.
fn field<'a>(log: &'a str, key: &str) -> Option<&'a str> {
    log.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
        .map(str::trim)
}

/// The guest's dump of the function's configuration space.
fn config_space(log: &str) -> Option<Vec<u8>> {
    field(log, "config-space")?
        .split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).ok())
        .collect()
}

/// With MSI-X (QEMU's default: three vectors, one per source).
#[test]
fn the_stack_drives_virtio_gpu_gl_pci_with_msix_and_its_scanout_reads_back() {
    drive("pci-msix", "", Interrupts::Msix);
}

/// Without MSI-X (`vectors=0`): the INTx line, the ISR telling causes apart.
#[test]
fn the_stack_drives_virtio_gpu_gl_pci_on_intx_and_its_scanout_reads_back() {
    drive("pci-intx", ",vectors=0", Interrupts::Intx);
}

/// How the function is expected to interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Interrupts {
    Msix,
    Intx,
}

/// Boots the guest with the GPU's `-device` properties extended by
/// `gpu`, runs the stack and the client in it, and checks everything the
/// guest reports and the scanout the host reads.
fn drive(name: &str, gpu: &str, interrupts: Interrupts) {
    let start = Instant::now();
    let mut image = Image::new().unwrap_or_else(|e| panic!("{e}"));
    image
        .modules(&["vfio", "vfio_iommu_type1", "vfio-pci"])
        .unwrap_or_else(|e| panic!("{e}"));
    let modules = image.module_paths().join(" ");
    for name in ["virtio-gpud", "syncd", "drmd", "pci-guest"] {
        image
            .binary(&workspace_binary(name), &format!("/bin/{name}"))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    image.init(&INIT.replace("$MODULES", &modules));
    let built = start.elapsed();

    let mut qemu = Qemu::boot(name, &image, gpu).unwrap_or_else(|e| panic!("{e}"));
    // Debug builds under TCG: generous, never judged.
    let line = qemu
        .wait_for_line(
            |l| l.starts_with("pci-guest: scanout ") || l.starts_with("pci-test: FAILED"),
            Duration::from_secs(240),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let shown = start.elapsed();
    let log = qemu.serial_log();
    assert!(
        line.starts_with("pci-guest: scanout "),
        "{}",
        qemu.report("the guest failed")
    );
    assert!(!log.contains("insmod-failed"), "{}", qemu.report("insmod"));
    assert_eq!(
        field(&log, "gpu-driver"),
        Some("vfio-pci"),
        "{}",
        qemu.report("vfio-pci")
    );

    // The capability list the transport read, parsed here too: the
    // structures where QEMU puts them and MSI-X with a vector per source.
    let space = config_space(&log).unwrap_or_else(|| panic!("{}", qemu.report("config dump")));
    let caps = virtio_gpud::transport::pci::caps::parse(&space)
        .unwrap_or_else(|e| panic!("{}", qemu.report(&format!("capabilities: {e}"))));
    assert_eq!(&space[0..4], &[0xf4, 0x1a, 0x50, 0x10]);
    let taken = match interrupts {
        Interrupts::Msix => {
            assert!(caps.msix.is_some_and(|m| m.vectors >= 3), "{caps:?}");
            "interrupts Msix(3)"
        }
        Interrupts::Intx => {
            assert_eq!(caps.msix, None);
            "interrupts Intx"
        }
    };
    assert!(
        log.contains(taken),
        "{}",
        qemu.report(&format!("virtio-gpud did not report `{taken}`"))
    );

    // What the client checked in the guest.
    // VIRGL and VIRGL2 (bits 1 and 2), as QEMU's virgl offers them.
    assert!(
        log.contains("pci-guest: virtio_gpu 3D_FEATURES=1 capsets=0b110"),
        "{}",
        qemu.report("3D features / capsets")
    );
    assert!(
        log.contains("pci-guest: clear read back:"),
        "{}",
        qemu.report("clear and read back")
    );
    // The device's EDID reached the connector: QEMU's modes, its 1280x800
    // preferred.
    assert!(
        log.lines().any(|l| l.starts_with("pci-guest: connector ")
            && l.contains(" 12 modes, preferred 1280x800@")),
        "{}",
        qemu.report("connector modes from the EDID")
    );
    let count: u64 = log
        .lines()
        .find_map(|l| {
            l.strip_prefix("pci-guest: stats: ")?
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("{}", qemu.report("interrupt count")));
    assert!(count > 0, "{}", qemu.report("no interrupts counted"));

    // The scanout, as the host's display shows it.
    let mut size = line["pci-guest: scanout ".len()..].split_whitespace();
    let mut dim = || -> u32 { size.next().and_then(|n| n.parse().ok()).expect("W H") };
    let expected = Frame::new(dim(), dim());
    let mut vnc = qemu.vnc().unwrap_or_else(|e| panic!("{}", qemu.report(&e)));
    let deadline = Instant::now() + Duration::from_secs(30);
    let frame = loop {
        let frame = vnc
            .frame(Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("{}", qemu.report(&e)));
        let sized = (frame.width, frame.height) == (expected.width, expected.height);
        if sized || Instant::now() > deadline {
            break frame;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let read = start.elapsed();
    frame
        .save_png(&qemu.dir().join("frame.png"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (frame.width, frame.height),
        (expected.width, expected.height),
        "{}",
        qemu.report("the display's size is not the mode's")
    );
    let mut wrong = 0u64;
    let mut first = None;
    for y in 0..frame.height {
        for x in 0..frame.width {
            let got = frame.pixel(x, y);
            if got[..3] != expected.pixel(x, y) {
                wrong += 1;
                first.get_or_insert((x, y, got));
            }
        }
    }
    assert_eq!(
        wrong,
        0,
        "{wrong} pixels differ, first {first:?}; the frame is {}",
        qemu.dir().join("frame.png").display()
    );

    // The host resizes its display: a configuration change (MSI-X vector
    // 0, or the ISR's bit on INTx) that reaches drmd's connector and its
    // hotplug listener in the guest.
    vnc.request_size(1024, 768)
        .unwrap_or_else(|e| panic!("{}", qemu.report(&e)));
    qemu.wait_for(
        "pci-guest: hotplug: preferred 1024x768",
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let resized = start.elapsed();

    let status = qemu
        .quit()
        .unwrap_or_else(|e| panic!("{}", qemu.report(&e)));
    assert!(
        status.success(),
        "{}",
        qemu.report(&format!("QEMU exited {status}"))
    );
    println!(
        "{name}: Linux {}, {} on vfio-pci, {caps:?}; {count} interrupts; {}x{} scanout read \
         back pixel for pixel; QEMU exited {status}",
        image.kernel_version(),
        field(&log, "gpu-address").unwrap_or("?"),
        frame.width,
        frame.height,
    );
    println!(
        "{name}: image {:.2?}, boot to scanout {:.2?}, frame {:.2?}, hotplug {:.2?}, \
         whole test {:.2?}",
        built,
        shown - built,
        read - shown,
        resized - read,
        start.elapsed()
    );
}
