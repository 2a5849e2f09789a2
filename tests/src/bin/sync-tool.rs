//! A syncd client run as its own process by the tests, so a waiter can be
//! a separate process (and be killed mid-wait).
//!
//! - `sync-tool wait-fence TIMELINE POINT TIMEOUT_MS`: polls a sync_file;
//!   prints "waiting", then "signaled" or "timeout".
//! - `sync-tool wait-syncobj`: waits (WAIT_FOR_SUBMIT, no deadline) on a
//!   syncobj nothing will ever signal; prints "waiting" first.

use std::io::Write;
use std::time::Duration;

use sync_client::{SyncFile, SyncobjTable};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let say = |s: &str| -> std::io::Result<()> {
        println!("{s}");
        std::io::stdout().flush()
    };
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["wait-fence", timeline, point, timeout_ms] => {
            let parse = |s: &str| s.parse::<u64>().map_err(std::io::Error::other);
            let file = SyncFile::for_fence(parse(timeline)? as u32, parse(point)?)?;
            file.poll_fd()?;
            say("waiting")?;
            let done = file.wait(Duration::from_millis(parse(timeout_ms)?))?;
            say(if done { "signaled" } else { "timeout" })
        }
        ["wait-syncobj"] => {
            let table = SyncobjTable::open()?;
            let obj = table.create(false)?;
            say("waiting")?;
            let flags = drm_uapi::syncobj::WAIT_FLAGS_WAIT_FOR_SUBMIT;
            table.wait(&[obj], None, i64::MAX, flags)?;
            say("woke")
        }
        _ => Err(std::io::Error::other(
            "usage: sync-tool wait-fence T P MS | wait-syncobj",
        )),
    }
}
