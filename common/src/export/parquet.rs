//! Rows as a Parquet file, streamed row group by row group.
//!
//! Each column's [`ColumnKind`] picks its Parquet type (docs/api.md, "Parquet"):
//!
//! | kind | physical | logical |
//! |---|---|---|
//! | Text | BYTE_ARRAY | STRING |
//! | Unsigned | INT64 | INTEGER(64, unsigned): the `u64`'s bits, so `u64::MAX` does not wrap |
//! | WideInteger | FIXED_LEN_BYTE_ARRAY(16) | DECIMAL(38, 0), two's complement big-endian |
//! | Float | DOUBLE | |
//! | Bool | BOOLEAN | |
//! | Time | INT64 | TIMESTAMP(MILLIS, isAdjustedToUTC=true) |
//! | List | BYTE_ARRAY in a 3-level LIST | `LIST<STRING>` |
//!
//! Every leaf is OPTIONAL (an absent value is null); a list's elements are REQUIRED. A
//! dotted key nests like JSON's: consecutive `geo_data.*` columns form the REQUIRED
//! group `geo_data`, as JSON always writes the object.
//!
//! Memory: rows are buffered column by column until they hold [`ROW_GROUP_BYTES`], then
//! written as one row group, whose bytes leave with the next [`Encoder::take_output`].
//! Only the footer (the row groups' metadata, a few hundred bytes each) waits for the end.

use std::sync::Arc;

use ::parquet::{
    basic::{Compression as Codec, LogicalType, Repetition, TimeUnit, Type as Physical, ZstdLevel},
    data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, FixedLenByteArray, FixedLenByteArrayType, Int64Type},
    errors::ParquetError,
    file::{
        properties::{WriterProperties, WriterVersion},
        writer::{SerializedColumnWriter, SerializedFileWriter},
    },
    schema::types::{Type, TypePtr},
};
use bytes::Bytes;
#[cfg(test)]
use chrono::DateTime;

use super::{Cell, Column, ColumnKind, Encoder, SharedBuf};
use crate::error::Error;

/// Buffered values (text bytes, 8 bytes a number, levels) that make a row group. Larger
/// groups compress a little better and read a little faster; each one is held in memory
/// while it is made, twice over at its end (values and encoded pages). 16 MiB keeps an
/// export's peak within the other formats' budget (docs/performance.md, "JSON Lines and
/// Parquet").
pub const ROW_GROUP_BYTES: usize = 16 << 20;

/// The zstd level: zstd's own default, the speed/size point most writers pick.
const ZSTD_LEVEL: i32 = 3;

/// The Parquet codec of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParquetCodec {
    None,
    Snappy,
    Zstd,
}

fn closed() -> Error {
    Error::internal("encoding error", "the parquet file is already closed")
}

fn parquet_error(e: ParquetError) -> Error {
    Error::internal("encoding error", e)
}

/// A leaf column's buffered values.
enum Values {
    /// Text, and a list's elements: the bytes of every value end to end.
    Bytes {
        data: Vec<u8>,
        ends: Vec<usize>,
    },
    Int64(Vec<i64>),
    Decimal(Vec<[u8; 16]>),
    Double(Vec<f64>),
    Bool(Vec<bool>),
}

impl Values {
    fn of(kind: ColumnKind) -> Self {
        match kind {
            ColumnKind::Text | ColumnKind::List => Values::Bytes {
                data: Vec::new(),
                ends: Vec::new(),
            },
            ColumnKind::Unsigned | ColumnKind::Time => Values::Int64(Vec::new()),
            ColumnKind::WideInteger => Values::Decimal(Vec::new()),
            ColumnKind::Float => Values::Double(Vec::new()),
            ColumnKind::Bool => Values::Bool(Vec::new()),
        }
    }
}

/// One column's values and levels for the row group being made.
struct Leaf {
    key: &'static str,
    kind: ColumnKind,
    values: Values,
    /// Definition levels: 0 null; 1 a value (for a list: present and empty); 2 a list element.
    defs: Vec<i16>,
    /// Repetition levels, lists only: 0 starts a row's list, 1 continues it.
    reps: Vec<i16>,
}

/// The text of a cell's type, for a mismatch's message.
fn cell_type(cell: &Cell) -> &'static str {
    match cell {
        Cell::Empty => "empty",
        Cell::Text(_) => "text",
        Cell::Int(_) => "integer",
        Cell::Float(_) => "float",
        Cell::Bool(_) => "boolean",
        Cell::Time(_) => "time",
        Cell::List(_) => "list",
    }
}

/// Whether `n` fits DECIMAL(38, 0): at most 38 digits.
fn fits_decimal_38(n: i128) -> bool {
    const LIMIT: i128 = 10_i128.pow(38);
    -LIMIT < n && n < LIMIT
}

impl Leaf {
    /// Buffers one cell; returns the bytes it added.
    fn push(&mut self, cell: &Cell) -> Result<usize, Error> {
        let mismatch = || {
            Error::internal(
                "encoding error",
                format!(
                    "column {}: a {} cell in a {:?} column",
                    self.key,
                    cell_type(cell),
                    self.kind
                ),
            )
        };
        if let Cell::Empty = cell {
            self.defs.push(0);
            if self.kind == ColumnKind::List {
                self.reps.push(0);
            }
            return Ok(2);
        }
        let added = match (&mut self.values, self.kind, cell) {
            (Values::Bytes { data, ends }, ColumnKind::Text, Cell::Text(t)) => {
                data.extend_from_slice(t.as_bytes());
                ends.push(data.len());
                t.len() + 8
            }
            (Values::Bytes { data, ends }, ColumnKind::List, Cell::List(items)) => {
                if items.is_empty() {
                    self.defs.push(1);
                    self.reps.push(0);
                    return Ok(4);
                }
                let mut added = 0;
                for (n, item) in items.iter().enumerate() {
                    data.extend_from_slice(item.as_bytes());
                    ends.push(data.len());
                    self.defs.push(2);
                    self.reps.push(i16::from(n > 0));
                    added += item.len() + 12;
                }
                return Ok(added);
            }
            (Values::Int64(v), ColumnKind::Unsigned, Cell::Int(n)) => {
                // The u64's bits: INTEGER(64, unsigned) tells readers how to read them.
                let n = u64::try_from(*n).map_err(|_| mismatch())?;
                v.push(n as i64);
                8
            }
            (Values::Int64(v), ColumnKind::Time, Cell::Time(t)) => {
                v.push(t.timestamp_millis());
                8
            }
            (Values::Decimal(v), ColumnKind::WideInteger, Cell::Int(n)) if fits_decimal_38(*n) => {
                v.push(n.to_be_bytes());
                16
            }
            (Values::Double(v), ColumnKind::Float, Cell::Float(f)) => {
                v.push(*f);
                8
            }
            (Values::Bool(v), ColumnKind::Bool, Cell::Bool(b)) => {
                v.push(*b);
                1
            }
            _ => return Err(mismatch()),
        };
        self.defs.push(1);
        Ok(added + 2)
    }

    /// Writes the buffered values as this column's chunk of the row group, and empties
    /// the buffers (keeping their room for the next group).
    fn write(&mut self, mut column: SerializedColumnWriter<'_>) -> Result<(), Error> {
        let defs = Some(&self.defs[..]);
        let reps = (self.kind == ColumnKind::List).then_some(&self.reps[..]);
        match &mut self.values {
            Values::Bytes { data, ends } => {
                // One allocation for the group's text; each value is a slice of it. The
                // next group starts with as much room, not grown again by doubling.
                let room = data.len();
                let all = Bytes::from(std::mem::replace(data, Vec::with_capacity(room)));
                let mut start = 0;
                let values: Vec<ByteArray> = ends
                    .iter()
                    .map(|&end| {
                        let value = ByteArray::from(all.slice(start..end));
                        start = end;
                        value
                    })
                    .collect();
                column
                    .typed::<ByteArrayType>()
                    .write_batch(&values, defs, reps)
                    .map_err(parquet_error)?;
                ends.clear();
            }
            Values::Int64(v) => {
                column
                    .typed::<Int64Type>()
                    .write_batch(v, defs, reps)
                    .map_err(parquet_error)?;
                v.clear();
            }
            Values::Decimal(v) => {
                let values: Vec<FixedLenByteArray> = v.iter().map(|b| FixedLenByteArray::from(b.to_vec())).collect();
                column
                    .typed::<FixedLenByteArrayType>()
                    .write_batch(&values, defs, reps)
                    .map_err(parquet_error)?;
                v.clear();
            }
            Values::Double(v) => {
                column
                    .typed::<DoubleType>()
                    .write_batch(v, defs, reps)
                    .map_err(parquet_error)?;
                v.clear();
            }
            Values::Bool(v) => {
                column
                    .typed::<BoolType>()
                    .write_batch(v, defs, reps)
                    .map_err(parquet_error)?;
                v.clear();
            }
        }
        self.defs.clear();
        self.reps.clear();
        column.close().map_err(parquet_error)
    }
}

/// The schema leaf of a column named `name`.
fn leaf_type(name: &str, kind: ColumnKind) -> Result<Type, ParquetError> {
    let optional = |physical| Type::primitive_type_builder(name, physical).with_repetition(Repetition::OPTIONAL);
    match kind {
        ColumnKind::Text => optional(Physical::BYTE_ARRAY)
            .with_logical_type(Some(LogicalType::String))
            .build(),
        ColumnKind::Unsigned => optional(Physical::INT64)
            .with_logical_type(Some(LogicalType::integer(64, false)))
            .build(),
        ColumnKind::WideInteger => optional(Physical::FIXED_LEN_BYTE_ARRAY)
            .with_length(16)
            .with_logical_type(Some(LogicalType::decimal(0, 38)))
            .with_precision(38)
            .with_scale(0)
            .build(),
        ColumnKind::Float => optional(Physical::DOUBLE).build(),
        ColumnKind::Bool => optional(Physical::BOOLEAN).build(),
        ColumnKind::Time => optional(Physical::INT64)
            .with_logical_type(Some(LogicalType::timestamp(true, TimeUnit::MILLIS)))
            .build(),
        // The three levels the format's LogicalTypes.md prescribes for lists.
        ColumnKind::List => {
            let element = Type::primitive_type_builder("element", Physical::BYTE_ARRAY)
                .with_repetition(Repetition::REQUIRED)
                .with_logical_type(Some(LogicalType::String))
                .build()?;
            let list = Type::group_type_builder("list")
                .with_repetition(Repetition::REPEATED)
                .with_fields(vec![Arc::new(element)])
                .build()?;
            Type::group_type_builder(name)
                .with_repetition(Repetition::OPTIONAL)
                .with_logical_type(Some(LogicalType::List))
                .with_fields(vec![Arc::new(list)])
                .build()
        }
    }
}

/// The file's schema: a leaf per column, consecutive dotted keys under one group.
fn schema(columns: &[Column]) -> Result<TypePtr, ParquetError> {
    let mut fields: Vec<TypePtr> = Vec::new();
    let mut n = 0;
    while n < columns.len() {
        match columns[n].key.split_once('.') {
            Some((group, _)) => {
                let mut members = Vec::new();
                while let Some(column) = columns.get(n)
                    && let Some((prefix, leaf)) = column.key.split_once('.')
                    && prefix == group
                {
                    members.push(Arc::new(leaf_type(leaf, column.kind)?));
                    n += 1;
                }
                let nested = Type::group_type_builder(group)
                    .with_repetition(Repetition::REQUIRED)
                    .with_fields(members)
                    .build()?;
                fields.push(Arc::new(nested));
            }
            None => {
                fields.push(Arc::new(leaf_type(columns[n].key, columns[n].kind)?));
                n += 1;
            }
        }
    }
    let mut names: Vec<&str> = fields.iter().map(|f| f.name()).collect();
    names.sort_unstable();
    if let Some(twice) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(ParquetError::General(format!("the field {} is named twice", twice[0])));
    }
    Ok(Arc::new(
        Type::group_type_builder("schema").with_fields(fields).build()?,
    ))
}

pub struct ParquetEncoder {
    writer: Option<SerializedFileWriter<SharedBuf>>,
    out: SharedBuf,
    leaves: Vec<Leaf>,
    /// Rows and bytes buffered for the row group being made.
    rows: usize,
    buffered: usize,
    row_group_bytes: usize,
}

impl ParquetEncoder {
    pub fn new(columns: &[Column], codec: ParquetCodec) -> Result<Self, Error> {
        Self::with_row_group_bytes(columns, codec, ROW_GROUP_BYTES)
    }

    /// An encoder that closes a row group once `row_group_bytes` are buffered.
    pub fn with_row_group_bytes(
        columns: &[Column],
        codec: ParquetCodec,
        row_group_bytes: usize,
    ) -> Result<Self, Error> {
        let compression = match codec {
            ParquetCodec::None => Codec::UNCOMPRESSED,
            ParquetCodec::Snappy => Codec::SNAPPY,
            ParquetCodec::Zstd => Codec::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL).map_err(parquet_error)?),
        };
        let properties = WriterProperties::builder()
            .set_compression(compression)
            // Version 1 data pages: what every reader (older Spark, Athena) reads.
            .set_writer_version(WriterVersion::PARQUET_1_0)
            .set_created_by(format!("chat-export {}", env!("CARGO_PKG_VERSION")))
            .build();
        let out = SharedBuf::default();
        let writer = SerializedFileWriter::new(
            out.clone(),
            schema(columns).map_err(parquet_error)?,
            Arc::new(properties),
        )
        .map_err(parquet_error)?;
        let leaves = columns
            .iter()
            .map(|c| Leaf {
                key: c.key,
                kind: c.kind,
                values: Values::of(c.kind),
                defs: Vec::new(),
                reps: Vec::new(),
            })
            .collect();
        Ok(Self {
            writer: Some(writer),
            out,
            leaves,
            rows: 0,
            buffered: 0,
            row_group_bytes,
        })
    }

    /// Writes the buffered rows as a row group and hands its bytes to the output.
    fn flush_row_group(&mut self) -> Result<(), Error> {
        if self.rows == 0 {
            return Ok(());
        }
        let Self { writer, leaves, .. } = self;
        let writer = writer.as_mut().ok_or_else(closed)?;
        let mut group = writer.next_row_group().map_err(parquet_error)?;
        for leaf in leaves.iter_mut() {
            let column = group
                .next_column()
                .map_err(parquet_error)?
                .ok_or_else(|| Error::internal("encoding error", "the schema has fewer leaves than columns"))?;
            leaf.write(column)?;
        }
        group.close().map_err(parquet_error)?;
        // The file writer buffers its output (a BufWriter): let the group's last bytes out.
        writer.flush().map_err(|e| Error::internal("encoding error", e))?;
        self.rows = 0;
        self.buffered = 0;
        Ok(())
    }
}

impl Encoder for ParquetEncoder {
    fn write_row(&mut self, row: &[Cell]) -> Result<(), Error> {
        for (leaf, cell) in self.leaves.iter_mut().zip(row) {
            self.buffered += leaf.push(cell)?;
        }
        self.rows += 1;
        if self.buffered >= self.row_group_bytes {
            self.flush_row_group()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Error> {
        self.flush_row_group()?;
        let mut writer = self.writer.take().ok_or_else(closed)?;
        writer.finish().map_err(parquet_error)?;
        Ok(())
    }

    fn take_output(&mut self) -> Result<Vec<u8>, Error> {
        Ok(self.out.take())
    }
}

#[cfg(test)]
mod tests {
    use ::parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;

    fn encode(encoder: &mut ParquetEncoder, rows: &[Vec<Cell>]) -> (Vec<u8>, usize) {
        let mut file = Vec::new();
        let mut chunks_before_end = 0;
        for row in rows {
            encoder.write_row(row).unwrap();
            let chunk = encoder.take_output().unwrap();
            chunks_before_end += usize::from(!chunk.is_empty());
            file.extend(chunk);
        }
        encoder.finish().unwrap();
        file.extend(encoder.take_output().unwrap());
        (file, chunks_before_end)
    }

    fn read(file: Vec<u8>) -> (usize, Vec<String>) {
        let reader = SerializedFileReader::new(Bytes::from(file)).unwrap();
        let groups = reader.metadata().num_row_groups();
        let rows = reader
            .get_row_iter(None)
            .unwrap()
            .map(|r| r.unwrap().to_string())
            .collect();
        (groups, rows)
    }

    #[test]
    fn row_groups_are_cut_by_size_and_leave_before_the_end() {
        let columns = [Column::new("N", "n").unsigned(), Column::new("T", "t")];
        let rows: Vec<Vec<Cell>> = (0..500)
            .map(|i| vec![Cell::Int(i), Cell::Text(format!("row {i}").into())])
            .collect();
        let mut encoder = ParquetEncoder::with_row_group_bytes(&columns, ParquetCodec::Zstd, 1000).unwrap();
        let (file, chunks_before_end) = encode(&mut encoder, &rows);
        let (groups, got) = read(file);
        assert!(groups > 10, "{groups} row groups");
        assert!(
            chunks_before_end >= groups - 1,
            "{chunks_before_end} chunks before the end"
        );
        let want: Vec<String> = (0..500).map(|i| format!("{{n: {i}, t: \"row {i}\"}}")).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn every_kind_keeps_its_value() {
        let columns = [
            Column::new("Id", "id"),
            Column::new("Count", "count").unsigned(),
            Column::new("Sum", "sum").wide_integer(),
            Column::new("Score", "score").float(),
            Column::new("Yes", "yes").boolean(),
            Column::new("At", "at").time(),
            Column::new("Tags", "tags").list_sep(","),
            Column::new("Country", "geo.country"),
            Column::new("Lat", "geo.lat").float(),
        ];
        let at = DateTime::parse_from_rfc3339("9999-12-31T23:59:59.999Z")
            .unwrap()
            .to_utc();
        let rows = vec![
            vec![
                Cell::Text("a".into()),
                Cell::Int(u64::MAX.into()),
                Cell::Int(i128::from(u64::MAX) * 3),
                Cell::Float(-0.0),
                Cell::Bool(true),
                Cell::Time(at),
                Cell::List(vec!["x".into(), String::new()]),
                Cell::Text(String::new().into()),
                Cell::Float(1.5),
            ],
            vec![
                Cell::Text("b".into()),
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
                Cell::Bool(false),
                Cell::Empty,
                Cell::List(Vec::new()),
                Cell::Empty,
                Cell::Empty,
            ],
            vec![Cell::Empty; 9],
        ];
        let mut encoder = ParquetEncoder::new(&columns, ParquetCodec::Snappy).unwrap();
        let (groups, got) = read(encode(&mut encoder, &rows).0);
        assert_eq!(groups, 1);
        let sum = i128::from(u64::MAX) * 3;
        assert_eq!(
            got,
            [
                format!(
                    // The reader's own display: a DECIMAL with its point, a double in E notation.
                    "{{id: \"a\", count: {}, sum: {sum}., score: -0E0, yes: true, at: 9999-12-31 23:59:59.999 +00:00, \
                     tags: [\"x\", \"\"], geo: {{country: \"\", lat: 1.5}}}}",
                    u64::MAX
                ),
                "{id: \"b\", count: null, sum: null, score: null, yes: false, at: null, tags: [], geo: {country: null, \
                 lat: null}}"
                    .to_string(),
                "{id: null, count: null, sum: null, score: null, yes: null, at: null, tags: null, geo: {country: \
                 null, lat: null}}"
                    .to_string(),
            ]
        );
    }

    #[test]
    fn a_cell_of_another_type_fails_the_file() {
        let columns = [Column::new("Count", "count").unsigned()];
        let mut encoder = ParquetEncoder::new(&columns, ParquetCodec::None).unwrap();
        let err = encoder.write_row(&[Cell::Text("7".into())]).unwrap_err();
        assert!(
            err.cause_chain().contains("column count: a text cell"),
            "{}",
            err.cause_chain()
        );
        let err = encoder.write_row(&[Cell::Int(-1)]).unwrap_err();
        assert!(err.cause_chain().contains("column count"), "{}", err.cause_chain());
    }
}
