//! The export engine: row batches -> encoder -> sink.
//!
//! [`crate::compile::compile`] builds the [`Pipeline`] of a spec (its rows and its
//! encoder); [`run`] drives it into a sink, the encoder on its own thread. Memory is
//! bounded by a few source pages, the encoder's pending output and the multipart parts
//! in flight: nothing ever holds a whole export.

pub mod compress;
pub mod csv;
pub mod json;
pub mod parquet;
pub mod sink;
pub mod xlsx;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures::{TryStreamExt, stream::BoxStream};
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;

use crate::{error::Error, timefmt::TimeZone};
pub use sink::{ByteSink, Delivered, S3Sink};

/// One cell of a row, typed so every encoder can render it natively.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Empty,
    /// Text, inline up to 24 bytes: most cells (ids, names, places) allocate nothing.
    Text(crate::model::Text),
    /// Any integer a model holds (`i64`, `u64`), exactly.
    Int(i128),
    Float(f64),
    /// Yes/No in tabular formats, true/false in JSON.
    Bool(bool),
    Time(DateTime<Utc>),
    /// Several values: joined with the column's separator in tabular formats, an
    /// array in JSON.
    List(Vec<String>),
}

pub type Row = Vec<Cell>;

/// A `Write` destination shared with its owner, so encoded bytes can be taken out
/// between batches while a writer (`csv::Writer`, `zip::ZipWriter`) keeps it.
#[derive(Clone, Default)]
pub struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    /// The buffer, even after a panic poisoned the lock: bytes are only appended.
    fn bytes(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The bytes so far; the buffer starts again with as much room as they took, so
    /// the next batch's output is not grown by doubling (each step a copy, and garbage
    /// the allocator holds for a while: peak RSS).
    pub fn take(&self) -> Vec<u8> {
        let mut bytes = self.bytes();
        let room = bytes.len();
        std::mem::replace(&mut *bytes, Vec::with_capacity(room))
    }

    pub fn is_empty(&self) -> bool {
        self.bytes().is_empty()
    }
}

impl std::io::Write for SharedBuf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.bytes().extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A batch stream of rows, usually one DynamoDB page per batch.
pub type RowBatches = BoxStream<'static, Result<Vec<Row>, Error>>;

/// What a column holds. Parquet types its columns by it; the other encoders follow each
/// cell's own type. A cell that does not fit its column's kind fails the export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnKind {
    Text,
    /// An integer from 0 to `u64::MAX` (counts, durations, token costs).
    Unsigned,
    /// An integer of up to 38 digits (a sum of `u64`s).
    WideInteger,
    Float,
    Bool,
    /// An instant, kept to the millisecond.
    Time,
    /// Several texts.
    List,
}

/// A column of an export: its header in tabular formats and its key in JSON.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Column {
    pub header: &'static str,
    pub key: &'static str,
    /// Width in Excel, in characters; 0 picks one from the header.
    pub width: f64,
    /// Separator of [`Cell::List`] values in tabular formats.
    pub list_sep: &'static str,
    /// Holds timestamps: in a zone other than UTC, Excel names the zone in its header.
    pub time: bool,
    pub kind: ColumnKind,
}

impl Column {
    pub const fn new(header: &'static str, key: &'static str) -> Self {
        Self {
            header,
            key,
            width: 0.0,
            list_sep: ";",
            time: false,
            kind: ColumnKind::Text,
        }
    }

    pub const fn time(mut self) -> Self {
        self.time = true;
        self.kind = ColumnKind::Time;
        self
    }

    pub const fn unsigned(mut self) -> Self {
        self.kind = ColumnKind::Unsigned;
        self
    }

    pub const fn wide_integer(mut self) -> Self {
        self.kind = ColumnKind::WideInteger;
        self
    }

    pub const fn float(mut self) -> Self {
        self.kind = ColumnKind::Float;
        self
    }

    pub const fn boolean(mut self) -> Self {
        self.kind = ColumnKind::Bool;
        self
    }

    pub const fn width(mut self, width: f64) -> Self {
        self.width = width;
        self
    }

    /// A list column, its values joined with `sep` in tabular formats.
    pub const fn list_sep(mut self, sep: &'static str) -> Self {
        self.list_sep = sep;
        self.kind = ColumnKind::List;
        self
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EncodeOptions {
    /// Neutralise text cells a spreadsheet would evaluate as formulas (OWASP CSV injection).
    pub spreadsheet_safe: bool,
    /// Data rows per Excel sheet before the rows continue on a new sheet.
    pub sheet_row_limit: u32,
    /// The zone timestamps are shown in (CSV and Excel).
    pub time_zone: TimeZone,
    /// Start a CSV with a UTF-8 byte order mark.
    pub bom: bool,
    /// When the document was made (a workbook's creation time): the export's `as_of`,
    /// so the same spec always makes the same file.
    pub created: DateTime<Utc>,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self {
            spreadsheet_safe: true,
            sheet_row_limit: xlsx::EXCEL_MAX_DATA_ROWS,
            time_zone: TimeZone::UTC,
            bom: false,
            created: DateTime::UNIX_EPOCH,
        }
    }
}

/// Turns rows into bytes. Output accumulates inside the encoder and is handed to the
/// sink after every batch through [`Encoder::take_output`].
pub trait Encoder: Send {
    fn write_row(&mut self, row: &[Cell]) -> Result<(), Error>;
    /// Writes a batch of rows, in order. An encoder that can put a second thread to
    /// work on the same rows overrides it.
    fn write_batch(&mut self, rows: &[Row]) -> Result<(), Error> {
        rows.iter().try_for_each(|row| self.write_row(row))
    }
    /// Writes whatever closes the document.
    fn finish(&mut self) -> Result<(), Error>;
    /// Bytes produced and not yet taken; empty when there is nothing pending.
    fn take_output(&mut self) -> Result<Vec<u8>, Error>;
}

/// Runs `beside` on a second thread while `here` runs on this one, and returns both
/// results once both are done: an encoder with two independent halves (a ZIP's JSON and
/// workbook) uses both cores this way. A panic on the second thread is re-raised here.
pub(crate) fn in_parallel<A: Send, B>(beside: impl FnOnce() -> A + Send, here: impl FnOnce() -> B) -> (A, B) {
    std::thread::scope(|scope| {
        let other = scope.spawn(beside);
        let mine = here();
        match other.join() {
            Ok(theirs) => (theirs, mine),
            Err(payload) => std::panic::resume_unwind(payload),
        }
    })
}

/// A compiled export, ready to run: its rows and the encoder they go through.
pub struct Pipeline {
    pub rows: RowBatches,
    pub encoder: Box<dyn Encoder>,
    /// Cells per row (checked on every row).
    pub width: usize,
}

#[derive(Debug)]
pub struct Summary {
    pub rows: u64,
    pub bytes: u64,
}

/// Row batches queued for the encoder thread, and encoded chunks queued for the sink.
/// Each bound is what memory holds beyond the batch being made, the batch being encoded
/// and the chunk being written.
const BATCHES_AHEAD: usize = 1;
const CHUNKS_AHEAD: usize = 1;

/// What the source stage hands the encoder thread. `End` says the rows are complete;
/// a channel that closes without it means the source failed, and the document must
/// not be finished.
enum ToEncoder {
    Rows(Vec<Row>),
    End,
}

/// Runs a pipeline into a sink. On any failure the sink is aborted (no partial object
/// is left behind) and the error returned.
///
/// Three stages overlap, so an export uses both cores of a 1,769 MB+ Lambda: the source
/// (DynamoDB pages, decoding, rows) on this task, the encoder on a blocking thread, and
/// the sink (S3 parts) on this task again while the encoder works. Bounded channels
/// between them keep memory flat: a slow sink stalls the encoder, which stalls the source.
pub async fn run<S: ByteSink>(pipeline: Pipeline, mut sink: S) -> Result<(Summary, S::Output), Error> {
    let result = drive(pipeline, &mut sink).await;
    match result {
        Ok(rows) => {
            let bytes = sink.bytes_written();
            match sink.finish().await {
                Ok(out) => Ok((Summary { rows, bytes }, out)),
                Err(e) => Err(e),
            }
        }
        Err(Stopped::Failed(e)) => {
            sink.abort().await;
            Err(e)
        }
        // A stage that panicked panics here too, after the abort, so the caller's
        // panic handling (the request pipeline's JSON 500, the worker's) applies as
        // when every stage ran on this task.
        Err(Stopped::Panicked(payload)) => {
            sink.abort().await;
            std::panic::resume_unwind(payload)
        }
    }
}

/// Why [`drive`] stopped.
enum Stopped {
    Failed(Error),
    Panicked(Box<dyn std::any::Any + Send>),
}

impl From<Error> for Stopped {
    fn from(e: Error) -> Self {
        Stopped::Failed(e)
    }
}

impl From<tokio::task::JoinError> for Stopped {
    fn from(e: tokio::task::JoinError) -> Self {
        match e.try_into_panic() {
            Ok(payload) => Stopped::Panicked(payload),
            Err(e) => Stopped::Failed(Error::internal("export error", format!("a stage stopped: {e}"))),
        }
    }
}

async fn drive<S: ByteSink>(pipeline: Pipeline, sink: &mut S) -> Result<u64, Stopped> {
    let Pipeline { rows, encoder, width } = pipeline;
    let (batch_tx, batch_rx) = mpsc::channel::<ToEncoder>(BATCHES_AHEAD);
    let (chunk_tx, mut chunk_rx) = mpsc::channel::<Vec<u8>>(CHUNKS_AHEAD);
    // Encoded batches come back to be freed where they were allocated: freed on the
    // encoder's thread, their memory lingered in the allocator's cross-thread lists
    // and peak RSS grew by half.
    let (spent_tx, spent_rx) = mpsc::unbounded_channel::<Vec<Row>>();
    // Each stage owns its channel ends, so a stage that stops (error or not) closes
    // them and its neighbours stop too instead of waiting for ever. The source runs
    // as its own task: polled beside the sink on this one, a source whose pages are
    // ready never yielded and the sink (and so the encoder) waited for it.
    let encoding = tokio::task::spawn_blocking(move || encode(encoder, width, batch_rx, chunk_tx, spent_tx));
    // Aborted when this future is dropped (a cancelled request, a worker stopped
    // mid-export): detached, the source would go on reading and renewing a job's lease.
    let producing = AbortOnDropHandle::new(tokio::spawn(produce(rows, batch_tx, spent_rx)));
    let mut consumed = Ok(());
    while let Some(chunk) = chunk_rx.recv().await {
        if let Err(e) = sink.write(chunk).await {
            consumed = Err(e);
            break;
        }
    }
    drop(chunk_rx);
    if consumed.is_err() {
        producing.abort(); // it may be waiting on a read; nothing it makes is wanted
    }
    let encoded = encoding.await?;
    consumed?;
    // Only the stage that failed first has an error; the others merely stopped.
    let produced = producing.await?;
    match (produced?, encoded?) {
        (Some(count), Some(())) => Ok(count),
        _ => Err(Error::internal("export error", "a stage of the export stopped early").into()),
    }
}

/// The source stage: pulls row batches and hands them to the encoder. `Ok(None)` when
/// the encoder went away (its own result holds the reason).
async fn produce(
    mut rows: RowBatches,
    batches: mpsc::Sender<ToEncoder>,
    mut spent: mpsc::UnboundedReceiver<Vec<Row>>,
) -> Result<Option<u64>, Error> {
    let mut count = 0u64;
    let mut release = crate::alloc::Releaser::default();
    while let Some(batch) = rows.try_next().await? {
        while let Ok(done) = spent.try_recv() {
            drop(done);
        }
        release.tick();
        count += batch.len() as u64;
        if batches.send(ToEncoder::Rows(batch)).await.is_err() {
            return Ok(None);
        }
    }
    Ok(batches.send(ToEncoder::End).await.is_ok().then_some(count))
}

/// The encoder stage, on a blocking thread: rows in, encoded chunks out. `Ok(None)`
/// when a neighbouring stage went away (its own result holds the reason).
fn encode(
    mut encoder: Box<dyn Encoder>,
    width: usize,
    mut batches: mpsc::Receiver<ToEncoder>,
    chunks: mpsc::Sender<Vec<u8>>,
    spent: mpsc::UnboundedSender<Vec<Row>>,
) -> Result<Option<()>, Error> {
    let emit = |chunk: Vec<u8>| chunk.is_empty() || chunks.blocking_send(chunk).is_ok();
    let mut release = crate::alloc::Releaser::default();
    loop {
        match batches.blocking_recv() {
            Some(ToEncoder::Rows(batch)) => {
                release.tick();
                if let Some(row) = batch.iter().find(|row| row.len() != width) {
                    return Err(Error::internal(
                        "export error",
                        format!("row has {} cells, expected {width}", row.len()),
                    ));
                }
                encoder.write_batch(&batch)?;
                // Never more than one in the channel: the producer takes it back
                // before making its next batch, and the batch channel holds one.
                let _ = spent.send(batch);
                if !emit(encoder.take_output()?) {
                    return Ok(None);
                }
            }
            Some(ToEncoder::End) => break,
            None => return Ok(None),
        }
    }
    encoder.finish()?;
    loop {
        let chunk = encoder.take_output()?;
        if chunk.is_empty() {
            return Ok(Some(()));
        }
        if !emit(chunk) {
            return Ok(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::{StreamExt, stream};

    use super::*;

    /// Records how it ended; fails its `fail_at`th write.
    #[derive(Default)]
    struct Probe {
        writes: usize,
        fail_at: Option<usize>,
        bytes: u64,
        ended: Arc<Mutex<Option<&'static str>>>,
    }

    impl ByteSink for Probe {
        type Output = ();

        async fn write(&mut self, chunk: Vec<u8>) -> Result<(), Error> {
            self.writes += 1;
            if Some(self.writes) == self.fail_at {
                return Err(Error::internal("storage error", "injected"));
            }
            self.bytes += chunk.len() as u64;
            Ok(())
        }

        fn bytes_written(&self) -> u64 {
            self.bytes
        }

        async fn finish(self) -> Result<(), Error> {
            *self.ended.lock().unwrap() = Some("finished");
            Ok(())
        }

        async fn abort(self) {
            *self.ended.lock().unwrap() = Some("aborted");
        }
    }

    fn pipeline(rows: RowBatches, width: usize) -> Pipeline {
        let columns = [Column::new("A", "a")];
        Pipeline {
            rows,
            encoder: Box::new(json::JsonEncoder::new(&columns)),
            width,
        }
    }

    fn batch(n: usize) -> Vec<Row> {
        (0..n).map(|i| vec![Cell::Int(i as i128)]).collect()
    }

    #[tokio::test]
    async fn every_row_reaches_the_sink_in_order() {
        let rows = stream::iter((0..50).map(|_| Ok(batch(100)))).boxed();
        let ended = Arc::new(Mutex::new(None));
        let sink = Probe {
            ended: ended.clone(),
            ..Probe::default()
        };
        let (summary, ()) = run(pipeline(rows, 1), sink).await.unwrap();
        assert_eq!(summary.rows, 5000);
        assert_eq!(*ended.lock().unwrap(), Some("finished"));
    }

    #[tokio::test]
    async fn a_failing_source_aborts_the_sink_with_its_own_error() {
        let rows = stream::iter((0..10).map(|i| {
            if i == 3 {
                Err(Error::bad_request("the source failed"))
            } else {
                Ok(batch(10))
            }
        }))
        .boxed();
        let ended = Arc::new(Mutex::new(None));
        let sink = Probe {
            ended: ended.clone(),
            ..Probe::default()
        };
        let err = run(pipeline(rows, 1), sink).await.unwrap_err();
        assert!(err.cause_chain().contains("the source failed"), "{}", err.cause_chain());
        assert_eq!(*ended.lock().unwrap(), Some("aborted"));
    }

    #[tokio::test]
    async fn a_failing_sink_stops_an_endless_source() {
        let pulled = Arc::new(AtomicUsize::new(0));
        let counter = pulled.clone();
        let rows = stream::repeat_with(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            Ok(batch(10))
        })
        .boxed();
        let ended = Arc::new(Mutex::new(None));
        let sink = Probe {
            fail_at: Some(3),
            ended: ended.clone(),
            ..Probe::default()
        };
        let err = run(pipeline(rows, 1), sink).await.unwrap_err();
        assert!(err.cause_chain().contains("injected"), "{}", err.cause_chain());
        assert_eq!(*ended.lock().unwrap(), Some("aborted"));
        // Bounded by the channels, not by the source.
        assert!(pulled.load(Ordering::Relaxed) < 20, "{pulled:?}");
    }

    #[tokio::test]
    async fn a_dropped_export_stops_reading_its_source() {
        // Each pull takes a while, as a DynamoDB page does.
        let pulled = Arc::new(AtomicUsize::new(0));
        let counter = pulled.clone();
        let rows = stream::repeat(())
            .then(move |()| {
                counter.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(std::time::Duration::from_millis(20))
            })
            .map(|()| Ok(batch(10)))
            .boxed();
        let export = tokio::spawn(run(pipeline(rows, 1), Probe::default()));
        while pulled.load(Ordering::Relaxed) < 3 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        // A worker that dies, a request whose caller went away.
        export.abort();
        let _ = export.await;
        let at_drop = pulled.load(Ordering::Relaxed);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert_eq!(pulled.load(Ordering::Relaxed), at_drop);
    }

    #[test]
    fn both_halves_run_and_a_panic_beside_is_raised_here() {
        assert_eq!(in_parallel(|| 1, || 2), (1, 2));
        let caught = std::panic::catch_unwind(|| in_parallel(|| -> u8 { panic!("beside") }, || 2));
        let payload = caught.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"beside"));
    }

    #[tokio::test]
    async fn a_malformed_row_fails_the_export() {
        let rows = stream::iter([Ok(batch(5)), Ok(vec![vec![Cell::Empty, Cell::Empty]]), Ok(batch(5))]).boxed();
        let ended = Arc::new(Mutex::new(None));
        let sink = Probe {
            ended: ended.clone(),
            ..Probe::default()
        };
        let err = run(pipeline(rows, 1), sink).await.unwrap_err();
        assert!(err.cause_chain().contains("row has 2 cells"), "{}", err.cause_chain());
        assert_eq!(*ended.lock().unwrap(), Some("aborted"));
    }
}
