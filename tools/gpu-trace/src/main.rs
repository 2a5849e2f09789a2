//! gpu-trace: virtio-gpud's command trace, read like a packet capture.
//!
//! ```text
//! gpu-trace [--follow] [--json] [--bytes] [--ctx N] [--type NAME] [--resource N]
//!           [--origin N] [--cap N | --full] [SOURCE]
//! gpu-trace record FILE [--cap N | --full]
//! gpu-trace replay FILE
//! ```
//!
//! SOURCE is a recorded file, `-` for stdin, or absent for the live trace
//! (`/scheme/virtio-gpu/trace`). A recorded file is exactly the live
//! stream, so both are decoded the same way (`gpu_trace::decode`, where the
//! logic lives; this is the loop around it).

use std::fs::File;
use std::io::{self, BufWriter, ErrorKind, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use gpu_trace::decode::{self, Filter, StreamDecoder};
use scheme_seam::SchemeFd;

/// The live trace.
const LIVE: &str = "/scheme/virtio-gpu/trace";
/// Bytes asked for per read.
const CHUNK: usize = 256 << 10;

const USAGE: &str = "\
usage: gpu-trace [--follow] [--json] [--bytes] [--ctx N] [--type NAME] [--resource N]
                 [--origin N] [--cap N | --full] [SOURCE]
       gpu-trace record FILE [--cap N | --full]
       gpu-trace replay FILE

SOURCE      a recorded trace file, `-` for stdin; absent: the live trace
            (/scheme/virtio-gpu/trace), read until it is drained
--follow    keep reading the live trace (or a growing file) until interrupted
--json      one JSON object per record instead of text
--bytes     the command and answer bytes too (hex)
--ctx N     only context N          --resource N   only resource N
--type T    only commands of type T (SUBMIT_3D, 0x207, ...) and their answers,
            or answers of type T (ERR_INVALID_PARAMETER, ...)
--origin N  only what session N placed (0: virtio-gpud itself)
--cap N     live: up to N bytes of each command (default 4096)
--full      live: every byte of each command
record      copy the live stream to FILE until SIGINT/SIGTERM
replay      send FILE's commands (recorded with --full) to a fresh device and
            compare every answer with the recorded one (Linux: starts its own
            vhost-user-gpu)";

/// How many bytes of each record the live trace gives.
#[derive(Clone, Copy, Debug)]
enum Cap {
    Bytes(u64),
    Full,
}

/// What to show, and from where.
#[derive(Debug, Default)]
struct Show {
    follow: bool,
    json: bool,
    bytes: bool,
    filter: Filter,
    cap: Option<Cap>,
    source: Option<String>,
}

#[derive(Debug)]
enum Cli {
    Show(Show),
    Record { file: String, cap: Option<Cap> },
    Replay { file: String },
    Help,
}

/// Why the tool stops early.
enum Stop {
    /// Stdout was closed (`| head`): not an error.
    Quiet,
    /// A message for stderr, exit 1.
    Fail(String),
    /// A usage error, exit 2.
    Usage(String),
}

impl From<String> for Stop {
    fn from(s: String) -> Stop {
        Stop::Fail(s)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match parse(&args) {
        Ok(Cli::Help) => {
            println!("{USAGE}");
            Ok(())
        }
        Ok(Cli::Show(show)) => run_show(show),
        Ok(Cli::Record { file, cap }) => run_record(&file, cap),
        Ok(Cli::Replay { file }) => run_replay(&file),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) | Err(Stop::Quiet) => ExitCode::SUCCESS,
        Err(Stop::Fail(msg)) => {
            eprintln!("gpu-trace: {msg}");
            ExitCode::FAILURE
        }
        Err(Stop::Usage(msg)) => {
            eprintln!("gpu-trace: {msg}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// A number, decimal or `0x` hex.
fn number<T: TryFrom<u64>>(flag: &str, value: Option<&String>) -> Result<T, Stop> {
    let bad = || Stop::Usage(format!("{flag} needs a number"));
    let v = value.ok_or_else(bad)?;
    let n = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    n.ok().and_then(|n| T::try_from(n).ok()).ok_or_else(bad)
}

fn parse(args: &[String]) -> Result<Cli, Stop> {
    let mut show = Show::default();
    let mut record = false;
    let mut positional = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Cli::Help),
            "--follow" | "-f" => show.follow = true,
            "--json" => show.json = true,
            "--bytes" => show.bytes = true,
            "--full" => show.cap = Some(Cap::Full),
            "--cap" => show.cap = Some(Cap::Bytes(number("--cap", it.next())?)),
            "--ctx" => show.filter.ctx = Some(number("--ctx", it.next())?),
            "--resource" => show.filter.resource = Some(number("--resource", it.next())?),
            "--origin" => show.filter.origin = Some(number("--origin", it.next())?),
            "--type" => {
                let name = it
                    .next()
                    .ok_or_else(|| Stop::Usage("--type needs a name".into()))?;
                let ty = decode::type_by_name(name)
                    .ok_or_else(|| Stop::Usage(format!("unknown command type {name:?}")))?;
                show.filter.ty = Some(ty);
            }
            "record" if positional.is_empty() && !record => record = true,
            "replay" if positional.is_empty() && !record => {
                let file = it
                    .next()
                    .ok_or_else(|| Stop::Usage("replay needs a FILE".into()))?;
                if it.next().is_some() {
                    return Err(Stop::Usage("replay takes only a FILE".into()));
                }
                return Ok(Cli::Replay { file: file.clone() });
            }
            s if s.starts_with('-') && s != "-" => {
                return Err(Stop::Usage(format!("unknown option {s}")))
            }
            _ => positional.push(arg.clone()),
        }
    }
    if positional.len() > 1 {
        return Err(Stop::Usage(format!("one source, not {positional:?}")));
    }
    let source = positional.pop();
    if record {
        let file = source.ok_or_else(|| Stop::Usage("record needs a FILE".into()))?;
        if show.follow || show.json || show.bytes || !show.filter.is_empty() {
            return Err(Stop::Usage(
                "record takes only --cap or --full (it copies the raw stream)".into(),
            ));
        }
        return Ok(Cli::Record {
            file,
            cap: show.cap,
        });
    }
    if source.is_some() && show.cap.is_some() {
        return Err(Stop::Usage(
            "--cap and --full apply to the live trace only".into(),
        ));
    }
    show.source = source;
    Ok(Cli::Show(show))
}

/// Replays `file` on a device of its own and reports how it went.
#[cfg(target_os = "linux")]
fn run_replay(file: &str) -> Result<(), Stop> {
    use virtio_gpud::transport::vhost_user::{launch, LaunchOptions};
    let stream = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
    let opts = LaunchOptions::new(true).map_err(|e| format!("no device backend: {e}"))?;
    let (mut gpu, _backend) = launch(&opts).map_err(|e| format!("starting a device: {e}"))?;
    let replay = virtio_gpud::trace::replay::replay(&mut gpu, &stream)
        .map_err(|e| format!("replaying {file}: {e}"))?;
    for m in &replay.mismatches {
        println!(
            "#{} {}: recorded {}, replayed {}",
            m.seq, m.command, m.recorded, m.replayed
        );
    }
    println!(
        "replayed {} commands, {} answers differ",
        replay.commands,
        replay.mismatches.len()
    );
    if replay.mismatches.is_empty() {
        Ok(())
    } else {
        Err(Stop::Fail("the replay differs from the recording".into()))
    }
}

/// Replay needs a transport of its own, which only Linux has for now.
#[cfg(not(target_os = "linux"))]
fn run_replay(_file: &str) -> Result<(), Stop> {
    Err(Stop::Fail("replay needs the Linux device transport".into()))
}

/// The live trace's path for `cap`.
fn live_path(cap: Option<Cap>) -> String {
    match cap {
        None => LIVE.to_string(),
        Some(Cap::Full) => format!("{LIVE}/full"),
        Some(Cap::Bytes(n)) => format!("{LIVE}/cap={n}"),
    }
}

fn open_live(path: &str, nonblock: bool) -> Result<SchemeFd, Stop> {
    let flags = if nonblock { scheme_seam::NONBLOCK } else { 0 };
    SchemeFd::open(path, flags).map_err(|e| {
        let hint = match e.kind() {
            ErrorKind::PermissionDenied => " (reading the trace needs root)",
            ErrorKind::NotFound | ErrorKind::ConnectionRefused => " (is virtio-gpud running?)",
            _ => "",
        };
        Stop::Fail(format!("{path}: {e}{hint}"))
    })
}

/// Where the bytes come from.
enum Source {
    Live { fd: SchemeFd, follow: bool },
    File { file: File, follow: bool },
    Stdin(io::Stdin),
}

impl Source {
    /// The next bytes into `buf`; None at the end.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            let r = match self {
                Source::Live { fd, .. } => fd.read(buf),
                Source::File { file, .. } => file.read(buf),
                Source::Stdin(stdin) => stdin.read(buf),
            };
            match (r, &*self) {
                (Ok(0), Source::File { follow: true, .. }) => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                (Ok(0), _) => return Ok(None),
                (Ok(n), _) => return Ok(Some(n)),
                (Err(e), _) if e.kind() == ErrorKind::Interrupted => {}
                // Drained (opened non-blocking without --follow).
                (Err(e), Source::Live { follow: false, .. })
                    if e.kind() == ErrorKind::WouldBlock =>
                {
                    return Ok(None)
                }
                (Err(e), _) => return Err(e),
            }
        }
    }

    fn is_live(&self) -> bool {
        matches!(self, Source::Live { .. })
    }
}

fn write_err(e: io::Error) -> Stop {
    if e.kind() == ErrorKind::BrokenPipe {
        Stop::Quiet
    } else {
        Stop::Fail(format!("stdout: {e}"))
    }
}

fn run_show(show: Show) -> Result<(), Stop> {
    let (name, mut source) = match show.source.as_deref() {
        None => {
            let path = live_path(show.cap);
            // Without --follow: what is there now, then stop (a blocking
            // read would wait for the next command).
            let fd = open_live(&path, !show.follow)?;
            let source = Source::Live {
                fd,
                follow: show.follow,
            };
            (path, source)
        }
        Some("-") => ("stdin".to_string(), Source::Stdin(io::stdin())),
        Some(path) => {
            let file = File::open(path).map_err(|e| format!("{path}: {e}"))?;
            let source = Source::File {
                file,
                follow: show.follow,
            };
            (path.to_string(), source)
        }
    };
    let mut filter = show.filter;
    let mut decoder = StreamDecoder::new();
    let mut buf = vec![0u8; CHUNK];
    let mut start = None;
    let mut out = BufWriter::new(io::stdout().lock());
    while let Some(n) = source.read(&mut buf).map_err(|e| format!("{name}: {e}"))? {
        decoder.push(&buf[..n]);
        while let Some(r) = decoder.next_record().map_err(|e| format!("{name}: {e}"))? {
            let start = *start.get_or_insert(r.header.time_ns);
            if !filter.matches(&r) {
                continue;
            }
            if show.json {
                writeln!(out, "{}", decode::to_json(&r, start, show.bytes)).map_err(write_err)?;
            } else {
                writeln!(out, "{}", decode::describe(&r, start)).map_err(write_err)?;
                if show.bytes {
                    out.write_all(decode::hex_dump(r.bytes).as_bytes())
                        .map_err(write_err)?;
                }
            }
        }
        if source.is_live() || show.follow {
            out.flush().map_err(write_err)?;
        }
    }
    out.flush().map_err(write_err)?;
    if !decoder.started() {
        return Err(Stop::Fail(format!(
            "{name}: not a virtio-gpu trace (too short for the stream header)"
        )));
    }
    if decoder.pending() > 0 {
        eprintln!(
            "gpu-trace: {name}: ends inside a record ({} bytes left over)",
            decoder.pending()
        );
    }
    Ok(())
}

/// Waits until the trace may have bytes or a signal came, at most a
/// moment (a scheme without readiness events is then polled).
#[cfg(target_os = "linux")]
fn wait(events: Option<std::os::fd::RawFd>, term: &scheme_seam::daemon::Termination) {
    let mut fds: Vec<libc::pollfd> = [Some(term.fd()), events]
        .into_iter()
        .flatten()
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `fds` is a valid array of pollfds for the whole call; the
    // descriptors stay open (owned by `term` and the trace handle).
    unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 200) };
}

#[cfg(not(target_os = "linux"))]
fn wait(_events: Option<std::os::fd::RawFd>, _term: &scheme_seam::daemon::Termination) {
    std::thread::sleep(Duration::from_millis(50));
}

fn run_record(file: &str, cap: Option<Cap>) -> Result<(), Stop> {
    use std::os::fd::AsRawFd;

    let path = live_path(cap);
    // Non-blocking, so that a signal is noticed while the trace is quiet.
    let trace = open_live(&path, true)?;
    let term = scheme_seam::daemon::Termination::install()
        .map_err(|e| format!("installing signal handlers: {e}"))?;
    let events = trace.poll_fd().ok().map(|fd| fd.as_raw_fd());
    let mut out = BufWriter::new(File::create(file).map_err(|e| format!("{file}: {e}"))?);
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    let ended = loop {
        if term.requested() {
            break None;
        }
        match trace.read(&mut buf) {
            Ok(0) => {
                out.flush().map_err(|e| format!("{file}: {e}"))?;
                wait(events, &term);
            }
            Ok(n) => {
                out.write_all(&buf[..n])
                    .map_err(|e| format!("{file}: {e}"))?;
                total += n as u64;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                out.flush().map_err(|e| format!("{file}: {e}"))?;
                wait(events, &term);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => break Some(e),
        }
    };
    out.flush().map_err(|e| format!("{file}: {e}"))?;
    eprintln!("gpu-trace: {total} bytes recorded to {file}");
    match ended {
        None => Ok(()),
        Some(e) => Err(Stop::Fail(format!(
            "{path}: {e} (the recording so far is kept)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn options_parse() {
        let Ok(Cli::Show(s)) = parse(&args("--json --ctx 3 --type submit_3d --resource 0x2a f"))
        else {
            panic!("not a show")
        };
        assert!(s.json && !s.follow && !s.bytes);
        assert_eq!(s.filter.ctx, Some(3));
        assert_eq!(s.filter.ty, Some(0x207));
        assert_eq!(s.filter.resource, Some(42));
        assert_eq!(s.source.as_deref(), Some("f"));

        let Ok(Cli::Show(s)) = parse(&args("--follow --full")) else {
            panic!("not a show")
        };
        assert!(s.follow && s.source.is_none());
        assert_eq!(live_path(s.cap), "/scheme/virtio-gpu/trace/full");
        assert_eq!(
            live_path(Some(Cap::Bytes(64))),
            "/scheme/virtio-gpu/trace/cap=64"
        );

        let Ok(Cli::Record { file, cap }) = parse(&args("record out.vgt --cap 128")) else {
            panic!("not a record")
        };
        assert_eq!(file, "out.vgt");
        assert!(matches!(cap, Some(Cap::Bytes(128))));

        for bad in [
            "--type FROB",
            "--ctx",
            "--ctx x",
            "--bogus",
            "a b",
            "record",
            "record f --json",
            "file --full",
        ] {
            assert!(
                matches!(parse(&args(bad)), Err(Stop::Usage(_))),
                "{bad} should be a usage error"
            );
        }
        assert!(matches!(parse(&args("-")), Ok(Cli::Show(_))));
    }
}
