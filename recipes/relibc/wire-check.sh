#!/usr/bin/env bash
# Checks that the shim's encoding of every KMS ioctl is relibc's: for each
# ioctl relibc's sys_ioctl forwards generically (`*_ioctl::<T>` in
# src/header/sys_ioctl/redox/drm.rs) that drm-uapi has a layout for, a
# Linux struct with a distinct byte in every position and arrays of
# distinct bytes is encoded both by redox-ioctl's `IoctlData::write` (what
# relibc sends drmd on Redox) and by drm-uapi's layout as the shim packs it
# (`Layout::wire_header`, then each array): the bytes must be equal. It
# runs on the host: redox-ioctl builds for Linux too.
#
# usage: recipes/relibc/wire-check.sh /path/to/relibc   (patch applied, as
#   for check.sh). Needs RUSTC_BOOTSTRAP=1 (redox-ioctl uses nightly
#   features) and crates.io.
set -euo pipefail
relibc=$(cd "${1:?usage: $0 /path/to/patched/relibc}" && pwd)
project=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src"
cp "$relibc/Cargo.lock" "$work/"

cat > "$work/Cargo.toml" <<TOML
[package]
name = "relibc-wire-check"
version = "0.1.0"
edition = "2024"

[dependencies]
redox-ioctl = { path = "$relibc/redox-ioctl" }
drm-uapi = { path = "$project/shared/drm-uapi" }
TOML

# The (nr, type) pairs relibc forwards, from its dispatch table.
python3 - "$relibc/src/header/sys_ioctl/redox/drm.rs" > "$work/src/forwarded.rs" <<'PY'
import re, sys
src = open(sys.argv[1]).read()
pairs = re.findall(r"(0x[0-9A-Fa-f]+)\s*=>\s*(?:unsafe\s*\{\s*)?dev\.\w+_ioctl::<(\w+)>", src)
print("pub const FORWARDED: &[(u64, &str, Check)] = &[")
for nr, ty in pairs:
    print(f"    ({nr}, \"{ty}\", check::<{ty}>),")
print("];")
PY

cat > "$work/src/main.rs" <<'RS'
#![allow(non_camel_case_types)]
use redox_ioctl::IoctlData;
#[allow(unused_imports)]
use redox_ioctl::{drm::*, virtgpu::*};

type Check = fn(u64) -> Result<(), String>;
include!("forwarded.rs");

/// Holes in Linux structs (offset, length, by ioctl): their bytes mean
/// nothing on either side, and relibc's `write` sends them uninitialised
/// (it copies the fields into a fresh struct and transmutes it), so they
/// are not compared. drm_mode_fb_cmd2 has one before `modifier[]`.
const HOLES: &[(u64, usize, usize)] = &[(0xB8, 68, 4), (0xCE, 68, 4)];

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed)).collect()
}

/// Encodes a patterned Linux struct of ioctl `nr` both ways.
fn check<T: IoctlData>(nr: u64) -> Result<(), String> {
    let Some(layout) = drm_uapi::kms::layout(nr) else {
        return Err("no KMS layout".into());
    };
    if size_of::<T>() != layout.linux {
        return Err(format!("{} bytes, the layout says {}", size_of::<T>(), layout.linux));
    }
    let mut linux = pattern(layout.linux, 11);
    let mut arrays: Vec<Vec<u8>> = Vec::new();
    for (i, a) in layout.arrays.iter().enumerate() {
        // Arrays sharing a count share its value.
        let count = match layout.arrays[..i].iter().position(|b| b.count == a.count) {
            Some(_) => u32::from_le_bytes(linux[a.count..a.count + 4].try_into().unwrap()),
            None => 2 + i as u32,
        };
        linux[a.count..a.count + 4].copy_from_slice(&count.to_le_bytes());
        arrays.push(pattern(count as usize * a.elem, 100 + 17 * i as u8));
    }
    for (a, bytes) in layout.arrays.iter().zip(&arrays) {
        linux[a.ptr..a.ptr + 8].copy_from_slice(&(bytes.as_ptr() as u64).to_le_bytes());
    }
    // SAFETY: T is a plain C struct of integers of exactly these bytes.
    let value: T = unsafe { std::ptr::read_unaligned(linux.as_ptr().cast()) };
    // SAFETY: its pointers point at live arrays of the counts it holds.
    let mut theirs = unsafe { value.write() };
    let mut ours = layout.wire_header(&linux);
    for &(_, at, len) in HOLES.iter().filter(|h| h.0 == nr) {
        for b in [&mut theirs, &mut ours] {
            if let Some(hole) = b.get_mut(at..at + len) {
                hole.fill(0);
            }
        }
    }
    for a in &arrays {
        ours.extend_from_slice(a);
    }
    if theirs != ours {
        return Err(format!("relibc {theirs:?}\n  shim {ours:?}"));
    }
    Ok(())
}

fn main() {
    let mut checked = 0;
    let mut failed = 0;
    for &(nr, name, check) in FORWARDED {
        if drm_uapi::kms::layout(nr).is_none() {
            continue;
        }
        match check(nr) {
            Ok(()) => checked += 1,
            Err(e) => {
                failed += 1;
                eprintln!("{nr:#04x} {name}: {e}");
            }
        }
    }
    println!("{checked} KMS ioctls encode the same in relibc and the shim, {failed} differ");
    std::process::exit(i32::from(failed > 0));
}
RS

cd "$work"
RUSTC_BOOTSTRAP=1 cargo +stable run -q
