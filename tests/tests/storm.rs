//! Load and kill storms: clients making fenced submits through scheme:drm
//! are SIGKILLed and restarted at random, and drmd is SIGKILLed and
//! restarted under them. Afterwards the tables of virtio-gpud, drmd and
//! syncd are back to their baseline, no descriptor is left behind, each
//! daemon's heap is flat within [`HEAP_MARGIN`], every client finished or
//! was killed, and none hung.
//!
//! CI runs [`SHORT`]; `cargo xtask storm` runs [`FULL`] (16 clients × 10,000
//! submits, 1,000 client kills, 50 drmd kills) on release builds.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stack_tests::{bus_dir, device_objects, scheme_text, stack, workspace_binary, Daemon, Stack};

/// How much a daemon's heap (anonymous resident memory) may grow over a
/// storm: allocator slack, not growth with the work done.
const HEAP_MARGIN: u64 = 1 << 20;

/// How long a client may go without a fence signalling before it counts
/// as hung.
const HANG: Duration = Duration::from_secs(30);

/// A storm's size.
#[derive(Clone, Copy, Debug)]
struct Scale {
    clients: usize,
    /// Fenced submits each client makes, over all its restarts.
    submits: u64,
    /// Client SIGKILLs in all.
    kills: u64,
    /// drmd SIGKILLs in all.
    drmd_kills: u64,
}

const SHORT: Scale = Scale {
    clients: 8,
    submits: 400,
    kills: 60,
    drmd_kills: 4,
};

const FULL: Scale = Scale {
    clients: 16,
    submits: 10_000,
    kills: 1_000,
    drmd_kills: 50,
};

/// The daemons serve fixed names in the bus directory: storms take turns.
static DAEMONS: Mutex<()> = Mutex::new(());

#[test]
fn a_short_storm_leaves_every_table_at_its_baseline() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    storm(SHORT);
}

#[test]
#[ignore = "minutes long: `cargo xtask storm` runs it on release builds"]
fn the_full_storm_leaves_every_table_at_its_baseline() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    storm(FULL);
}

/// A small xorshift generator: the seed is printed, so a storm can be
/// replayed (`STORM_SEED`).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// What one daemon holds: its table lines, descriptors and heap.
#[derive(Clone, Debug, PartialEq)]
struct Held {
    tables: BTreeMap<String, String>,
    /// What each descriptor is (`socket`, `memfd:…`, a path), sorted.
    fds: Vec<String>,
    heap: u64,
}

/// The kinds of `pid`'s descriptors: their link targets without inode
/// numbers, so that two instances of a daemon compare.
fn fds(pid: u32) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let mut kinds: Vec<String> = dir
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|t| {
            let t = t.to_string_lossy();
            t.split(":[").next().unwrap_or(&t).to_string()
        })
        .collect();
    kinds.sort();
    kinds
}

/// Anonymous resident memory: the heap, not the shared DMA regions.
fn heap(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// `name value` pairs of a stats text, for the names in `keep`.
fn pairs(text: &str, keep: &[&str]) -> BTreeMap<String, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .windows(2)
        .filter(|w| keep.contains(&w[0]))
        .map(|w| (w[0].to_string(), w[1].to_string()))
        .collect()
}

fn held(daemon: &Daemon, tables: BTreeMap<String, String>) -> Held {
    Held {
        tables,
        fds: fds(daemon.pid()),
        heap: heap(daemon.pid()),
    }
}

/// virtio-gpud, syncd and drmd, as they stand.
fn snapshot(stack: &Stack) -> [Held; 3] {
    let gpu_text = scheme_text("/scheme/virtio-gpu/stats");
    let mut gpu = pairs(
        &gpu_text,
        &[
            "in_flight",
            "tickets",
            "handles",
            "sessions",
            "regions",
            "memory_used",
            "closing",
            "releases_waiting",
            "lost_now",
        ],
    );
    gpu.insert("objects".into(), device_objects());
    let sync = pairs(
        &scheme_text("/scheme/sync/"),
        &[
            "handles",
            "owners",
            "sync_files",
            "tables",
            "exported",
            "syncobjs",
            "tokens",
            "timelines",
        ],
    );
    let drm = pairs(
        &scheme_text("/scheme/drm/stats"),
        &[
            "files",
            "bos",
            "dma_bufs",
            "tokens",
            "parked",
            "flink_names",
        ],
    );
    [
        held(&stack.gpu, gpu),
        held(&stack.sync, sync),
        held(&stack.drm, drm),
    ]
}

const NAMES: [&str; 3] = ["virtio-gpud", "syncd", "drmd"];

/// Waits (up to 20 s) until every table and descriptor count is what
/// `baseline` had; returns the snapshot then.
fn settle(stack: &Stack, baseline: &[Held; 3]) -> [Held; 3] {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = snapshot(stack);
        let same = now
            .iter()
            .zip(baseline)
            .all(|(n, b)| n.tables == b.tables && n.fds == b.fds);
        if same {
            return now;
        }
        if Instant::now() > deadline {
            for ((n, b), name) in now.iter().zip(baseline).zip(NAMES) {
                if n.tables != b.tables || n.fds != b.fds {
                    eprintln!("{name}: now {n:?}\n  baseline {b:?}");
                }
            }
            panic!("the daemons' tables did not return to their baseline");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The daemons once nothing is in flight and two looks 100 ms apart agree:
/// the baseline.
fn quiet(stack: &Stack) -> [Held; 3] {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = snapshot(stack);
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = snapshot(stack);
        let idle = ["in_flight", "tickets", "closing", "releases_waiting"]
            .iter()
            .all(|k| now[0].tables.get(*k).map(String::as_str) == Some("0"));
        let same = now
            .iter()
            .zip(&last)
            .all(|(n, l)| n.tables == l.tables && n.fds == l.fds);
        if idle && same {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "the stack never went quiet: {now:?}"
        );
        last = now;
    }
}

/// How one client slot's runs went.
#[derive(Debug, Default)]
struct Outcomes {
    finished: u64,
    /// Runs that ended by SIGKILL (a kill can find a client already
    /// exiting, so these may be fewer than the kills sent).
    killed: u64,
    /// Runs that ended with an error while drmd was being restarted.
    drmd_gone: u64,
}

/// One client slot: runs `gpu-tool storm` until `submits` fenced submits
/// have signalled, restarted whenever it dies. `done` counts signalled
/// fences over all slots; `pid` is the running client, for the killer;
/// `drmd_generation` is odd from a drmd kill until drmd is back.
fn run_slot(
    slot: usize,
    submits: u64,
    done: &AtomicU64,
    pid: &Mutex<Option<u32>>,
    drmd_generation: &AtomicU64,
) -> Outcomes {
    let mut outcomes = Outcomes::default();
    let mut left = submits;
    let log = bus_dir().join(format!("storm-client-{slot}.log"));
    while left > 0 {
        let generation = drmd_generation.load(Ordering::SeqCst);
        let mut child = Command::new(workspace_binary("gpu-tool"))
            .args(["storm", &left.to_string()])
            .env(scheme_seam::linux::SCHEME_DIR, bus_dir())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("client log"))
            .spawn()
            .expect("starting gpu-tool");
        *pid.lock().unwrap() = Some(child.id());
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Some(n) = line
                    .ok()
                    .and_then(|l| l.strip_prefix("done ")?.parse().ok())
                else {
                    break;
                };
                if tx.send(n).is_err() {
                    break;
                }
            }
        });
        loop {
            match rx.recv_timeout(HANG) {
                Ok(n) => {
                    left -= n;
                    done.fetch_add(n, Ordering::SeqCst);
                }
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    panic!(
                        "client {slot} hung: no fence for {HANG:?}; its log: {}",
                        log.display()
                    );
                }
            }
        }
        reader.join().unwrap();
        // Its pid cannot be reused before it is reaped: take it from the
        // killer first.
        *pid.lock().unwrap() = None;
        let status = child.wait().expect("waiting for gpu-tool");
        use std::os::unix::process::ExitStatusExt;
        if status.success() {
            assert_eq!(left, 0, "client {slot} exited early");
            outcomes.finished += 1;
        } else if status.signal() == Some(libc::SIGKILL) {
            outcomes.killed += 1;
        } else if drmd_generation.load(Ordering::SeqCst) != generation || generation % 2 == 1 {
            // drmd died under it (or is not back yet): start again.
            outcomes.drmd_gone += 1;
            std::thread::sleep(Duration::from_millis(20));
        } else {
            panic!(
                "client {slot} failed ({status}) with drmd up: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
    }
    outcomes
}

/// One phase: `scale.clients` slots making `submits` each, while `kills`
/// clients and `drmd_kills` drmds are SIGKILLed, spread over the phase by
/// the fences signalled so far.
fn phase(
    stack: &mut Stack,
    scale: Scale,
    submits: u64,
    kills: u64,
    drmd_kills: u64,
    rng: &mut Rng,
) -> Outcomes {
    let done = Arc::new(AtomicU64::new(0));
    let generation = Arc::new(AtomicU64::new(0));
    let pids: Vec<Arc<Mutex<Option<u32>>>> = (0..scale.clients)
        .map(|_| Arc::new(Mutex::new(None)))
        .collect();
    let runners: Vec<_> = pids
        .iter()
        .enumerate()
        .map(|(slot, pid)| {
            let (done, pid, generation) = (done.clone(), pid.clone(), generation.clone());
            std::thread::spawn(move || run_slot(slot, submits, &done, &pid, &generation))
        })
        .collect();
    let total = submits * scale.clients as u64;
    // The k-th of n kills comes once k/n of the first 80% of the fences
    // have signalled, so that every kill finds clients running.
    let due = |k: u64, n: u64| k * total * 8 / (10 * n.max(1));
    let (mut killed, mut drmd_killed) = (0, 0);
    while runners.iter().any(|r| !r.is_finished()) {
        let progress = done.load(Ordering::SeqCst);
        if killed < kills && progress >= due(killed, kills) {
            let live: Vec<_> = pids
                .iter()
                .filter(|p| p.lock().unwrap().is_some())
                .collect();
            if !live.is_empty() {
                let slot = live[(rng.next() % live.len() as u64) as usize]
                    .lock()
                    .unwrap();
                if let Some(pid) = *slot {
                    // SAFETY: a plain signal to a client this test started,
                    // not yet reaped: its slot clears the pid under this
                    // lock before it reaps.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                    killed += 1;
                }
            }
        }
        if drmd_killed < drmd_kills && progress >= due(drmd_killed, drmd_kills) {
            generation.fetch_add(1, Ordering::SeqCst);
            // SAFETY: a plain signal to the drmd this test started.
            unsafe { libc::kill(stack.drm.pid() as libc::pid_t, libc::SIGKILL) };
            stack.drm = Daemon::start(&workspace_binary("drmd"), &[], "drm");
            // Runs begun while it was gone see the change too.
            generation.fetch_add(1, Ordering::SeqCst);
            drmd_killed += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut all = Outcomes::default();
    for r in runners {
        let o = r.join().expect("a client slot failed");
        all.finished += o.finished;
        all.killed += o.killed;
        all.drmd_gone += o.drmd_gone;
    }
    assert_eq!(done.load(Ordering::SeqCst), total);
    assert_eq!(all.finished, scale.clients as u64, "every client finished");
    assert_eq!((killed, drmd_killed), (kills, drmd_kills));
    all
}

fn storm(scale: Scale) {
    let seed = std::env::var("STORM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    eprintln!("storm {scale:?} seed {seed}");
    let mut rng = Rng(seed);
    let mut stack = stack();
    // A warm-up, so that the baseline has the allocators' first growth.
    phase(&mut stack, scale, 50, 0, 0, &mut rng);
    let baseline = quiet(&stack);
    let started = Instant::now();
    // Most of the work with every kind of kill; then the rest without
    // drmd kills, so the last drmd's heap is seen over a stretch of work.
    let first = scale.submits * 9 / 10;
    let a = phase(
        &mut stack,
        scale,
        first,
        scale.kills * 9 / 10,
        scale.drmd_kills,
        &mut rng,
    );
    let middle = settle(&stack, &baseline);
    let b = phase(
        &mut stack,
        scale,
        scale.submits - first,
        scale.kills - scale.kills * 9 / 10,
        0,
        &mut rng,
    );
    let end = settle(&stack, &baseline);
    eprintln!(
        "storm: {} submits in {:.1} s; {} client kills ({} runs ended by them), \
         {} drmd restarts ({} runs ended with drmd)",
        scale.submits * scale.clients as u64,
        started.elapsed().as_secs_f64(),
        scale.kills,
        a.killed + b.killed,
        scale.drmd_kills,
        a.drmd_gone + b.drmd_gone
    );
    let grown = |now: &Held, then: &Held| now.heap.saturating_sub(then.heap);
    for (i, name) in NAMES.iter().enumerate() {
        eprintln!(
            "{name}: heap {} KiB at the baseline, {} KiB after the kills, {} KiB at the end; {} fds",
            baseline[i].heap / 1024,
            middle[i].heap / 1024,
            end[i].heap / 1024,
            end[i].fds.len()
        );
        // drmd: its last instance, from the end of the kills to the end.
        let then = if i == 2 { &middle[i] } else { &baseline[i] };
        assert!(
            grown(&end[i], then) <= HEAP_MARGIN,
            "{name}'s heap grew by {} KiB",
            grown(&end[i], then) / 1024
        );
    }
}
