//! The encoders through the real engine, read back with independent readers.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use common::{
    export::{
        self, Cell, Column, EncodeOptions, Encoder, Pipeline,
        csv::CsvEncoder,
        json::JsonEncoder,
        parquet::{ParquetCodec, ParquetEncoder},
        xlsx::{EXCEL_MAX_CELL_CHARS, XlsxEncoder},
    },
    spec::TableFormat as Format,
};
use futures::{StreamExt, stream};
use integration_tests::Collect;

fn job(format: Format, rows: Vec<Vec<Cell>>, options: EncodeOptions) -> Pipeline {
    let batches: Vec<Result<Vec<Vec<Cell>>, common::Error>> = rows.chunks(4).map(|c| Ok(c.to_vec())).collect();
    let columns = [Column::new("N", "n").unsigned(), Column::new("Text", "text")];
    let encoder: Box<dyn Encoder> = match format {
        Format::Csv => Box::new(CsvEncoder::new(&columns, options).unwrap()),
        Format::Json => Box::new(JsonEncoder::new(&columns)),
        Format::Jsonl => Box::new(JsonEncoder::lines(&columns)),
        Format::Xlsx => Box::new(XlsxEncoder::new("Data", &columns, options).unwrap()),
        Format::Parquet => Box::new(ParquetEncoder::new(&columns, ParquetCodec::Zstd).unwrap()),
    };
    Pipeline {
        rows: stream::iter(batches).boxed(),
        encoder,
        width: columns.len(),
    }
}

async fn encode(job: Pipeline) -> Vec<u8> {
    export::run(job, Collect::default()).await.unwrap().1
}

#[tokio::test]
async fn excel_rows_continue_on_new_sheets_and_long_cells_are_truncated() {
    let long = "é".repeat(EXCEL_MAX_CELL_CHARS + 10);
    let rows: Vec<Vec<Cell>> = (0..10)
        .map(|i| {
            vec![
                Cell::Int(i),
                Cell::Text(if i == 7 {
                    long.clone().into()
                } else {
                    format!("row {i}").into()
                }),
            ]
        })
        .collect();
    let options = EncodeOptions {
        sheet_row_limit: 4,
        ..EncodeOptions::default()
    };
    let bytes = encode(job(Format::Xlsx, rows, options)).await;
    let mut wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).unwrap();
    assert_eq!(wb.sheet_names(), ["Data", "Data (2)", "Data (3)"]);
    let mut numbers = Vec::new();
    for name in wb.sheet_names() {
        let range = wb.worksheet_range(&name).unwrap();
        let rows: Vec<_> = range.rows().collect();
        assert_eq!(
            rows[0],
            [Data::String("N".into()), Data::String("Text".into())],
            "{name} has a header"
        );
        for r in &rows[1..] {
            numbers.push(match r[0] {
                Data::Float(f) => f as i64,
                Data::Int(i) => i,
                ref other => panic!("{other:?}"),
            });
            if r[0] == Data::Float(7.0) {
                let Data::String(s) = &r[1] else { panic!() };
                assert_eq!(s.chars().count(), EXCEL_MAX_CELL_CHARS);
            }
        }
    }
    assert_eq!(numbers, (0..10).collect::<Vec<_>>(), "no row lost across sheets");
}

#[tokio::test]
async fn json_json_lines_and_csv_keep_long_text_whole() {
    let long = "x".repeat(EXCEL_MAX_CELL_CHARS * 2);
    let rows = vec![vec![Cell::Int(1), Cell::Text(long.clone().into())]];
    let json = encode(job(Format::Json, rows.clone(), EncodeOptions::default())).await;
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v[0]["text"].as_str().unwrap().len(), long.len());
    let lines = encode(job(Format::Jsonl, rows.clone(), EncodeOptions::default())).await;
    assert_eq!(lines, integration_tests::json_array_as_lines(&json));
    let csv = encode(job(Format::Csv, rows, EncodeOptions::default())).await;
    let (_, rows) = integration_tests::parse_csv(&csv);
    assert_eq!(rows[0][1], long);
}
