//! syncd as a real process: timelines signalled by one process and waited
//! on by others, sync_file poll and merge, syncobjs over the scheme,
//! waiters that die, owners that die, and memory that stays flat.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use drm_uapi::syncobj as so;
use scheme_seam::SchemeFd;
use stack_tests::{bus_dir, poll_readable, workspace_binary, Daemon};
use sync_client::{SyncFile, SyncobjTable, TimelineOwner, TimelinePage};

/// syncd serves one name per bus, so its tests take turns.
static SYNCD: Mutex<()> = Mutex::new(());

fn start() -> Daemon {
    Daemon::start(&workspace_binary("syncd"), &[], "sync")
}

fn stats(d: &Daemon) -> String {
    let fd = d.open("");
    let mut buf = vec![0u8; 1024];
    let n = fd.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn stat(d: &Daemon, key: &str) -> usize {
    stats(d)
        .lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {}", stats(d)))
}

fn now_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// Starts `sync-tool args…` and waits for it to say it is waiting.
fn waiter(args: &[&str]) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(workspace_binary("sync-tool"))
        .args(args)
        .env(scheme_seam::linux::SCHEME_DIR, bus_dir())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "waiting");
    (child, out)
}

#[test]
fn a_waiter_process_is_parked_until_another_process_signals() {
    let _turn = SYNCD.lock().unwrap_or_else(|e| e.into_inner());
    let d = start();
    let owner = TimelineOwner::create("gpu").unwrap();
    let id = owner.id().to_string();
    let (mut child, mut out) = waiter(&["wait-fence", &id, "5", "10000"]);
    std::thread::sleep(Duration::from_millis(100));
    owner.signal(4).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        child.try_wait().unwrap().is_none(),
        "point 4 does not signal 5"
    );
    owner.signal(5).unwrap();
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "signaled");
    assert!(child.wait().unwrap().success());
    drop(d);
}

#[test]
fn merged_fences_of_two_timelines_signal_when_both_do() {
    let _turn = SYNCD.lock().unwrap_or_else(|e| e.into_inner());
    let _d = start();
    let (a, b) = (
        TimelineOwner::create("ring-a").unwrap(),
        TimelineOwner::create("ring-b").unwrap(),
    );
    let fa = SyncFile::for_fence(a.id(), 3).unwrap();
    let fb = SyncFile::for_fence(b.id(), 7).unwrap();
    let merged = fa.merge(&fb, "both").unwrap();
    let info = merged.info().unwrap();
    assert_eq!(info.fences.len(), 2);
    assert_eq!(info.status, 0);
    a.signal(3).unwrap();
    assert!(
        !merged.wait(Duration::ZERO).unwrap(),
        "one of two is not enough"
    );
    assert!(fa.wait(Duration::ZERO).unwrap());
    b.signal(9).unwrap();
    assert!(merged.wait(Duration::from_secs(5)).unwrap());
    let info = merged.info().unwrap();
    assert_eq!(info.status, 1);
    let mut names: Vec<String> = info
        .fences
        .iter()
        .map(|f| {
            String::from_utf8_lossy(&f.obj_name)
                .trim_end_matches('\0')
                .to_string()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["ring-a", "ring-b"]);
    assert!(info
        .fences
        .iter()
        .all(|f| f.status == 1 && f.timestamp_ns > 0));
    // Merging with something that is not a sync_file is refused.
    let err = fa.handle().dup(&[0u8; 3]).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
}

#[test]
fn a_fence_whose_owner_is_gone_completes_with_an_error() {
    let _turn = SYNCD.lock().unwrap_or_else(|e| e.into_inner());
    let _d = start();
    let owner = TimelineOwner::create("doomed").unwrap();
    owner.signal(1).unwrap();
    let done = SyncFile::for_fence(owner.id(), 1).unwrap();
    let pending = SyncFile::for_fence(owner.id(), 2).unwrap();
    drop(owner);
    assert!(
        pending.wait(Duration::from_secs(5)).unwrap(),
        "not left hanging"
    );
    assert_eq!(pending.info().unwrap().status, -libc::ECANCELED);
    assert_eq!(
        done.info().unwrap().status,
        1,
        "what was signalled stays so"
    );
}

#[test]
fn the_timeline_page_answers_busy_checks_wakes_on_progress_and_is_read_only() {
    let _turn = SYNCD.lock().unwrap_or_else(|e| e.into_inner());
    let _d = start();
    let owner = TimelineOwner::create("page").unwrap();
    let page = TimelinePage::open().unwrap();
    assert_eq!(page.last_signaled(owner.id()), Some(0));
    // The handle sleeps until a timeline moves, and again once acknowledged.
    assert!(!poll_readable(page.poll_fd().unwrap(), 0));
    owner.signal(42).unwrap();
    assert_eq!(page.last_signaled(owner.id()), Some(42));
    assert!(poll_readable(page.poll_fd().unwrap(), 5000));
    let moves = page.acknowledge().unwrap();
    assert!(!poll_readable(page.poll_fd().unwrap(), 0));
    owner.signal(43).unwrap();
    assert!(poll_readable(page.poll_fd().unwrap(), 5000));
    assert_eq!(page.acknowledge().unwrap(), moves + 1);
    // The second page holds the highest failed point, so a waiter asks
    // for a status only when a point may have failed; an abandoned
    // timeline fails everything past its last point.
    assert_eq!(page.last_failed(owner.id()), Some(0));
    owner.fail(45, libc::EIO).unwrap();
    owner.signal(46).unwrap();
    assert_eq!(page.last_signaled(owner.id()), Some(46));
    assert_eq!(page.last_failed(owner.id()), Some(45));
    let id = owner.id();
    drop(owner);
    let deadline = Instant::now() + Duration::from_secs(5);
    while page.last_failed(id) != Some(u64::MAX) {
        assert!(Instant::now() < deadline, "never abandoned");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(page.last_signaled(id), Some(46));
    assert_eq!(page.last_failed(sync_client::api::PAGE_SLOTS), None);
    let fd = SchemeFd::open("/scheme/sync/timelines", 0).unwrap();
    let err = fd.mmap(0, sync_client::api::PAGE_LEN, true).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EACCES));
}

#[test]
fn the_page_handle_makes_sync_files_without_a_new_connection() {
    let _turn = SYNCD.lock().unwrap_or_else(|e| e.into_inner());
    let _d = start();
    let owner = TimelineOwner::create("dup").unwrap();
    let page = TimelinePage::open().unwrap();
    let fence = page.sync_file(owner.id(), 5).unwrap();
    // The same sync_file as opening fence/<timeline>/<point> gives.
    let opened = SyncFile::for_fence(owner.id(), 5).unwrap();
    assert_eq!(fence.info().unwrap().status, 0);
    assert!(!fence.wait(Duration::from_millis(0)).unwrap());
    owner.signal(5).unwrap();
    assert!(fence.wait(Duration::from_secs(5)).unwrap());
    assert_eq!(fence.info().unwrap().status, 1);
    assert_eq!(opened.info().unwrap().status, 1);
    assert!(fence
        .merge(&opened, "both")
        .unwrap()
        .wait(Duration::from_secs(5))
        .unwrap());
    // An unknown timeline is ENOENT, a malformed reference EINVAL.
    let err = page.sync_file(owner.id() + 100, 1).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    let fd = SchemeFd::open("/scheme/sync/timelines", 0).unwrap();
    assert_eq!(
        fd.dup(&[0u8; 5]).unwrap_err().raw_os_error(),
        Some(libc::EINVAL)
    );
}

#[test]
fn syncobjs_over_the_scheme_follow_the_linux_rules() {
    let _turn = SYNCD.lock().unwrap_or_else(|e| e.into_inner());
    let _d = start();
    let t = SyncobjTable::open().unwrap();
    let errno = |r: std::io::Result<u32>| r.unwrap_err().raw_os_error();
    let signaled = t.create(true).unwrap();
    let empty = t.create(false).unwrap();
    assert_ne!(signaled, empty);
    // A signalled syncobj completes a wait at once, even with a past deadline.
    assert_eq!(t.wait(&[signaled], None, 0, 0).unwrap(), 0);
    // An empty one without WAIT_FOR_SUBMIT is EINVAL; with it, a timeout is ETIME.
    assert_eq!(
        errno(t.wait(&[empty], None, now_ns() + 1_000_000, 0)),
        Some(libc::EINVAL)
    );
    let soon = now_ns() + 50_000_000;
    let flags = so::WAIT_FLAGS_WAIT_FOR_SUBMIT;
    assert_eq!(
        errno(t.wait(&[empty], None, soon, flags)),
        Some(libc::ETIME)
    );
    // Any-of returns the index of a signalled one.
    assert_eq!(t.wait(&[empty, signaled], None, 0, flags).unwrap(), 1);
    // Unknown handles and flags.
    assert_eq!(errno(t.wait(&[999], None, 0, 0)), Some(libc::ENOENT));
    assert_eq!(
        errno(t.wait(&[signaled], None, 0, 0x80)),
        Some(libc::EINVAL)
    );
    assert_eq!(
        t.destroy(999).unwrap_err().raw_os_error(),
        Some(libc::EINVAL)
    );
    // A wait parked on WAIT_FOR_SUBMIT wakes when another thread signals.
    std::thread::scope(|s| {
        let h = s.spawn(|| t.wait(&[empty], None, now_ns() + 5_000_000_000, flags));
        std::thread::sleep(Duration::from_millis(50));
        let other = SyncobjTable::open().unwrap();
        let shared = other.import(&t.export(empty).unwrap()).unwrap();
        other.signal(&[shared]).unwrap();
        assert_eq!(h.join().unwrap().unwrap(), 0);
    });
    // Timeline points: signal, query, transfer.
    let tl = t.create(false).unwrap();
    t.timeline_signal(&[tl, tl], &[1, 2]).unwrap();
    assert_eq!(t.query(&[tl], 0).unwrap(), vec![2]);
    let bin = t.create(false).unwrap();
    t.transfer(tl, 2, bin, 0, 0).unwrap();
    assert_eq!(t.wait(&[bin], None, 0, 0).unwrap(), 0);
    // sync_file export and import round trip a real fence.
    let owner = TimelineOwner::create("gpu").unwrap();
    let file = SyncFile::for_fence(owner.id(), 10).unwrap();
    let imported = t.create(false).unwrap();
    t.import_sync_file(imported, &file, None).unwrap();
    assert_eq!(errno(t.wait(&[imported], None, 0, 0)), Some(libc::ETIME));
    owner.signal(10).unwrap();
    assert_eq!(t.wait(&[imported], None, 0, 0).unwrap(), 0);
    let out = t.export_sync_file(imported, None).unwrap();
    assert!(out.wait(Duration::ZERO).unwrap());
    t.reset(&[imported]).unwrap();
    assert!(
        t.export_sync_file(imported, None).is_err(),
        "no fence to export"
    );
}

#[test]
fn a_waiter_killed_mid_wait_leaves_nothing_behind() {
    let _turn = SYNCD.lock().unwrap_or_else(|e| e.into_inner());
    let d = start();
    let (mut child, _out) = waiter(&["wait-syncobj"]);
    assert_eq!(stat(&d, "tables"), 1);
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while stat(&d, "tables") != 0 || stat(&d, "syncobjs") != 0 {
        assert!(Instant::now() < deadline, "{}", stats(&d));
        std::thread::sleep(Duration::from_millis(10));
    }
    // And syncd keeps serving.
    assert!(SyncobjTable::open().unwrap().create(true).is_ok());
}

/// syncd's resident memory in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap()
}

#[test]
fn ten_thousand_fences_leave_memory_flat() {
    let _turn = SYNCD.lock().unwrap_or_else(|e| e.into_inner());
    let d = start();
    let owner = TimelineOwner::create("many").unwrap();
    let cycle = |from: u64, to: u64| {
        for point in from..to {
            let file = SyncFile::for_fence(owner.id(), point).unwrap();
            owner.signal(point).unwrap();
            assert!(file.wait(Duration::ZERO).unwrap());
        }
    };
    cycle(1, 1001); // warm up the allocator
    let before = rss_kib(d.pid());
    cycle(1001, 11_001);
    let after = rss_kib(d.pid());
    assert_eq!(stat(&d, "sync_files"), 0);
    assert_eq!(stat(&d, "tokens"), 0);
    assert!(
        after <= before + 512,
        "RSS grew from {before} KiB to {after} KiB over 10,000 fences"
    );
}

/// A process's voluntary context switches so far (its wake-ups).
fn wakeups(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

/// syncd kept every timed wait's deadline after the wait was done: after
/// the first one it woke every millisecond forever.
#[test]
fn test_regression_a_timed_wait_leaves_syncd_asleep_once_it_is_over() {
    let _turn = SYNCD.lock().unwrap_or_else(|e| e.into_inner());
    let d = start();
    let table = SyncobjTable::open().unwrap();
    let handle = table.create(false).unwrap();
    let owner = TimelineOwner::create("deadline-test").unwrap();
    let file = SyncFile::for_fence(owner.id(), 1).unwrap();
    table.import_sync_file(handle, &file, None).unwrap();
    // One wait that times out, one that is answered before its deadline.
    let soon = now_ns() + 50_000_000;
    let err = table.wait(&[handle], None, soon, 0).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ETIME));
    let waiter = std::thread::spawn(move || {
        let later = now_ns() + 200_000_000;
        table.wait(&[handle], None, later, 0).map(drop)
    });
    std::thread::sleep(Duration::from_millis(50));
    owner.signal(1).unwrap();
    waiter.join().unwrap().unwrap();
    // Past both deadlines, syncd sleeps.
    std::thread::sleep(Duration::from_millis(300));
    let before = wakeups(d.pid());
    std::thread::sleep(Duration::from_secs(1));
    let woke = wakeups(d.pid()) - before;
    assert!(
        woke < 20,
        "syncd woke {woke} times in a second with nothing to do"
    );
}

/// EXECBUFFER's post-dependencies (SUBMIT_DEPS, CHECK_DEPS): all or
/// nothing, and every bad argument a clear errno with the table, its
/// syncobjs and another client's table as they were.
#[test]
fn submit_deps_is_all_or_nothing_and_refuses_every_bad_argument() {
    use drm_uapi::wire::Builder;
    use sync_client::api::{OutSyncobj, SubmitDeps, CHECK_DEPS, SUBMIT_DEPS};
    use zerocopy::IntoBytes;

    let _turn = SYNCD.lock().unwrap_or_else(|e| e.into_inner());
    let d = start();
    let owner = TimelineOwner::create("submits").unwrap();
    let tl = owner.id();
    let t = SyncobjTable::open().unwrap();
    let other = SyncobjTable::open().unwrap();
    let theirs = other.create(true).unwrap();
    let (a, b, r) = (
        t.create(false).unwrap(),
        t.create(false).unwrap(),
        t.create(true).unwrap(),
    );
    let gone = t.create(false).unwrap();
    t.destroy(gone).unwrap();
    // 0: signalled, ETIME: pending, EINVAL: no fence.
    let status = |t: &SyncobjTable, h: u32| match t.wait(&[h], None, 0, 0) {
        Ok(_) => 0,
        Err(e) => e.raw_os_error().unwrap(),
    };
    let unchanged = |what: &str| {
        assert_eq!(status(&t, a), libc::EINVAL, "{what}: a changed");
        assert_eq!(status(&t, b), libc::EINVAL, "{what}: b changed");
        assert_eq!(status(&t, r), 0, "{what}: r was reset");
        assert_eq!(status(&other, theirs), 0, "{what}: another table changed");
    };
    let errno = |r: std::io::Result<()>| r.unwrap_err().raw_os_error();
    let outs = [(a, 0), (b, 5)];
    for (what, tl, outs, resets, want) in [
        ("unknown timeline", 9999, &outs[..], &[r][..], libc::ENOENT),
        (
            "unknown out",
            tl,
            &[(a, 0), (b + 100, 0)][..],
            &[r][..],
            libc::ENOENT,
        ),
        ("unknown reset", tl, &outs[..], &[r, 0][..], libc::ENOENT),
        (
            "another table's handle",
            tl,
            &[(a, 0), (theirs + 50, 0)][..],
            &[][..],
            libc::ENOENT,
        ),
        ("destroyed handle", tl, &outs[..], &[gone][..], libc::ENOENT),
        (
            "u32::MAX handle",
            tl,
            &[(u32::MAX, 0)][..],
            &[][..],
            libc::ENOENT,
        ),
    ] {
        assert_eq!(
            errno(t.submit_deps(tl, None, outs, resets)),
            Some(want),
            "check: {what}"
        );
        assert_eq!(
            errno(t.submit_deps(tl, Some(1), outs, resets)),
            Some(want),
            "{what}"
        );
        unchanged(what);
    }
    // Raw payloads: huge counts (not carried), a short header, pads,
    // trailing bytes.
    let header = |count_outs, count_resets, pad| SubmitDeps {
        timeline: tl,
        pad,
        point: 1,
        count_outs,
        count_resets,
    };
    let out = |pad| OutSyncobj {
        handle: a,
        pad,
        point: 0,
    };
    let raw = [
        (
            "huge outs",
            Builder::new(&header(u32::MAX, 0, 0)).build(),
            libc::ENOMEM,
        ),
        (
            "huge resets",
            Builder::new(&header(0, u32::MAX, 0)).build(),
            libc::ENOMEM,
        ),
        (
            "short header",
            header(1, 0, 0).as_bytes()[..20].to_vec(),
            libc::EINVAL,
        ),
        (
            "header pad",
            Builder::new(&header(1, 0, 7)).array(&[out(0)]).build(),
            libc::EINVAL,
        ),
        (
            "out pad",
            Builder::new(&header(1, 0, 0)).array(&[out(1)]).build(),
            libc::EINVAL,
        ),
        (
            "missing out",
            Builder::new(&header(2, 0, 0)).array(&[out(0)]).build(),
            libc::EINVAL,
        ),
        (
            "trailing bytes",
            Builder::new(&header(1, 0, 0))
                .array(&[out(0)])
                .array(&[0u32])
                .build(),
            libc::EINVAL,
        ),
        ("empty payload", Vec::new(), libc::EINVAL),
    ];
    for (what, payload, want) in raw {
        for nr in [CHECK_DEPS, SUBMIT_DEPS] {
            let mut p = payload.clone();
            let r = t.ioctl(nr, &mut p).map(drop);
            assert_eq!(errno(r), Some(want), "{what} ({nr:#x})");
        }
        unchanged(what);
    }
    // Nothing to do is done: zero counts.
    t.submit_deps(tl, None, &[], &[]).unwrap();
    t.submit_deps(tl, Some(1), &[], &[]).unwrap();
    unchanged("zero counts");
    // CHECK_DEPS of good handles changes nothing either.
    t.submit_deps(tl, None, &outs, &[r]).unwrap();
    unchanged("check");
    // The real thing: both outs get fence 1 of the timeline (b at its
    // point 5), r is reset; the fence signals with the timeline.
    t.submit_deps(tl, Some(1), &outs, &[r]).unwrap();
    assert_eq!(status(&t, a), libc::ETIME);
    assert_eq!(t.query(&[b], 0).unwrap(), [0]);
    assert_eq!(status(&t, r), libc::EINVAL, "r was not reset");
    owner.signal(1).unwrap();
    assert_eq!(status(&t, a), 0);
    assert_eq!(t.query(&[b], 0).unwrap(), [5]);
    assert_eq!(status(&other, theirs), 0);
    // The table still serves, and so does syncd.
    t.create(false).unwrap();
    assert!(stat(&d, "tables") >= 2);
}
