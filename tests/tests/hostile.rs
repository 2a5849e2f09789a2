//! The hostile-input suite (`hostile-probe`): every case gets the answer
//! Linux's virtio-gpu driver gives it, or ours where docs/RELIABILITY.md
//! says why we differ; no case kills the caller's fd, a daemon, the
//! device, or another client; and RELIABILITY.md's table is the probe's.

use std::process::Output;
use std::sync::Mutex;

use stack_tests::{device_objects, mesa_command, stack, workspace_binary};

/// The daemons serve fixed names in the bus directory: tests take turns.
static DAEMONS: Mutex<()> = Mutex::new(());

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn every_hostile_case_gets_linuxs_answer_and_breaks_nothing() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let mut stack = stack();
    // Another client, busy meanwhile, is not disturbed.
    let bystander = mesa_command(workspace_binary("shim-probe"));
    let output = mesa_command(workspace_binary("hostile-probe"))
        .output()
        .expect("running hostile-probe");
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    assert!(all.contains("hostile ok"), "{all}");
    let mut bystander = bystander;
    let after = bystander.output().expect("running shim-probe");
    assert!(after.status.success(), "{}", text(&after));
    // Everything the probe made went with it; every daemon is still up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !device_objects().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "left: {}",
            device_objects()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    for daemon in [&mut stack.gpu, &mut stack.sync, &mut stack.drm] {
        assert!(daemon.socket_exists());
    }
}

#[test]
fn reliability_md_carries_the_probes_table() {
    let table = std::process::Command::new(workspace_binary("hostile-probe"))
        .arg("--markdown")
        .output()
        .expect("running hostile-probe --markdown");
    let table = String::from_utf8(table.stdout).unwrap();
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/RELIABILITY.md"
    ))
    .expect("docs/RELIABILITY.md");
    assert!(
        doc.contains(&table),
        "docs/RELIABILITY.md's case table differs from `hostile-probe --markdown`:\n{table}"
    );
}
