//! RFC 4180 CSV (CRLF, quotes only where needed) through the `csv` crate.

use std::{fmt::Write as _, io::Write as _};

use super::{Cell, Column, EncodeOptions, Encoder, SharedBuf};
use crate::{error::Error, timefmt};

pub struct CsvEncoder {
    writer: csv::Writer<SharedBuf>,
    separators: Vec<&'static str>,
    out: SharedBuf,
    options: EncodeOptions,
    scratch: String,
    numbers: itoa::Buffer,
    time: timefmt::MillisBuf,
}

fn csv_error(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::internal("encoding error", e)
}

impl CsvEncoder {
    pub fn new(columns: &[Column], options: EncodeOptions) -> Result<Self, Error> {
        let mut out = SharedBuf::default();
        if options.bom {
            let _ = out.write_all("\u{feff}".as_bytes());
        }
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .buffer_capacity(64 * 1024)
            .from_writer(out.clone());
        writer
            .write_record(columns.iter().map(|c| c.header))
            .map_err(csv_error)?;
        Ok(Self {
            writer,
            separators: columns.iter().map(|c| c.list_sep).collect(),
            out,
            options,
            scratch: String::new(),
            numbers: itoa::Buffer::new(),
            time: timefmt::MillisBuf::default(),
        })
    }
}

impl Encoder for CsvEncoder {
    fn write_row(&mut self, row: &[Cell]) -> Result<(), Error> {
        let safe = self.options.spreadsheet_safe;
        for (cell, sep) in row.iter().zip(&self.separators) {
            // Most cells go to the writer as they are; only guarded or rendered cells
            // pass through the scratch buffer (a copy of every text was ~10% in perf).
            let field: &[u8] = match cell {
                Cell::Empty => b"",
                Cell::Text(s) if !(safe && is_formula_like(s)) => s.as_bytes(),
                Cell::Text(s) => {
                    self.scratch.clear();
                    self.scratch.push('\'');
                    self.scratch.push_str(s);
                    self.scratch.as_bytes()
                }
                Cell::Int(i) => self.numbers.format(*i).as_bytes(),
                // Writing to a String cannot fail.
                Cell::Float(f) => {
                    self.scratch.clear();
                    let _ = write!(self.scratch, "{f}");
                    self.scratch.as_bytes()
                }
                Cell::Bool(b) => {
                    if *b {
                        b"Yes"
                    } else {
                        b"No"
                    }
                }
                Cell::Time(t) => match self.options.time_zone.is_utc() {
                    true => match timefmt::write_millis(t, &mut self.time) {
                        Some(text) => text.as_bytes(),
                        None => {
                            self.scratch = timefmt::format(t);
                            self.scratch.as_bytes()
                        }
                    },
                    false => {
                        self.scratch = timefmt::format_in(t, self.options.time_zone);
                        self.scratch.as_bytes()
                    }
                },
                Cell::List(items) => {
                    self.scratch.clear();
                    let joined = items.join(sep);
                    if safe && is_formula_like(&joined) {
                        self.scratch.push('\'');
                    }
                    self.scratch.push_str(&joined);
                    self.scratch.as_bytes()
                }
            };
            self.writer.write_field(field).map_err(csv_error)?;
        }
        self.writer.write_record(None::<&[u8]>).map_err(csv_error)
    }

    fn finish(&mut self) -> Result<(), Error> {
        self.writer.flush().map_err(csv_error)
    }

    fn take_output(&mut self) -> Result<Vec<u8>, Error> {
        self.writer.flush().map_err(csv_error)?;
        Ok(self.out.take())
    }
}

/// True when a spreadsheet would evaluate the text as a formula: it starts with `=`,
/// `+`, `-`, `@`, tab or CR (OWASP "CSV injection"). Plain numbers such as `-42` or
/// `+3.5e2` are left alone: they are data, not formulas. Guarded cells get a leading `'`.
pub fn is_formula_like(s: &str) -> bool {
    match s.as_bytes().first() {
        Some(b'=' | b'@' | b'\t' | b'\r') => true,
        Some(b'+' | b'-') => !is_plain_number(s),
        _ => false,
    }
}

fn is_plain_number(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    !body.is_empty()
        && body.bytes().next().is_some_and(|b| b.is_ascii_digit() || b == b'.')
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && body.parse::<f64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(rows: &[Vec<Cell>], options: EncodeOptions) -> String {
        let cols = [Column::new("A", "a"), Column::new("B", "b").list_sep(",")];
        let mut enc = CsvEncoder::new(&cols, options).unwrap();
        for r in rows {
            enc.write_row(r).unwrap();
        }
        enc.finish().unwrap();
        String::from_utf8(enc.take_output().unwrap()).unwrap()
    }

    #[test]
    fn quotes_and_line_breaks_round_trip() {
        let text = "a, \"quoted\"\r\nline two\n\u{1F600} é";
        let out = encode(&[vec![Cell::Text(text.into()), Cell::Empty]], EncodeOptions::default());
        let mut rdr = csv::Reader::from_reader(out.as_bytes());
        let rec = rdr.records().next().unwrap().unwrap();
        assert_eq!(&rec[0], text);
        assert_eq!(&rec[1], "");
        assert!(out.starts_with("A,B\r\n"));
    }

    #[test]
    fn formulas_are_neutralised_but_numbers_are_not() {
        for f in ["=1+2", "+A1", "-2+3", "@SUM(A1)", "\tx", "\rx", "=HYPERLINK(\"x\")"] {
            assert!(is_formula_like(f), "{f:?}");
        }
        for n in ["-42", "+3.5", "-1e5", "hello", "", "42"] {
            assert!(!is_formula_like(n), "{n:?}");
        }
        let out = encode(
            &[vec![Cell::Text("=1+2".into()), Cell::Int(-5)]],
            EncodeOptions::default(),
        );
        assert!(out.ends_with("'=1+2,-5\r\n"), "{out}");
        let raw = encode(
            &[vec![Cell::Text("=1+2".into()), Cell::Int(-5)]],
            EncodeOptions {
                spreadsheet_safe: false,
                ..EncodeOptions::default()
            },
        );
        assert!(raw.ends_with("=1+2,-5\r\n"), "{raw}");
    }

    #[test]
    fn typed_cells_render_plainly() {
        let t = timefmt::parse_rfc3339("2024-01-15T10:30:00Z").unwrap();
        let out = encode(&[vec![Cell::Time(t), Cell::Float(1e21)]], EncodeOptions::default());
        assert!(
            out.ends_with("2024-01-15T10:30:00.000Z,1000000000000000000000\r\n"),
            "{out}"
        );
    }
}
