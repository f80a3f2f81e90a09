//! `compile`: an [`ExportSpec`] becomes the pipeline that runs it:
//! source (typed records from a [`Store`]) -> rows -> encoder (-> compression).
//!
//! This is the one place that picks encoders, frames documents (the chat export's JSON
//! and Excel with their summary, the ZIP of both) and applies limits, whoever started
//! the export: an HTTP request, a job, a schedule, or the benchmark.

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, stream};

use crate::{
    error::Error,
    export::{
        Column, EncodeOptions, Encoder, Pipeline, Row, RowBatches,
        compress::{self, Compression},
        csv::CsvEncoder,
        json::JsonEncoder,
        parquet::{ParquetCodec, ParquetEncoder},
        xlsx::XlsxEncoder,
    },
    kinds::{
        chats::{
            self, ChatFormat, SharedStats,
            document::{ChatDocumentInfo, ChatJsonEncoder, ChatXlsxEncoder, ZipEncoder},
            stats_of,
        },
        conversations::{self, Folder},
        leads, sessions,
    },
    source::{Pages, Store},
    spec::{ChatsSpec, ConversationsSpec, ExportSpec, FileFamily, FileOptions, LeadsSpec, TableFormat},
};

fn encode_options(options: &FileOptions, as_of: DateTime<Utc>) -> EncodeOptions {
    EncodeOptions {
        spreadsheet_safe: options.spreadsheet_safe,
        time_zone: options.time_zone,
        bom: options.bom,
        created: as_of,
        ..EncodeOptions::default()
    }
}

/// The codec of a Parquet file (the spec's `compression`, checked by [`compile`]).
fn parquet_codec(options: &FileOptions) -> Result<ParquetCodec, Error> {
    options.compression.parquet_codec().ok_or_else(|| {
        Error::bad_request(format!(
            "compression {} does not apply to the parquet format",
            options.compression.as_str()
        ))
    })
}

/// The plain encoder of a tabular format.
fn table_encoder(
    format: TableFormat,
    sheet: &str,
    columns: &[Column],
    options: &FileOptions,
    as_of: DateTime<Utc>,
) -> Result<Box<dyn Encoder>, Error> {
    let encoding = encode_options(options, as_of);
    Ok(match format {
        TableFormat::Csv => Box::new(CsvEncoder::new(columns, encoding)?),
        TableFormat::Json => Box::new(JsonEncoder::new(columns)),
        TableFormat::Jsonl => Box::new(JsonEncoder::lines(columns)),
        TableFormat::Xlsx => Box::new(XlsxEncoder::new(sheet, columns, encoding)?),
        TableFormat::Parquet => Box::new(ParquetEncoder::new(columns, parquet_codec(options)?)?),
    })
}

/// At most `limit` records, in order; no page is pulled once the limit is reached.
fn limited<T: Send + 'static>(pages: Pages<T>, limit: u64) -> Pages<T> {
    stream::try_unfold((pages, limit), |(mut pages, remaining)| async move {
        if remaining == 0 {
            return Ok(None);
        }
        let Some(mut page) = pages.try_next().await? else {
            return Ok(None);
        };
        page.truncate(usize::try_from(remaining).unwrap_or(usize::MAX));
        let left = remaining - page.len() as u64;
        Ok(Some((page, (pages, left))))
    })
    .boxed()
}

/// What compiling a kind gives: its rows, its columns and its document's encoder.
struct Parts {
    rows: RowBatches,
    columns: Vec<Column>,
    encoder: Box<dyn Encoder>,
}

fn leads_parts(spec: &LeadsSpec, store: &dyn Store) -> Result<Parts, Error> {
    let wanted = spec.columns.clone();
    // A column is moved out of each lead once (LeadColumn::take), so a spec (perhaps
    // replayed from a queue) naming one twice is refused rather than given an empty
    // second copy.
    if let Some((_, twice)) = wanted.iter().enumerate().find(|(n, c)| wanted[..*n].contains(c)) {
        return Err(Error::bad_request(format!(
            "leads column '{}' is listed twice",
            twice.key()
        )));
    }
    let columns: Vec<Column> = wanted.iter().map(|c| c.column()).collect();
    let rows = store
        .leads(&spec.filter, spec.as_of)
        .map_ok(move |page| {
            page.into_iter()
                .map(|mut lead| wanted.iter().map(|c| c.take(&mut lead)).collect::<Row>())
                .collect()
        })
        .boxed();
    let encoder = table_encoder(spec.format, leads::SHEET, &columns, &spec.options, spec.as_of)?;
    Ok(Parts { rows, columns, encoder })
}

fn chats_parts(spec: &ChatsSpec, store: &dyn Store) -> Result<Parts, Error> {
    let stats = SharedStats::default();
    let columns = chats::columns(spec.chat);
    let options = encode_options(&spec.options, spec.as_of);
    let info = ChatDocumentInfo {
        export_date: spec.as_of,
        requested: spec.filter.range.clone(),
        client_id: spec.filter.client_id.clone(),
        format: spec.format.as_str().to_string(),
        include_geo: spec.chat.include_geo,
        include_meta: spec.chat.include_meta,
    };
    let json = || ChatJsonEncoder::new(&columns, stats.clone(), info.clone());
    let xlsx = || ChatXlsxEncoder::new(&columns, options, stats.clone(), info.clone());
    let encoder: Box<dyn Encoder> = match spec.format {
        ChatFormat::Json => Box::new(json()),
        ChatFormat::Excel => Box::new(xlsx()?),
        ChatFormat::Both => {
            let (json_name, xlsx_name) = chats::zip_entries(spec.as_of);
            Box::new(ZipEncoder::new(json(), xlsx()?, &json_name, &xlsx_name)?)
        }
        ChatFormat::Csv => Box::new(CsvEncoder::new(&columns, options)?),
        // One message per line, without the JSON document's summary (it would need
        // the whole export before the first line).
        ChatFormat::Jsonl => Box::new(JsonEncoder::lines(&columns)),
        // One message per row, like CSV.
        ChatFormat::Parquet => Box::new(ParquetEncoder::new(&columns, parquet_codec(&spec.options)?)?),
    };
    let chat = spec.chat;
    // Every exported message passes the summary on its way to a row.
    let rows = limited(
        store.chat_messages(&spec.filter, spec.as_of),
        u64::from(spec.filter.limit),
    )
    .map_ok(move |page| {
        let mut observed = stats_of(&stats);
        page.into_iter()
            .map(|m| {
                observed.observe(&m);
                chats::row(m, chat)
            })
            .collect()
    })
    .boxed();
    Ok(Parts { rows, columns, encoder })
}

/// Conversations folded from their grouped messages, at most `limit` of them.
fn conversation_rows(spec: &ConversationsSpec, store: &dyn Store) -> RowBatches {
    let pages = store.conversation_messages(&spec.filter, spec.as_of);
    let (limit, anonymize) = (u64::from(spec.filter.limit), spec.anonymize_ips);
    let state = (Some(pages), Folder::default(), limit);
    stream::try_unfold(state, move |(pages, mut folder, mut remaining)| async move {
        let Some(mut pages) = pages else { return Ok(None) };
        if remaining == 0 {
            return Ok(None);
        }
        let mut batch: Vec<Row> = Vec::new();
        match pages.try_next().await? {
            Some(page) => {
                for m in &page {
                    if let Some(done) = folder.push(m) {
                        batch.push(done.row(anonymize));
                        remaining -= 1;
                        if remaining == 0 {
                            return Ok(Some((batch, (None, folder, 0))));
                        }
                    }
                }
                Ok(Some((batch, (Some(pages), folder, remaining))))
            }
            None => {
                batch.extend(folder.finish().map(|c| c.row(anonymize)));
                Ok(Some((batch, (None, folder, 0))))
            }
        }
    })
    .boxed()
}

/// The running pipeline of a spec, reading from `store`.
pub fn compile(spec: &ExportSpec, store: &dyn Store) -> Result<Pipeline, Error> {
    // A spec may come from a queue or a stored schedule, not only from the request
    // parsing that checks this first.
    let family = spec.family();
    family.check_compression(spec.options().compression)?;
    let Parts { rows, columns, encoder } = match spec {
        ExportSpec::Sessions(s) => {
            let columns = sessions::COLUMNS.to_vec();
            Parts {
                rows: store
                    .session_lines(s.as_of)
                    .map_ok(|lines| lines.into_iter().map(sessions::row).collect())
                    .boxed(),
                encoder: table_encoder(s.format, sessions::SHEET, &columns, &s.options, s.as_of)?,
                columns,
            }
        }
        ExportSpec::Leads(s) => leads_parts(s, store)?,
        ExportSpec::Chats(s) => chats_parts(s, store)?,
        ExportSpec::Conversations(s) => {
            let columns = conversations::COLUMNS.to_vec();
            Parts {
                rows: conversation_rows(s, store),
                encoder: table_encoder(s.format, conversations::SHEET, &columns, &s.options, s.as_of)?,
                columns,
            }
        }
    };
    // A Parquet file's codec is inside it; no other compression wraps it.
    let around = match family {
        FileFamily::Parquet => Compression::None,
        FileFamily::Csv | FileFamily::Other => spec.options().compression,
    };
    let encoder = compress::wrap(encoder, around, &spec.document_name())?;
    Ok(Pipeline {
        rows,
        encoder,
        width: columns.len(),
    })
}
