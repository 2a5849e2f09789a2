//! Benchmark figures: what each benchmark program prints, collected over
//! repeated runs.
//!
//! A program reports a figure as one stdout line
//! `FIGURE <key> <value> <unit>` (e.g. `FIGURE stack.submit_rtt_p50 311.5 us`);
//! other lines are for people. Keys are `<path>.<figure>`, the path saying
//! what was measured: `device` (virtio-gpud's library straight on the
//! device), `stack` (the three daemons through scheme:drm), `vtest` (Mesa
//! on its vtest reference path), `mesa` (Mesa through the stack).

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One figure from one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// `<path>.<figure>`.
    pub key: String,
    /// The number.
    pub value: f64,
    /// Its unit (`us`, `/s`, `MB/s`, `fps`).
    pub unit: String,
}

/// The figures in a program's output.
pub fn parse_figures(output: &str) -> Vec<Figure> {
    output
        .lines()
        .filter_map(|l| {
            let mut w = l.strip_prefix("FIGURE ")?.split_whitespace();
            let key = w.next()?.to_string();
            let value = w.next()?.parse().ok()?;
            let unit = w.next().unwrap_or("").to_string();
            Some(Figure { key, value, unit })
        })
        .collect()
}

/// Every run's value of each key, for min/median/max.
#[derive(Debug, Default)]
pub struct Runs {
    /// Values by key, with the unit.
    pub values: BTreeMap<String, (Vec<f64>, String)>,
}

impl Runs {
    /// Adds one run's figures.
    pub fn add(&mut self, figures: Vec<Figure>) {
        for f in figures {
            let entry = self.values.entry(f.key).or_insert((Vec::new(), f.unit));
            entry.0.push(f.value);
        }
    }

    /// (min, median, max) of `key`.
    pub fn spread(&self, key: &str) -> Option<(f64, f64, f64)> {
        let (v, _) = self.values.get(key)?;
        let mut v = v.clone();
        v.sort_by(f64::total_cmp);
        Some((*v.first()?, v[v.len() / 2], *v.last()?))
    }
}

/// The rows of the main table: label, our key, the reference's key (none
/// for figures without one). The stack is "ours", the device alone the
/// reference.
pub const ROWS: &[(&str, &str, Option<&str>)] = &[
    (
        "fenced submit round trip, p50",
        "stack.submit_rtt_p50",
        Some("device.submit_rtt_p50"),
    ),
    (
        "fenced submit round trip, p99",
        "stack.submit_rtt_p99",
        Some("device.submit_rtt_p99"),
    ),
    (
        "fenced submits in flight, a doorbell each",
        "stack.submit_rate_unbatched",
        Some("device.submit_rate_unbatched"),
    ),
    (
        "fenced submits in flight, doorbells batched",
        "stack.submit_rate_batched",
        Some("device.submit_rate_batched"),
    ),
    (
        "fenced submits one at a time, each waited",
        "stack.submit_rate_serial",
        Some("device.submit_rate_serial"),
    ),
    (
        "transfer to host, 4 MiB",
        "stack.transfer_to_host_mbps",
        Some("device.transfer_to_host_mbps"),
    ),
    (
        "transfer from host, 4 MiB",
        "stack.transfer_from_host_mbps",
        Some("device.transfer_from_host_mbps"),
    ),
    (
        "VIRTGPU_WAIT NOWAIT checks, idle object",
        "stack.nowait_checks_per_s",
        None,
    ),
    (
        "VIRTGPU_WAIT NOWAIT checks, busy object",
        "stack.nowait_busy_checks_per_s",
        None,
    ),
    ("GETPARAM round trip, p50", "stack.getparam_rtt_p50", None),
];

/// The GL rows: label and figure, Mesa through the stack (`mesa.`) against
/// Mesa on vtest (`vtest.`); shown when either was measured.
pub const GL_ROWS: &[(&str, &str)] = &[
    ("GL: glClear + glFinish", "clear_finish_per_s"),
    ("GL: frames of 1,000 draws", "draw_fps"),
    ("GL: 1024x1024 texture upload", "tex_upload_mbps"),
];

/// A number for a table: thousands separated from 1,000 up, one decimal
/// below.
pub fn number(v: f64) -> String {
    if v.abs() < 1000.0 {
        return format!("{v:.1}");
    }
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 {
        out.insert(0, '-');
    }
    out
}

impl Runs {
    /// `min / median / max` of `key`, or `—`.
    fn cell(&self, key: Option<&str>) -> String {
        match key.and_then(|k| self.spread(k)) {
            Some((lo, mid, hi)) => format!("{} / {} / {}", number(lo), number(mid), number(hi)),
            None => "—".into(),
        }
    }

    /// The unit of `key` (empty when unknown).
    fn unit(&self, key: &str) -> &str {
        self.values.get(key).map_or("", |(_, u)| u.as_str())
    }

    /// One table row: label with unit, ours, reference, ratio of medians.
    fn row(&self, text: &mut String, label: &str, ours: &str, reference: Option<&str>) {
        let unit = match self.unit(ours) {
            "" => reference.map_or("", |r| self.unit(r)),
            u => u,
        };
        let ratio = match (self.spread(ours), reference.and_then(|r| self.spread(r))) {
            (Some((_, a, _)), Some((_, b, _))) if b != 0.0 => format!("{:.2}x", a / b),
            _ => "—".into(),
        };
        let _ = writeln!(
            text,
            "| {label} ({unit}) | {} | {} | {ratio} |",
            self.cell(Some(ours)),
            self.cell(reference)
        );
    }

    /// The figures table in Markdown: [`ROWS`], then the [`GL_ROWS`] that
    /// were measured.
    pub fn table(&self) -> String {
        let mut text = String::from(
            "| figure | ours: min / median / max | reference: min / median / max | ratio (medians) |\n\
             |---|---|---|---|\n",
        );
        for (label, ours, reference) in ROWS {
            self.row(&mut text, label, ours, *reference);
        }
        for (label, figure) in GL_ROWS {
            let (ours, reference) = (format!("mesa.{figure}"), format!("vtest.{figure}"));
            if self.values.contains_key(&ours) || self.values.contains_key(&reference) {
                self.row(&mut text, label, &ours, Some(&reference));
            }
        }
        text
    }
}

/// One line of drmd's `/scheme/drm/stats`:
/// `ioctl <NAME> calls <n> hops <n> bytes_in <n> bytes_out <n> copied <n>`
/// (totals since drmd started).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IoctlCounters {
    /// The ioctl's name.
    pub name: String,
    /// Every `<field> <n>` pair of the line, by field.
    pub fields: BTreeMap<String, u64>,
}

/// The `ioctl` lines of a stats file (other lines are skipped).
pub fn parse_stats(text: &str) -> Vec<IoctlCounters> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            if w.next()? != "ioctl" {
                return None;
            }
            let name = w.next()?.to_string();
            let mut fields = BTreeMap::new();
            while let (Some(k), Some(v)) = (w.next(), w.next()) {
                fields.insert(k.to_string(), v.parse().ok()?);
            }
            Some(IoctlCounters { name, fields })
        })
        .collect()
}

/// The per-ioctl table in Markdown: calls, then hops and bytes copied per
/// call; ioctls never called are left out.
pub fn stats_table(counters: &[IoctlCounters]) -> String {
    let mut text = String::from(
        "| ioctl | calls | hops per call | bytes copied per call |\n|---|---|---|---|\n",
    );
    for c in counters {
        let calls = c.fields.get("calls").copied().unwrap_or(0);
        if calls == 0 {
            continue;
        }
        let per_call = |field: &str| {
            c.fields
                .get(field)
                .map_or("—".into(), |&v| number(v as f64 / calls as f64))
        };
        let _ = writeln!(
            text,
            "| {} | {calls} | {} | {} |",
            c.name,
            per_call("hops"),
            per_call("copied")
        );
    }
    text
}

/// `page` with the text between `<!-- bench:begin -->` and
/// `<!-- bench:end -->` replaced by `block`; the markers must be there.
pub fn splice(page: &str, block: &str) -> Option<String> {
    const BEGIN: &str = "<!-- bench:begin -->";
    const END: &str = "<!-- bench:end -->";
    let start = page.find(BEGIN)? + BEGIN.len();
    let end = start + page[start..].find(END)?;
    Some(format!(
        "{}\n{}\n{}",
        &page[..start],
        block.trim(),
        &page[end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_show_spread_ratio_and_gaps() {
        let mut runs = Runs::default();
        runs.add(parse_figures(
            "FIGURE stack.submit_rtt_p50 300 us\nFIGURE device.submit_rtt_p50 100 us\n\
             FIGURE stack.nowait_checks_per_s 123456 /s\nFIGURE mesa.draw_fps 30 fps\n",
        ));
        let table = runs.table();
        assert!(table.contains(
            "| fenced submit round trip, p50 (us) | 300.0 / 300.0 / 300.0 | 100.0 / 100.0 / 100.0 | 3.00x |"
        ));
        assert!(table.contains(
            "| VIRTGPU_WAIT NOWAIT checks, idle object (/s) | 123,456 / 123,456 / 123,456 | — | — |"
        ));
        assert!(table.contains("| GL: frames of 1,000 draws (fps) | 30.0 / 30.0 / 30.0 | — | — |"));
        assert!(!table.contains("texture upload"));
        assert_eq!(number(1234567.4), "1,234,567");
        assert_eq!(number(999.94), "999.9");
    }

    #[test]
    fn stats_lines_become_per_call_figures() {
        let stats = parse_stats(
            "# drmd\nioctl EXECBUFFER calls 4 hops 8 bytes_in 400 bytes_out 40 copied 200\n\
             ioctl GETPARAM calls 0 hops 0 bytes_in 0 bytes_out 0 copied 0\n",
        );
        assert_eq!(stats.len(), 2);
        assert_eq!(stats[0].fields["bytes_in"], 400);
        let table = stats_table(&stats);
        assert!(table.contains("| EXECBUFFER | 4 | 2.0 | 50.0 |"));
        assert!(!table.contains("GETPARAM"));
    }

    #[test]
    fn splicing_replaces_only_between_the_markers() {
        let page = "a\n<!-- bench:begin -->\nold\n<!-- bench:end -->\nb\n";
        assert_eq!(
            splice(page, "new\n").unwrap(),
            "a\n<!-- bench:begin -->\nnew\n<!-- bench:end -->\nb\n"
        );
        assert_eq!(splice("no markers", "x"), None);
    }

    #[test]
    fn figures_are_collected_across_runs() {
        let mut runs = Runs::default();
        for out in [
            "hello\nFIGURE stack.x 3 us\n",
            "FIGURE stack.x 1 us\nFIGURE stack.y 7 /s",
            "FIGURE stack.x 2 us\nFIGURE bad\n",
        ] {
            runs.add(parse_figures(out));
        }
        assert_eq!(runs.spread("stack.x"), Some((1.0, 2.0, 3.0)));
        assert_eq!(runs.spread("stack.y"), Some((7.0, 7.0, 7.0)));
        assert_eq!(runs.spread("nope"), None);
    }
}
