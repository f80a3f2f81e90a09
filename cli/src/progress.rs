//! Progress bars for exportctl's long commands (`indicatif`), drawn on stderr only
//! when stderr is a terminal that someone watches: never in a pipe, under CI
//! (`CI` set), on a dumb terminal or with `--quiet`. stdout is never touched, so a
//! command's result reads the same with or without them.
//!
//! While bars are shown, every other stderr line (logs, metric lines, notes) goes
//! through [`MultiProgress::suspend`], so a line never lands inside a bar.

use std::{
    io::{IsTerminal as _, Write as _},
    sync::Mutex,
    time::Duration,
};

use indicatif::{HumanCount, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// Above this many parts (Scan segments), only the total has a bar.
const MAX_PART_BARS: u32 = 16;

/// The bars of one command.
#[derive(Clone)]
pub struct Bars {
    multi: MultiProgress,
    shown: bool,
    quiet: bool,
}

/// True when an environment variable says this runs under CI.
fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

impl Bars {
    /// Bars that draw only on a watched terminal (see the module's doc).
    pub fn new(quiet: bool) -> Self {
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        let shown = !quiet && std::io::stderr().is_terminal() && !under_ci() && !dumb;
        let multi = MultiProgress::with_draw_target(if shown {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        if shown {
            let m = multi.clone();
            common::logging::set_stderr_writer(move |bytes| {
                m.suspend(|| {
                    let _ = std::io::stderr().lock().write_all(bytes);
                });
            });
        }
        Self { multi, shown, quiet }
    }

    /// Bars that never draw (library callers, tests).
    pub fn hidden() -> Self {
        Self {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::hidden()),
            shown: false,
            quiet: true,
        }
    }

    /// Takes the bars off the terminal once the command's work is over, so that its
    /// result starts on a line of its own (as cargo's bar does); nothing draws after.
    pub fn close(&self) {
        if self.shown {
            let _ = self.multi.clear();
            self.multi.set_draw_target(ProgressDrawTarget::hidden());
        }
    }

    /// A line for whoever watches (what a command is about to do), on stderr; not
    /// with `--quiet`.
    pub fn note(&self, line: &str) {
        if !self.quiet {
            common::logging::stderr_line(line);
        }
    }

    /// A bar of `total` `unit`s with its rate and ETA, or a counter with its rate
    /// when the total is not known.
    pub fn counter(&self, label: &str, total: Option<u64>, unit: &str) -> ProgressBar {
        let bar = match total {
            Some(total) => ProgressBar::new(total).with_style(style(&format!(
                "{{prefix:>14}} [{{bar:28}}] {{human_pos}}/{{human_len}} {unit} ({{rate}}, ETA {{eta}}) {{msg}}"
            ))),
            None => ProgressBar::no_length().with_style(style(&format!(
                "{{prefix:>14}} {{spinner}} {{human_pos}} {unit} ({{rate}}, {{elapsed}}) {{msg}}"
            ))),
        };
        self.add(bar, label)
    }

    /// A bar of `total` bytes (a file read), with its rate and ETA.
    pub fn bytes(&self, label: &str, total: u64) -> ProgressBar {
        let bar = ProgressBar::new(total).with_style(style(
            "{prefix:>14} [{bar:28}] {bytes}/{total_bytes} ({bytes_per_sec}, ETA {eta}) {msg}",
        ));
        self.add(bar, label)
    }

    fn add(&self, bar: ProgressBar, label: &str) -> ProgressBar {
        let bar = self.multi.add(bar);
        bar.set_prefix(label.to_string());
        if self.shown {
            bar.enable_steady_tick(Duration::from_millis(120));
        }
        bar
    }

    /// One bar per part (Scan segment) when there are few, and a total: what long
    /// work in `common` reports through [`common::progress::Progress`].
    pub fn parts(&self, label: &str, parts: u32, unit: &str) -> Parts {
        let each = if parts > 1 && parts <= MAX_PART_BARS {
            (0..parts)
                .map(|p| self.counter(&format!("{label} {p}"), None, unit))
                .collect()
        } else {
            Vec::new()
        };
        let total = self.counter(label, None, unit);
        Parts {
            total,
            each,
            resumed: Mutex::new((0, 0)),
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{}/s", HumanCount(state.per_sec().round() as u64));
        })
        .progress_chars("=> ")
}

/// The bars of work in parts; its total bar says how many parts an earlier run
/// had started or finished.
pub struct Parts {
    total: ProgressBar,
    each: Vec<ProgressBar>,
    /// (parts resumed, parts found finished)
    resumed: Mutex<(u32, u32)>,
}

impl Parts {
    /// Leaves the bars drawn with their final counts.
    pub fn finish(&self) {
        for bar in &self.each {
            bar.finish();
        }
        self.total.finish();
    }
}

impl common::progress::Progress for Parts {
    fn expect(&self, part: u32, total: u64) {
        if let Some(bar) = self.each.get(part as usize) {
            bar.set_length(total);
        } else if self.each.is_empty() {
            self.total.set_length(total);
        }
    }

    fn advance(&self, part: u32, n: u64) {
        if let Some(bar) = self.each.get(part as usize) {
            bar.inc(n);
        }
        self.total.inc(n);
    }

    fn resumed(&self, part: u32, finished: bool) {
        if let Some(bar) = self.each.get(part as usize) {
            bar.set_message(if finished {
                "finished by an earlier run"
            } else {
                "resumed"
            });
            if finished {
                bar.finish();
            }
        }
        let mut resumed = self.resumed.lock().unwrap_or_else(|p| p.into_inner());
        if finished {
            resumed.1 += 1;
        } else {
            resumed.0 += 1;
        }
        self.total
            .set_message(format!("({} resumed, {} finished before)", resumed.0, resumed.1));
    }

    fn done(&self, part: u32) {
        if let Some(bar) = self.each.get(part as usize) {
            bar.finish();
        }
    }
}

/// A single bar as [`common::progress::Progress`] (every part counts into it).
pub struct One(pub ProgressBar);

impl common::progress::Progress for One {
    fn expect(&self, _part: u32, total: u64) {
        self.0.set_length(total);
    }

    fn advance(&self, _part: u32, n: u64) {
        self.0.inc(n);
    }
}

#[cfg(test)]
mod tests {
    use common::progress::Progress as _;

    use super::*;

    #[test]
    fn parts_count_into_their_total_and_say_what_was_resumed() {
        let bars = Bars::hidden();
        let parts = bars.parts("leads", 3, "items");
        parts.advance(0, 5);
        parts.advance(2, 7);
        parts.resumed(1, true);
        parts.resumed(2, false);
        assert_eq!(
            parts.each.iter().map(ProgressBar::position).collect::<Vec<_>>(),
            [5, 0, 7]
        );
        assert_eq!(parts.total.position(), 12);
        assert_eq!(parts.total.message(), "(1 resumed, 1 finished before)");
        assert_eq!(parts.each[1].message(), "finished by an earlier run");
        assert!(parts.each[1].is_finished());
        assert_eq!(parts.each[2].message(), "resumed");
    }

    #[test]
    fn many_parts_have_only_a_total() {
        let parts = Bars::hidden().parts("chats", MAX_PART_BARS + 1, "items");
        assert!(parts.each.is_empty());
        parts.expect(0, 40);
        parts.advance(9, 4);
        assert_eq!((parts.total.position(), parts.total.length()), (4, Some(40)));
    }
}
