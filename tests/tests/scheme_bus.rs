//! The scheme seam on Linux, across real processes: a daemon built on it
//! (`test-scheme`) and clients in this process and in child processes.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use scheme_seam::linux::wire::{self, Reply, Request};
use scheme_seam::{EventFlags, SchemeFd};
use stack_tests::{bus_dir, poll_readable, Daemon};

const BIN: &str = env!("CARGO_BIN_EXE_test-scheme");

fn start(name: &str) -> Daemon {
    Daemon::start(Path::new(BIN), &["serve", name], name)
}

fn stats(d: &Daemon) -> String {
    let fd = d.open("stats");
    let mut buf = [0u8; 64];
    let n = fd.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn signal(d: &Daemon, key: &str, value: u64) {
    d.open(&format!("signal/{key}"))
        .write(&value.to_le_bytes())
        .unwrap();
}

#[test]
fn open_read_write_call_round_trips_with_metadata() {
    let d = start("roundtrip");
    let fd = d.open("echo");
    assert_eq!(fd.write(b"hello").unwrap(), 5);
    let mut buf = [0u8; 16];
    assert_eq!(fd.read(&mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"hello");
    let mut payload = [1u8, 2, 255];
    assert_eq!(fd.call(&mut payload, &[40, 2, 100]).unwrap(), 142);
    assert_eq!(payload, [2, 3, 0]);
    // More than three metadata words is refused.
    let err = fd.call(&mut payload, &[1, 2, 3, 4]).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    // Unknown paths and operations get clear errnos.
    let err = SchemeFd::open(&d.path("nope"), 0).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    let stats = d.open("stats");
    assert_eq!(
        stats.call(&mut [], &[]).unwrap_err().raw_os_error(),
        Some(libc::ENOSYS)
    );
    // dup makes an independent handle of the same scheme.
    let copy = SchemeFd::from_fd(fd.dup(b"").unwrap());
    copy.write(b"other").unwrap();
    assert_eq!(fd.read(&mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"hello");
}

#[test]
fn a_parked_call_is_answered_later_while_others_are_served() {
    let d = start("parking");
    let waiter = std::thread::spawn({
        let path = d.path("wait/k1");
        move || {
            SchemeFd::open(&path, 0)
                .unwrap()
                .call(&mut [], &[])
                .unwrap()
        }
    });
    // While it is parked, other clients get answers.
    std::thread::sleep(Duration::from_millis(100));
    let echo = d.open("echo");
    for i in 0..100u64 {
        assert_eq!(echo.call(&mut [0], &[i]).unwrap(), i as usize);
    }
    assert!(!waiter.is_finished(), "the waiter is still parked");
    signal(&d, "k1", 7);
    assert_eq!(waiter.join().unwrap(), 7);
}

#[test]
fn a_nonblocking_call_answers_eagain_instead_of_parking() {
    let d = start("nonblock");
    let fd = SchemeFd::open(&d.path("wait/k"), libc::O_NONBLOCK as usize).unwrap();
    let err = fd.call(&mut [], &[]).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EAGAIN));
    // try_call is the same for one call on a blocking handle.
    let blocking = d.open("wait/k");
    let err = blocking.try_call(&mut [], &[]).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EAGAIN));
    // The metadata bit that carries the flag on Redox is no call number.
    let echo = d.open("echo");
    let err = echo
        .call(&mut [], &[scheme_seam::CALL_NONBLOCK])
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    assert!(stats(&d).ends_with(" runs=2"), "{}", stats(&d));
}

/// The `runs=N` of the stats: how often parked waits ran.
fn runs(d: &Daemon) -> usize {
    let s = stats(d);
    s.rsplit_once("runs=").unwrap().1.parse().unwrap()
}

#[test]
fn a_parked_call_runs_again_only_when_its_key_is_woken() {
    let d = start("keyed");
    let waiter = std::thread::spawn({
        let path = d.path("wait/mine");
        move || {
            SchemeFd::open(&path, 0)
                .unwrap()
                .call(&mut [], &[])
                .unwrap()
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while runs(&d) == 0 {
        assert!(Instant::now() < deadline, "never parked");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Other requests, and another key's signal, leave it alone.
    let echo = d.open("echo");
    for i in 0..50u64 {
        echo.call(&mut [0], &[i]).unwrap();
    }
    signal(&d, "other", 1);
    assert_eq!(runs(&d), 1, "re-run without its key");
    assert!(!waiter.is_finished());
    signal(&d, "mine", 9);
    assert_eq!(waiter.join().unwrap(), 9);
    assert_eq!(runs(&d), 1, "answered on the run its key caused");
}

#[test]
fn a_parked_call_answers_at_the_deadline_the_seam_kept() {
    let d = start("timed");
    let fd = d.open("timed/never/150");
    let began = Instant::now();
    // Unrelated wake-ups in between do not restart its clock.
    let noise = std::thread::spawn({
        let d = d.path("signal/noise");
        move || {
            for i in 0..10u64 {
                SchemeFd::open(&d, 0)
                    .unwrap()
                    .write(&i.to_le_bytes())
                    .unwrap();
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    });
    let err = fd.call(&mut [], &[]).unwrap_err();
    let waited = began.elapsed();
    noise.join().unwrap();
    assert_eq!(err.raw_os_error(), Some(libc::ETIME));
    assert!(
        waited >= Duration::from_millis(150),
        "answered early: {waited:?}"
    );
    assert_eq!(runs(&d), 1, "parked once, then ran at its deadline only");
    // Signalled before its deadline, it answers the value.
    let fd = d.open("timed/soon/60000");
    let waiter = std::thread::spawn(move || fd.call(&mut [], &[]).unwrap());
    while runs(&d) < 2 {
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(&d, "soon", 4);
    assert_eq!(waiter.join().unwrap(), 4);
}

#[test]
fn one_handle_serves_a_second_thread_while_the_first_is_parked() {
    let d = start("sharedfd");
    let fd = std::sync::Arc::new(d.open("wait/k2"));
    let parked = std::thread::spawn({
        let fd = fd.clone();
        move || fd.call(&mut [], &[]).unwrap()
    });
    std::thread::sleep(Duration::from_millis(50));
    // A second request on the same handle is not held up by the first.
    let err = fd.read(&mut [0u8; 4]).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBADF));
    signal(&d, "k2", 3);
    assert_eq!(parked.join().unwrap(), 3);
}

#[test]
fn a_caller_killed_while_parked_is_cleaned_up() {
    let d = start("killed");
    let mut client = Command::new(BIN)
        .args(["wait", "killed", "never"])
        .env(scheme_seam::linux::SCHEME_DIR, bus_dir())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(client.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "parked");
    // Its handle is open while it waits (the stats handle is the other).
    assert!(stats(&d).starts_with("open=2 "), "{}", stats(&d));
    client.kill().unwrap();
    client.wait().unwrap();
    // The daemon closes the dead client's handle and forgets its call.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !stats(&d).starts_with("open=1 ") {
        assert!(Instant::now() < deadline, "still {}", stats(&d));
        std::thread::sleep(Duration::from_millis(10));
    }
    // And it keeps working: signalling the key wakes nobody and hurts nothing.
    signal(&d, "never", 1);
    let echo = d.open("echo");
    assert_eq!(echo.call(&mut [], &[5]).unwrap(), 5);
}

#[test]
fn readiness_is_seen_by_a_poller() {
    let d = start("events");
    let fd = d.open("event/e1");
    assert_eq!(fd.fevent(EventFlags::READ).unwrap(), EventFlags::empty());
    let pollable = fd.poll_fd().unwrap();
    assert!(!poll_readable(pollable, 0), "not ready before the signal");
    let poller = std::thread::scope(|s| {
        let h = s.spawn(|| poll_readable(pollable, 5000));
        std::thread::sleep(Duration::from_millis(50));
        signal(&d, "e1", 99);
        h.join().unwrap()
    });
    assert!(poller, "the poller woke");
    let mut buf = [0u8; 8];
    assert_eq!(fd.read(&mut buf).unwrap(), 8);
    assert_eq!(u64::from_le_bytes(buf), 99);
    // A blocking read on a not-yet-signalled key parks until the signal.
    let late = d.open("event/e2");
    std::thread::scope(|s| {
        let h = s.spawn(|| {
            let mut b = [0u8; 8];
            late.read(&mut b).unwrap();
            u64::from_le_bytes(b)
        });
        std::thread::sleep(Duration::from_millis(50));
        signal(&d, "e2", 5);
        assert_eq!(h.join().unwrap(), 5);
    });
}

#[test]
fn mmap_shares_memory_between_daemon_and_client() {
    let d = start("shm");
    let fd = d.open("shm");
    let map = fd.mmap(4096, 8192, true).unwrap();
    // Written by the client, read by the daemon.
    map.write_bytes(0, b"client wrote");
    let whole = fd.mmap(0, 32 * 1024, true).unwrap();
    let mut buf = [0u8; 12];
    whole.read_bytes(4096, &mut buf);
    assert_eq!(&buf, b"client wrote");
    // Written by the daemon, read by the client.
    fd.write(b"daemon wrote").unwrap();
    whole.read_bytes(0, &mut buf);
    assert_eq!(&buf, b"daemon wrote");
    // The daemon read what the client put at its start.
    whole.write_bytes(0, b"at the start");
    let mut back = [0u8; 12];
    fd.read(&mut back).unwrap();
    assert_eq!(&back, b"at the start");
    // The read-only half: refused writable, readable read-only, and the
    // mapping really is read-only (the kernel enforces it).
    let err = fd.mmap(32 * 1024, 4096, true).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EACCES));
    let ro = fd.mmap(32 * 1024, 32 * 1024, false).unwrap();
    assert!(!ro.is_writable());
    let all = fd.mmap(0, 64 * 1024, false).unwrap();
    let mut first = [0u8; 12];
    all.read_bytes(0, &mut first);
    assert_eq!(&first, b"at the start");
    drop(ro);
    // Out of range is refused.
    assert_eq!(
        fd.mmap(0, 128 * 1024, true).unwrap_err().raw_os_error(),
        Some(libc::EINVAL)
    );
}

#[test]
fn fds_pass_in_both_directions() {
    let d = start("fdpass");
    let fd = d.open("fds");
    // Client to daemon: the daemon writes into our pipe.
    let (mut read, write) = std::io::pipe().unwrap();
    assert_eq!(fd.send_fds(&[write.as_fd()], 0).unwrap(), 1);
    drop(write);
    let mut got = String::new();
    read.read_to_string(&mut got).unwrap();
    assert_eq!(got, "from-daemon");
    // Daemon to client: a pipe the daemon filled.
    let theirs = fd.dup(b"pipe").unwrap();
    let mut got = String::new();
    std::fs::File::from(theirs)
        .read_to_string(&mut got)
        .unwrap();
    assert_eq!(got, "to-client");
    // A send without descriptors is refused.
    assert_eq!(
        fd.send_fds(&[], 0).unwrap_err().raw_os_error(),
        Some(libc::EINVAL)
    );
}

#[test]
fn sixty_four_concurrent_clients() {
    let d = start("many");
    std::thread::scope(|s| {
        for c in 0..64u64 {
            let d = &d;
            s.spawn(move || {
                let fd = d.open("echo");
                for i in 0..50u64 {
                    let mut payload = [c as u8, i as u8];
                    assert_eq!(fd.call(&mut payload, &[c, i]).unwrap(), (c + i) as usize);
                    assert_eq!(payload, [c as u8 + 1, i as u8 + 1]);
                }
            });
        }
    });
    assert!(stats(&d).starts_with("open=1 "), "{}", stats(&d));
}

#[test]
fn malformed_frames_get_errors_and_the_daemon_keeps_serving() {
    let d = start("malformed");
    let sock = bus_dir().join("malformed");
    // A request before Open is refused, and that connection is closed.
    let mut fresh = UnixStream::connect(&sock).unwrap();
    fresh
        .write_all(&wire::encode(5, &Request::Fevent { flags: 1 }))
        .unwrap();
    assert_eq!(read_reply(&mut fresh), (5, Reply::Error(libc::EBADF)));
    assert_eq!(fresh.read(&mut [0u8; 1]).unwrap(), 0, "closed");
    // On an open handle, a body that does not decode gets EINVAL with its
    // tag, and the handle stays usable.
    let mut raw = UnixStream::connect(&sock).unwrap();
    let open = Request::Open {
        path: "echo".into(),
        flags: 0,
    };
    raw.write_all(&wire::encode(1, &open)).unwrap();
    assert!(matches!(read_reply(&mut raw), (1, Reply::Value(_))));
    let mut frame = 9u32.to_le_bytes().to_vec();
    frame.extend_from_slice(&1234u32.to_le_bytes());
    frame.extend_from_slice(&[0xFF; 5]);
    raw.write_all(&frame).unwrap();
    assert_eq!(read_reply(&mut raw), (1234, Reply::Error(libc::EINVAL)));
    let call = Request::Call {
        payload: vec![7],
        metadata: vec![3],
        nonblock: false,
    };
    raw.write_all(&wire::encode(2, &call)).unwrap();
    assert_eq!(
        read_reply(&mut raw),
        (
            2,
            Reply::Data {
                value: 3,
                data: vec![8]
            }
        )
    );
    // Impossible lengths cost only their frames (the connection once
    // closed, killing the caller's fd): one too long, really sent, is
    // answered EMSGSIZE with its tag; one too short to hold a tag is
    // skipped; the handle goes on.
    let long = wire::MAX_FRAME + 1;
    let mut huge = (long as u32).to_le_bytes().to_vec();
    huge.extend_from_slice(&77u32.to_le_bytes());
    huge.resize(4 + long, 0);
    huge.extend_from_slice(&[1, 0, 0, 0, 0xEE]);
    huge.extend_from_slice(&wire::encode(3, &call));
    raw.write_all(&huge).unwrap();
    assert_eq!(read_reply(&mut raw), (77, Reply::Error(libc::EMSGSIZE)));
    assert!(matches!(
        read_reply(&mut raw),
        (3, Reply::Data { value: 3, .. })
    ));
    // Everyone else is unaffected.
    let fd = d.open("echo");
    assert_eq!(fd.call(&mut [], &[1, 1]).unwrap(), 2);
    // The client refuses a request whose answer could not come back.
    let mut big = vec![0u8; wire::MAX_FRAME];
    assert_eq!(
        fd.call(&mut big, &[1]).unwrap_err().raw_os_error(),
        Some(libc::EMSGSIZE)
    );
    assert_eq!(fd.call(&mut [], &[1, 1]).unwrap(), 2);

    fn read_reply(s: &mut UnixStream) -> (u32, Reply) {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; u32::from_le_bytes(len) as usize];
        s.read_exact(&mut body).unwrap();
        let (tag, reply) = wire::decode::<Reply>(&body);
        (tag, reply.unwrap())
    }
}

/// A client pipelining waits on one connection (tagged requests, as the bus
/// allows) cannot make the daemon hold more than 256 of them: the rest are
/// not read until some are answered, and then all are.
#[test]
fn a_connection_pipelining_waits_parks_a_bounded_number_and_the_rest_wait_their_turn() {
    let d = start("pipelined");
    let mut raw = UnixStream::connect(bus_dir().join("pipelined")).unwrap();
    let open = Request::Open {
        path: "wait/later".into(),
        flags: 0,
    };
    raw.write_all(&wire::encode(1, &open)).unwrap();
    const WAITS: u32 = 2000;
    let mut writer = raw.try_clone().unwrap();
    let flood = std::thread::spawn(move || {
        let call = Request::Call {
            payload: vec![0; 64],
            metadata: vec![],
            nonblock: false,
        };
        for tag in 0..WAITS {
            writer.write_all(&wire::encode(100 + tag, &call)).unwrap();
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while runs(&d) < 256 {
        assert!(Instant::now() < deadline, "parked only {}", runs(&d));
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(runs(&d), 256, "parked beyond the bound");
    // Everyone else is served meanwhile.
    assert_eq!(d.open("echo").call(&mut [], &[2, 3]).unwrap(), 5);
    signal(&d, "later", 9);
    let mut len = [0u8; 4];
    // The Open's reply first, then every wait's, in order.
    for expect in std::iter::once(1).chain(100..100 + WAITS) {
        raw.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; u32::from_le_bytes(len) as usize];
        raw.read_exact(&mut body).unwrap();
        let (tag, reply) = wire::decode::<Reply>(&body);
        assert_eq!(tag, expect);
        if tag != 1 {
            assert!(
                matches!(reply, Ok(Reply::Data { value: 9, .. })),
                "{reply:?}"
            );
        }
    }
    flood.join().unwrap();
    assert_eq!(runs(&d), 256, "the rest were answered without parking");
}

/// A daemon's resident memory in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap()
}

#[test]
fn a_client_that_never_reads_its_answers_cannot_make_the_daemon_queue_without_bound() {
    let d = start("unread");
    let mut raw = UnixStream::connect(bus_dir().join("unread")).unwrap();
    let open = Request::Open {
        path: "echo".into(),
        flags: 0,
    };
    raw.write_all(&wire::encode(1, &open)).unwrap();
    // 512 MiB of calls whose answers echo 1 MiB each, never read.
    let mut writer = raw.try_clone().unwrap();
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let flood = std::thread::spawn({
        let written = written.clone();
        move || {
            let call = Request::Call {
                payload: vec![0x5A; 1 << 20],
                metadata: vec![1],
                nonblock: false,
            };
            let frame = wire::encode(2, &call);
            while written.load(Ordering::Relaxed) < 512 && writer.write_all(&frame).is_ok() {
                written.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    // Until the flood stops moving (the daemon stopped reading it) or ends.
    let mut last = usize::MAX;
    let deadline = Instant::now() + Duration::from_secs(120);
    while written.load(Ordering::Relaxed) != last && !flood.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the flood neither ends nor stalls"
        );
        last = written.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        !flood.is_finished(),
        "the daemon read all {} calls whose answers nobody reads",
        written.load(Ordering::Relaxed)
    );
    // Others are served, and the daemon holds a bounded backlog.
    assert_eq!(d.open("echo").call(&mut [], &[1, 1]).unwrap(), 2);
    let rss = rss_kib(d.pid());
    assert!(rss < 256 << 10, "daemon resident set {rss} KiB");
    raw.shutdown(std::net::Shutdown::Both).unwrap();
    flood.join().unwrap();
    assert_eq!(d.open("echo").call(&mut [], &[2, 2]).unwrap(), 4);
}

#[test]
fn sigterm_cancels_parked_requests_and_exits_cleanly() {
    let mut d = start("term");
    let waiter = std::thread::spawn({
        let path = d.path("wait/forever");
        move || SchemeFd::open(&path, 0).unwrap().call(&mut [], &[])
    });
    std::thread::sleep(Duration::from_millis(100));
    let status = d.terminate();
    assert!(status.success(), "{status:?}");
    let err = waiter.join().unwrap().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ECANCELED));
    assert!(!bus_dir().join("term").exists(), "socket removed");
}

#[test]
fn opening_a_missing_scheme_fails_cleanly() {
    bus_dir();
    let err = SchemeFd::open("/scheme/no-such-scheme/x", 0).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    assert!(SchemeFd::open("/not/a/scheme", 0).is_err());
}
