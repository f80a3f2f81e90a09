//! A JSON array of objects, streamed: `[` + one object per row + `]`. Keys are the
//! columns' stable snake_case keys; absent values are `null`; lists are arrays.

use super::{Cell, Column, Encoder};
use crate::{error::Error, timefmt};

pub struct JsonEncoder {
    /// Column keys, already encoded as JSON strings.
    keys: Vec<String>,
    out: Vec<u8>,
    rows: u64,
}

impl JsonEncoder {
    pub fn new(columns: &[Column]) -> Self {
        let keys = columns
            .iter()
            .map(|c| serde_json::to_string(c.key).expect("a str always encodes"))
            .collect();
        Self {
            keys,
            out: b"[".to_vec(),
            rows: 0,
        }
    }
}

/// Writes one cell as a JSON value.
pub fn write_value(out: &mut Vec<u8>, cell: &Cell) {
    match cell {
        Cell::Empty => out.extend_from_slice(b"null"),
        Cell::Text(s) => serde_json::to_writer(&mut *out, s).expect("writing to a Vec"),
        Cell::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Cell::Float(f) if f.is_finite() => serde_json::to_writer(&mut *out, f).expect("writing to a Vec"),
        Cell::Float(_) => out.extend_from_slice(b"null"),
        Cell::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Cell::Time(t) => serde_json::to_writer(&mut *out, &timefmt::format(t)).expect("writing to a Vec"),
        Cell::List(items) => serde_json::to_writer(&mut *out, items).expect("writing to a Vec"),
    }
}

impl Encoder for JsonEncoder {
    fn write_row(&mut self, row: &[Cell]) -> Result<(), Error> {
        self.out
            .extend_from_slice(if self.rows == 0 { b"\n{" } else { b",\n{" });
        for (i, (key, cell)) in self.keys.iter().zip(row).enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            self.out.extend_from_slice(key.as_bytes());
            self.out.push(b':');
            write_value(&mut self.out, cell);
        }
        self.out.push(b'}');
        self.rows += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Error> {
        self.out
            .extend_from_slice(if self.rows == 0 { b"]\n" } else { b"\n]\n" });
        Ok(())
    }

    fn take_output(&mut self) -> Result<Vec<u8>, Error> {
        Ok(std::mem::take(&mut self.out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn empty_export_is_an_empty_array() {
        let mut enc = JsonEncoder::new(&[Column::new("A", "a")]);
        enc.finish().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&enc.take_output().unwrap()).unwrap();
        assert_eq!(v, serde_json::json!([]));
    }
}
