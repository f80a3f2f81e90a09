//! Rows as JSON objects, streamed: a JSON array (`[` + one object per row + `]`) or
//! JSON Lines (one object per line, each ending in `\n`). Keys are the columns' stable
//! snake_case keys; absent values are `null`; lists are arrays. A key with a dot
//! (`geo_data.country`) nests: consecutive columns sharing the prefix form one object
//! (`"geo_data": {"country": ...}`). Both framings write the same objects.

use super::{Cell, Column, Encoder};
use crate::{error::Error, timefmt};

struct Field {
    /// Index into `groups` of the object this field is nested in.
    group: Option<usize>,
    /// The leaf key, encoded as a JSON string.
    key: String,
}

/// How the objects are framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// One JSON array: `[`, the objects separated by `,\n`, `]`.
    Array,
    /// JSON Lines (`application/x-ndjson`): each object on its own `\n`-terminated line.
    Lines,
}

pub struct JsonEncoder {
    framing: Framing,
    fields: Vec<Field>,
    /// Names of nesting objects, encoded as JSON strings.
    groups: Vec<String>,
    out: Vec<u8>,
    rows: u64,
}

fn json_str(s: &str) -> String {
    let mut out = Vec::new();
    write_str(&mut out, s);
    String::from_utf8(out).unwrap_or_default()
}

/// A JSON string literal, exactly as serde_json writes it. Most text needs no escaping
/// and is copied whole; serde_json's byte-at-a-time escaper was 6% of an export's CPU.
/// Text that does need it goes to serde_json (writing to a Vec cannot fail).
fn write_str(out: &mut Vec<u8>, s: &str) {
    if needs_escaping(s.as_bytes()) {
        let _ = serde_json::to_writer(&mut *out, s);
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// Whether any byte is one JSON escapes: a quote, a backslash or a control character
/// below 0x20 (serde_json escapes nothing else). Checked 16 bytes at a time without
/// branching, which the compiler turns into vector instructions.
fn needs_escaping(bytes: &[u8]) -> bool {
    let escaped = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
    let mut chunks = bytes.chunks_exact(16);
    for chunk in &mut chunks {
        if chunk.iter().fold(false, |any, &b| any | escaped(b)) {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| escaped(b))
}

impl JsonEncoder {
    pub fn new(columns: &[Column]) -> Self {
        Self::with_prefix(columns, "")
    }

    /// JSON Lines: the same objects, one per line, nothing before or after them.
    pub fn lines(columns: &[Column]) -> Self {
        Self::framed(columns, Framing::Lines, Vec::new())
    }

    /// An encoder whose output starts with `prefix` before the array (to embed the
    /// array in a larger document).
    pub fn with_prefix(columns: &[Column], prefix: &str) -> Self {
        let mut start = prefix.as_bytes().to_vec();
        start.push(b'[');
        Self::framed(columns, Framing::Array, start)
    }

    /// The encoder of `framing`, its output starting with `start`.
    fn framed(columns: &[Column], framing: Framing, start: Vec<u8>) -> Self {
        let mut groups: Vec<String> = Vec::new();
        let fields = columns
            .iter()
            .map(|c| match c.key.split_once('.') {
                Some((group, leaf)) => {
                    let g = json_str(group);
                    let index = groups.iter().position(|x| *x == g).unwrap_or_else(|| {
                        groups.push(g);
                        groups.len() - 1
                    });
                    Field {
                        group: Some(index),
                        key: json_str(leaf),
                    }
                }
                None => Field {
                    group: None,
                    key: json_str(c.key),
                },
            })
            .collect();
        Self {
            framing,
            fields,
            groups,
            out: start,
            rows: 0,
        }
    }

    /// Closes the array without a trailing newline, for embedding.
    pub fn close_array(&mut self) {
        self.out.extend_from_slice(if self.rows == 0 { b"]" } else { b"\n]" });
    }

    /// Appends raw, already valid JSON text to the output.
    pub fn push_raw(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }
}

/// Writes one cell as a JSON value.
pub fn write_value(out: &mut Vec<u8>, cell: &Cell) {
    match cell {
        Cell::Empty => out.extend_from_slice(b"null"),
        Cell::Text(s) => write_str(out, s),
        Cell::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
        // serde_json writes the shortest form that reads back as the same f64.
        Cell::Float(f) if f.is_finite() => {
            let _ = serde_json::to_writer(&mut *out, f);
        }
        Cell::Float(_) => out.extend_from_slice(b"null"),
        Cell::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        // The fast path's text needs no escaping.
        Cell::Time(t) => match timefmt::write_millis(t, &mut timefmt::MillisBuf::default()) {
            Some(text) => {
                out.push(b'"');
                out.extend_from_slice(text.as_bytes());
                out.push(b'"');
            }
            None => write_str(out, &timefmt::format(t)),
        },
        Cell::List(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, item);
            }
            out.push(b']');
        }
    }
}

impl Encoder for JsonEncoder {
    fn write_row(&mut self, row: &[Cell]) -> Result<(), Error> {
        self.out.extend_from_slice(match (self.framing, self.rows) {
            (Framing::Lines, _) => b"{",
            (Framing::Array, 0) => b"\n{",
            (Framing::Array, _) => b",\n{",
        });
        let mut open: Option<usize> = None;
        let (mut first_top, mut first_inner) = (true, true);
        for (field, cell) in self.fields.iter().zip(row) {
            if field.group != open {
                if open.is_some() {
                    self.out.push(b'}');
                }
                if let Some(g) = field.group {
                    if !first_top {
                        self.out.push(b',');
                    }
                    first_top = false;
                    if let Some(name) = self.groups.get(g) {
                        self.out.extend_from_slice(name.as_bytes());
                    }
                    self.out.extend_from_slice(b":{");
                    first_inner = true;
                }
                open = field.group;
            }
            let first = if open.is_some() {
                &mut first_inner
            } else {
                &mut first_top
            };
            if !*first {
                self.out.push(b',');
            }
            *first = false;
            self.out.extend_from_slice(field.key.as_bytes());
            self.out.push(b':');
            write_value(&mut self.out, cell);
        }
        if open.is_some() {
            self.out.push(b'}');
        }
        self.out.push(b'}');
        if self.framing == Framing::Lines {
            self.out.push(b'\n');
        }
        self.rows += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Error> {
        if self.framing == Framing::Array {
            self.close_array();
            self.out.push(b'\n');
        }
        Ok(())
    }

    fn take_output(&mut self) -> Result<Vec<u8>, Error> {
        // The next batch starts with as much room as this one took (see SharedBuf::take).
        let room = self.out.len();
        Ok(std::mem::replace(&mut self.out, Vec::with_capacity(room)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn strings_are_written_exactly_as_serde_json_writes_them(
            s in "(?s).{0,64}|[ -~\\x00-\\x1f\u{80}-\u{10ffff}]{0,40}",
        ) {
            let mut ours = Vec::new();
            write_str(&mut ours, &s);
            prop_assert_eq!(ours, serde_json::to_vec(&s).unwrap());
        }
    }

    #[test]
    fn escaping_is_found_anywhere_in_long_text() {
        let clean = "a".repeat(40);
        for at in 0..clean.len() {
            for special in ['"', '\\', '\n', '\u{1}', '\u{1f}'] {
                let mut s = clean.clone();
                s.insert(at, special);
                let mut ours = Vec::new();
                write_str(&mut ours, &s);
                assert_eq!(ours, serde_json::to_vec(&s).unwrap(), "{s:?}");
            }
        }
        assert!(!needs_escaping("\u{7f}é😀 ~".repeat(9).as_bytes()));
    }

    #[test]
    fn streams_a_valid_array_with_typed_values() {
        let cols = [Column::new("A", "a"), Column::new("B", "b"), Column::new("C", "c")];
        let mut enc = JsonEncoder::new(&cols);
        let t = timefmt::parse_rfc3339("2024-01-15T10:30:00Z").unwrap();
        enc.write_row(&[
            Cell::Text("x\"\n😀".into()),
            Cell::Empty,
            Cell::List(vec!["a".into(), "b,c".into()]),
        ])
        .unwrap();
        let first = enc.take_output().unwrap();
        enc.write_row(&[Cell::Int(-3), Cell::Float(0.5), Cell::Time(t)])
            .unwrap();
        enc.write_row(&[Cell::Bool(true), Cell::Float(f64::NAN), Cell::Empty])
            .unwrap();
        enc.finish().unwrap();
        let mut all = first;
        all.extend(enc.take_output().unwrap());
        let v: serde_json::Value = serde_json::from_slice(&all).unwrap();
        assert_eq!(
            v,
            serde_json::json!([
                {"a": "x\"\n😀", "b": null, "c": ["a", "b,c"]},
                {"a": -3, "b": 0.5, "c": "2024-01-15T10:30:00.000Z"},
                {"a": true, "b": null, "c": null}
            ])
        );
    }

    #[test]
    fn dotted_keys_nest() {
        let cols = [
            Column::new("A", "a"),
            Column::new("C", "geo.country"),
            Column::new("I", "geo.isp"),
            Column::new("U", "meta.user"),
        ];
        let mut enc = JsonEncoder::new(&cols);
        enc.write_row(&[
            Cell::Int(1),
            Cell::Text("US".into()),
            Cell::Empty,
            Cell::Text("u".into()),
        ])
        .unwrap();
        enc.finish().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&enc.take_output().unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!([{"a": 1, "geo": {"country": "US", "isp": null}, "meta": {"user": "u"}}])
        );
    }

    #[test]
    fn lines_hold_the_same_objects_one_per_line() {
        let cols = [
            Column::new("A", "a"),
            Column::new("C", "geo.country"),
            Column::new("L", "l"),
        ];
        let rows = [
            vec![
                Cell::Text("x\n\u{2028}😀".into()),
                Cell::Empty,
                Cell::List(vec!["a".into()]),
            ],
            vec![Cell::Int(u64::MAX.into()), Cell::Text("US".into()), Cell::List(vec![])],
        ];
        let (mut array, mut lines) = (JsonEncoder::new(&cols), JsonEncoder::lines(&cols));
        for enc in [&mut array, &mut lines] {
            for row in &rows {
                enc.write_row(row).unwrap();
            }
            enc.finish().unwrap();
        }
        let array: Vec<serde_json::Value> = serde_json::from_slice(&array.take_output().unwrap()).unwrap();
        let text = String::from_utf8(lines.take_output().unwrap()).unwrap();
        assert!(text.ends_with("}\n") && text.matches('\n').count() == 2, "{text:?}");
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines, array);
        assert_eq!(lines[1]["a"], serde_json::json!(u64::MAX));

        let mut empty = JsonEncoder::lines(&cols);
        empty.finish().unwrap();
        assert!(empty.take_output().unwrap().is_empty());
    }

    #[test]
    fn empty_export_is_an_empty_array() {
        let mut enc = JsonEncoder::new(&[Column::new("A", "a")]);
        enc.finish().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&enc.take_output().unwrap()).unwrap();
        assert_eq!(v, serde_json::json!([]));
    }
}
