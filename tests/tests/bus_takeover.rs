//! A bus server killed and started again under a file-descriptor store
//! (this test plays the supervisor): the next instance serves the same
//! socket and every connection, whatever state each was in when the first
//! died — about to open, opened, parked, in the middle of a frame's
//! header, in the middle of a frame's body, in the middle of a large
//! answer — with framing intact and every request the dead one took
//! answered.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scheme_seam::daemon::Started;
use scheme_seam::linux::fdstore::{self, Held, FDSTORE_ENV};
use scheme_seam::linux::frames::FrameReader;
use scheme_seam::linux::wire::{decode, encode, Reply, Request};
use stack_tests::bus_dir;

const BIN: &str = env!("CARGO_BIN_EXE_test-scheme");
const NAME: &str = "takeover";
const STORE_FD: i32 = 4;

/// One instance of the test scheme with its store socket served on a
/// thread, over descriptors held across instances.
fn start(held: &Arc<Mutex<Held>>) -> Started {
    let (ours, theirs) = fdstore::pair().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", NAME])
        .env(scheme_seam::linux::SCHEME_DIR, bus_dir())
        .env(FDSTORE_ENV, STORE_FD.to_string());
    let (started, mut ready) = Started::spawn(cmd, &[(theirs.as_raw_fd(), STORE_FD)]).unwrap();
    drop(theirs);
    let held = held.clone();
    std::thread::spawn(move || {
        let ours: OwnedFd = ours;
        while held
            .lock()
            .unwrap()
            .serve(ours.as_raw_fd())
            .unwrap_or(false)
        {}
    });
    let mut byte = [0u8];
    ready.read_exact(&mut byte).expect("the scheme is ready");
    started
}

/// A raw connection to the scheme, frames written and read by hand.
struct Raw {
    stream: UnixStream,
    reader: FrameReader,
}

impl Raw {
    fn connect() -> Raw {
        Raw {
            stream: UnixStream::connect(bus_dir().join(NAME)).unwrap(),
            reader: FrameReader::default(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    fn reply(&mut self) -> (u32, Reply) {
        self.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        loop {
            if let Some(frame) = self.reader.next_frame() {
                let frame = frame.expect("a well-formed frame");
                let (tag, reply) = decode::<Reply>(&frame.bytes);
                return (tag, reply.expect("a reply that decodes"));
            }
            assert!(
                self.reader
                    .fill(self.stream.as_raw_fd())
                    .expect("an answer")
                    > 0,
                "the connection closed"
            );
        }
    }

    fn open(&mut self, tag: u32, path: &str) -> Reply {
        self.send(&open(tag, path));
        let (t, reply) = self.reply();
        assert_eq!(t, tag);
        reply
    }
}

fn open(tag: u32, path: &str) -> Vec<u8> {
    encode(
        tag,
        &Request::Open {
            path: path.into(),
            flags: 0,
        },
    )
}

fn call(tag: u32, payload: Vec<u8>) -> Vec<u8> {
    encode(
        tag,
        &Request::Call {
            payload,
            metadata: vec![1],
            nonblock: false,
        },
    )
}

#[test]
fn every_connection_goes_on_with_the_next_instance_whatever_state_it_was_in() {
    let held = Arc::new(Mutex::new(Held::default()));
    let mut first = start(&held);

    let mut opened = Raw::connect();
    assert!(matches!(opened.open(1, "echo"), Reply::Value(_)));
    let mut parked = Raw::connect();
    assert!(matches!(parked.open(1, "wait/k"), Reply::Value(_)));
    parked.send(&call(2, vec![]));
    let mut unopened = Raw::connect();
    // Five bytes of an open's header, and an open cut inside its body.
    let mut header_cut = Raw::connect();
    let whole_open = open(7, "echo");
    header_cut.send(&whole_open[..5]);
    let mut body_cut = Raw::connect();
    let long_open = open(8, &format!("echo{}", "/x".repeat(200)));
    body_cut.send(&long_open[..40]);
    // An answer far larger than the socket holds: sent in part, then the
    // server dies with the rest.
    let mut big = Raw::connect();
    assert!(matches!(big.open(1, "echo"), Reply::Value(_)));
    let payload: Vec<u8> = (0..8 << 20).map(|i| i as u8).collect();
    big.send(&call(2, payload.clone()));
    // Until the server has taken the call and begun its answer, then a
    // moment for it to fill the socket.
    assert!(
        stack_tests::poll_readable(big.stream.as_fd(), 20_000),
        "the big answer begins"
    );
    std::thread::sleep(Duration::from_millis(200));

    // SAFETY: signalling the test's own child.
    unsafe { libc::kill(first.pid() as libc::pid_t, libc::SIGKILL) };
    let _ = first.terminate();
    let second = start(&held);

    // The big answer arrives whole, its bytes as the first instance made them.
    let (tag, reply) = big.reply();
    assert_eq!(tag, 2);
    let Reply::Data { value, data } = reply else {
        panic!("the big call's answer: {reply:?}");
    };
    assert_eq!(value, 1);
    assert!(data
        .iter()
        .zip(&payload)
        .all(|(&d, &p)| d == p.wrapping_add(1)));
    // Opened handles died with the first instance: ENODEV, the parked
    // request answered too.
    assert_eq!(parked.reply(), (2, Reply::Error(libc::ENODEV)));
    opened.send(&call(3, vec![1, 2]));
    assert_eq!(opened.reply(), (3, Reply::Error(libc::ENODEV)));
    big.send(&call(3, vec![1]));
    assert_eq!(big.reply(), (3, Reply::Error(libc::ENODEV)));
    // A connection that had not opened goes on as if nothing happened.
    assert!(matches!(unopened.open(1, "echo"), Reply::Value(_)));
    unopened.send(&call(2, vec![5]));
    assert!(matches!(unopened.reply(), (2, Reply::Data { value: 1, data }) if data == [6]));
    // A header cut short is completed by the next instance.
    header_cut.send(&whole_open[5..]);
    assert!(matches!(header_cut.reply(), (7, Reply::Value(_))));
    // A frame cut in its body: its tag is answered EINTR (try again) and
    // its rest skipped; the stream goes on.
    assert_eq!(body_cut.reply(), (8, Reply::Error(libc::EINTR)));
    body_cut.send(&long_open[40..]);
    assert!(matches!(body_cut.open(9, "echo"), Reply::Value(_)));

    drop((opened, parked, unopened, header_cut, body_cut, big));
    drop(second);
    // Closed connections left the store; the listener and the journal stay.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while held.lock().unwrap().len() > 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the store keeps closed connections"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
