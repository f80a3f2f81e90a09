//! The chat export's documents: JSON with `messages`, `summary` and `export_info`,
//! Excel with "Chat Messages" and "Summary" sheets, and a ZIP holding both. The
//! summary is read from [`SharedStats`] once the source is exhausted.

use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use rust_xlsxwriter::{Format as CellFormat, Workbook, XlsxError};
use serde::Serialize;
use zip::{CompressionMethod, ZipWriter, write::SimpleFileOptions, write::StreamWriter};

use super::{SharedStats, Summary, day_range, stats_of};
use crate::{
    error::Error,
    export::{
        Cell, Column, EncodeOptions, Encoder, Row, SharedBuf, in_parallel,
        json::JsonEncoder,
        xlsx::{EXCEL_DATE_FORMAT, XlsxEncoder, XlsxFigures, write_integer},
    },
    kinds::DateRange,
};

/// What `export_info` says besides the record count.
#[derive(Clone, Debug)]
pub struct ChatDocumentInfo {
    pub export_date: DateTime<Utc>,
    /// The requested range; when open, the summary's range of the data is used.
    pub requested: DateRange,
    /// `None`: every client.
    pub client_id: Option<String>,
    /// As asked: `json`, `excel`, `both` or `csv`.
    pub format: String,
    pub include_geo: bool,
    pub include_meta: bool,
}

#[derive(Serialize)]
struct ExportInfo<'a> {
    export_date: String,
    total_records: u64,
    date_range: String,
    client_id: Option<&'a str>,
    format: &'a str,
    include_geo: bool,
    include_meta: bool,
}

impl ChatDocumentInfo {
    fn date_range(&self, summary: &Summary) -> String {
        if self.requested.from.is_none() && self.requested.to.is_none() {
            summary.date_range.clone()
        } else {
            day_range(self.requested.from, self.requested.to)
        }
    }

    fn export_info(&self, summary: &Summary) -> ExportInfo<'_> {
        ExportInfo {
            export_date: self.export_date.to_rfc3339_opts(SecondsFormat::Secs, true),
            total_records: summary.total_messages,
            date_range: self.date_range(summary),
            client_id: self.client_id.as_deref(),
            format: &self.format,
            include_geo: self.include_geo,
            include_meta: self.include_meta,
        }
    }
}

fn encode_error(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::internal("encoding error", e)
}

/// `{"messages": [...], "summary": {...}, "export_info": {...}}`. `export_info` comes
/// last because `total_records` is only known once every message has passed.
pub struct ChatJsonEncoder {
    inner: JsonEncoder,
    stats: SharedStats,
    info: ChatDocumentInfo,
}

impl ChatJsonEncoder {
    pub fn new(columns: &[Column], stats: SharedStats, info: ChatDocumentInfo) -> Self {
        Self {
            inner: JsonEncoder::with_prefix(columns, "{\"messages\":"),
            stats,
            info,
        }
    }
}

impl Encoder for ChatJsonEncoder {
    fn write_row(&mut self, row: &[Cell]) -> Result<(), Error> {
        self.inner.write_row(row)
    }

    fn write_batch(&mut self, rows: &[Row]) -> Result<(), Error> {
        self.inner.write_batch(rows)
    }

    fn finish(&mut self) -> Result<(), Error> {
        let summary = stats_of(&self.stats).summary();
        if summary.total_messages != self.inner.rows() {
            return Err(Error::internal("export error", "summary and messages disagree"));
        }
        self.inner.close_array();
        let summary_json = serde_json::to_string(&summary).map_err(encode_error)?;
        let info_json = serde_json::to_string(&self.info.export_info(&summary)).map_err(encode_error)?;
        self.inner.push_raw(&format!(
            ",\n\"summary\":{summary_json},\n\"export_info\":{info_json}}}\n"
        ));
        Ok(())
    }

    fn take_output(&mut self) -> Result<Vec<u8>, Error> {
        self.inner.take_output()
    }
}

/// Sheet "Chat Messages" (continued on "Chat Messages (2)", ... past Excel's row
/// limit) and sheet "Summary".
pub struct ChatXlsxEncoder {
    inner: XlsxEncoder,
    stats: SharedStats,
    info: ChatDocumentInfo,
}

impl ChatXlsxEncoder {
    pub fn new(
        columns: &[Column],
        options: EncodeOptions,
        stats: SharedStats,
        info: ChatDocumentInfo,
    ) -> Result<Self, Error> {
        Ok(Self {
            inner: XlsxEncoder::new("Chat Messages", columns, options)?,
            stats,
            info,
        })
    }
}

fn write_summary_sheet(
    wb: &mut Workbook,
    summary: &Summary,
    info: &ChatDocumentInfo,
    figures: &XlsxFigures,
) -> Result<(), XlsxError> {
    let bold = CellFormat::new().set_bold();
    let title = CellFormat::new().set_bold().set_font_size(14);
    let date = CellFormat::new().set_num_format(EXCEL_DATE_FORMAT);
    let decimal = CellFormat::new().set_num_format("0.00");
    let ws = wb.add_worksheet();
    ws.set_name("Summary")?;
    ws.set_column_width(0, 36)?;
    ws.set_column_width(1, 28)?;
    ws.write_string_with_format(0, 0, "Chat export summary", &title)?;
    let mut r = 2;
    let mut label = |ws: &mut rust_xlsxwriter::Worksheet, text: &str| -> Result<u32, XlsxError> {
        ws.write_string_with_format(r, 0, text, &bold)?;
        r += 1;
        Ok(r - 1)
    };
    let row = label(ws, "Export date (UTC)")?;
    ws.write_datetime_with_format(row, 1, info.export_date.naive_utc(), &date)?;
    let row = label(ws, "Total records")?;
    write_integer(ws, row, 1, summary.total_messages.into())?;
    let row = label(ws, "Date range")?;
    ws.write_string(row, 1, info.date_range(summary))?;
    let row = label(ws, "Client")?;
    ws.write_string(row, 1, info.client_id.as_deref().unwrap_or("all clients"))?;
    let row = label(ws, "Total messages")?;
    write_integer(ws, row, 1, summary.total_messages.into())?;
    let row = label(ws, "Total tokens")?;
    write_integer(ws, row, 1, i128::try_from(summary.total_tokens).unwrap_or(i128::MAX))?;
    let row = label(ws, "Unique users")?;
    ws.write_number(row, 1, summary.unique_users as f64)?;
    let row = label(ws, "Messages date range")?;
    ws.write_string(row, 1, &summary.date_range)?;
    let row = label(ws, "Total conversations")?;
    ws.write_number(row, 1, summary.conversation_stats.total_conversations as f64)?;
    let row = label(ws, "Avg messages per conversation")?;
    ws.write_number_with_format(
        row,
        1,
        summary.conversation_stats.avg_messages_per_conversation,
        &decimal,
    )?;
    let row = label(ws, "Longest conversation (messages)")?;
    ws.write_number(row, 1, summary.conversation_stats.longest_conversation as f64)?;
    let row = label(ws, "Message sheets")?;
    ws.write_number(row, 1, figures.data_sheets as f64)?;
    let row = label(ws, "Cells truncated to 32,767 characters")?;
    ws.write_number(row, 1, figures.truncated_cells as f64)?;
    let mut r = r + 1;
    let mut table = |heading: &str, key: &str, rows: Vec<(String, u64)>| -> Result<(), XlsxError> {
        ws.write_string_with_format(r, 0, heading, &title)?;
        ws.write_string_with_format(r + 1, 0, key, &bold)?;
        ws.write_string_with_format(r + 1, 1, "Messages", &bold)?;
        r += 2;
        for (name, count) in rows {
            ws.write_string(r, 0, name)?;
            ws.write_number(r, 1, count as f64)?;
            r += 1;
        }
        r += 1;
        Ok(())
    };
    table(
        "Top countries",
        "Country",
        summary
            .top_countries
            .iter()
            .map(|c| (c.country.clone(), c.count))
            .collect(),
    )?;
    table(
        "Top ISPs",
        "ISP",
        summary.top_isps.iter().map(|c| (c.isp.clone(), c.count)).collect(),
    )?;
    table(
        "IP types",
        "IP type",
        summary.ip_type_breakdown.iter().map(|(k, v)| (k.clone(), *v)).collect(),
    )?;
    Ok(())
}

impl Encoder for ChatXlsxEncoder {
    fn write_row(&mut self, row: &[Cell]) -> Result<(), Error> {
        self.inner.write_row(row)
    }

    fn write_batch(&mut self, rows: &[Row]) -> Result<(), Error> {
        self.inner.write_batch(rows)
    }

    fn finish(&mut self) -> Result<(), Error> {
        let summary = stats_of(&self.stats).summary();
        let info = &self.info;
        self.inner
            .finish_with(|wb, figures| write_summary_sheet(wb, &summary, info, figures))
    }

    fn take_output(&mut self) -> Result<Vec<u8>, Error> {
        self.inner.take_output()
    }
}

enum ZipStage {
    /// Rows flow into the JSON entry (the workbook's rows go to its temporary files).
    Rows,
    /// The finished workbook is being copied into the second entry.
    Workbook,
    Done,
}

/// A ZIP of `<name>.json` and `<name>.xlsx`, streamed: the JSON entry is written while
/// rows pass; the workbook, assembled on disk, is copied in chunk by chunk at the end.
pub struct ZipEncoder {
    zip: Option<ZipWriter<StreamWriter<SharedBuf>>>,
    out: SharedBuf,
    json: ChatJsonEncoder,
    xlsx: ChatXlsxEncoder,
    xlsx_name: String,
    stage: ZipStage,
}

impl ZipEncoder {
    pub fn new(json: ChatJsonEncoder, xlsx: ChatXlsxEncoder, json_name: &str, xlsx_name: &str) -> Result<Self, Error> {
        let out = SharedBuf::default();
        let mut zip = ZipWriter::new_stream(out.clone());
        zip.start_file(
            json_name,
            SimpleFileOptions::default()
                .compression_method(CompressionMethod::Deflated)
                .compression_level(Some(i64::from(crate::export::compress::DEFLATE_LEVEL))),
        )
        .map_err(encode_error)?;
        Ok(Self {
            zip: Some(zip),
            out,
            json,
            xlsx,
            xlsx_name: xlsx_name.to_string(),
            stage: ZipStage::Rows,
        })
    }

    fn zip(&mut self) -> Result<&mut ZipWriter<StreamWriter<SharedBuf>>, Error> {
        self.zip
            .as_mut()
            .ok_or_else(|| Error::internal("encoding error", "zip archive already closed"))
    }
}

impl Encoder for ZipEncoder {
    fn write_row(&mut self, row: &[Cell]) -> Result<(), Error> {
        self.json.write_row(row)?;
        self.xlsx.write_row(row)
    }

    /// The workbook takes the rows on a second thread while the JSON entry is written
    /// and deflated on this one: the two halves share nothing but the rows.
    fn write_batch(&mut self, rows: &[Row]) -> Result<(), Error> {
        let Self { zip, json, xlsx, .. } = self;
        let (workbook, document) = in_parallel(
            || xlsx.write_batch(rows),
            || -> Result<(), Error> {
                json.write_batch(rows)?;
                let bytes = json.take_output()?;
                zip.as_mut()
                    .ok_or_else(|| Error::internal("encoding error", "zip archive already closed"))?
                    .write_all(&bytes)
                    .map_err(encode_error)
            },
        );
        document.and(workbook)
    }

    fn finish(&mut self) -> Result<(), Error> {
        self.json.finish()?;
        let tail = self.json.take_output()?;
        self.zip()?.write_all(&tail).map_err(encode_error)?;
        self.xlsx.finish()?;
        // The workbook is itself compressed: store it as is.
        let name = self.xlsx_name.clone();
        self.zip()?
            .start_file(
                name,
                SimpleFileOptions::default().compression_method(CompressionMethod::Stored),
            )
            .map_err(encode_error)?;
        self.stage = ZipStage::Workbook;
        Ok(())
    }

    /// Empty only when everything is out: while copying the workbook it keeps reading
    /// until the archive has produced bytes or is closed.
    fn take_output(&mut self) -> Result<Vec<u8>, Error> {
        match self.stage {
            ZipStage::Rows => {
                let json = self.json.take_output()?;
                self.zip()?.write_all(&json).map_err(encode_error)?;
            }
            ZipStage::Workbook => loop {
                let chunk = self.xlsx.take_output()?;
                if chunk.is_empty() {
                    let zip = self
                        .zip
                        .take()
                        .ok_or_else(|| Error::internal("encoding error", "zip archive already closed"))?;
                    zip.finish().map_err(encode_error)?;
                    self.stage = ZipStage::Done;
                    break;
                }
                self.zip()?.write_all(&chunk).map_err(encode_error)?;
                if !self.out.is_empty() {
                    break;
                }
            },
            ZipStage::Done => {}
        }
        Ok(self.out.take())
    }
}
