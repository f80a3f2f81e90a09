//! Excel workbooks through `rust_xlsxwriter` in constant-memory mode: each row goes
//! to a temporary file as it is written, so memory does not grow with the rows. The
//! workbook is assembled into a temporary file at the end and handed out in chunks.
//!
//! Excel's limits are handled, not hit: past `sheet_row_limit` data rows the rows
//! continue on "`<Sheet> (2)`", "`<Sheet> (3)`", ... each with its own header; a text
//! longer than 32,767 characters is truncated and counted ([`XlsxFigures`]).
//!
//! No value changes on its way into a cell: a number Excel cannot hold exactly (more
//! than 15 significant digits) and a time outside Excel's calendar (before 1900 or
//! after 9999) are written as text cells, exactly as in CSV.

use std::io::{Read, Seek, SeekFrom};

use rust_xlsxwriter::{DocProperties, Format as CellFormat, FormatAlign, Workbook, Worksheet, XlsxError};

use super::{Cell, Column, EncodeOptions, Encoder};
use crate::{error::Error, timefmt::TimeZone};

/// Excel's row limit is 1,048,576 including the header row.
pub const EXCEL_MAX_DATA_ROWS: u32 = 1_048_575;
/// Excel's cell text limit, in UTF-16 code units (what Excel counts).
pub const EXCEL_MAX_CELL_CHARS: usize = 32_767;
/// Excel keeps 15 significant digits of a number.
pub const EXCEL_MAX_DIGITS: usize = 15;
const CHUNK: usize = 1024 * 1024;
/// Date-times show their milliseconds: the cell holds them, the display should too.
pub const EXCEL_DATE_FORMAT: &str = "yyyy-mm-dd hh:mm:ss.000";

fn xlsx_error(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::internal("encoding error", e)
}

/// Column width (in characters) when the column does not set one.
fn default_width(column: &Column) -> f64 {
    if column.width > 0.0 {
        column.width
    } else {
        (column.header.chars().count() as f64 + 4.0).clamp(10.0, 40.0)
    }
}

/// What the data sheets hold, for a summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XlsxFigures {
    /// Cells whose text was cut to Excel's limit.
    pub truncated_cells: u64,
    /// Sheets the data rows fill.
    pub data_sheets: usize,
}

pub struct XlsxEncoder {
    workbook: Workbook,
    columns: Vec<Column>,
    sheet_name: String,
    sheet_row_limit: u32,
    /// Index of the sheet being written and the number of data rows on it.
    sheet: usize,
    sheets_written: usize,
    rows_on_sheet: u32,
    header_format: CellFormat,
    date_format: CellFormat,
    time_zone: TimeZone,
    truncated: u64,
    output: Option<tempfile::NamedTempFile>,
    finished: bool,
}

/// Deflate level of the workbook's zip (rust_xlsxwriter's default is 6). Measured on
/// 1M leads (docs/performance.md, "Excel's deflate level"): level 1 writes the workbook
/// faster for a somewhat larger file.
const XLSX_ZIP_LEVEL: u8 = 3;

impl XlsxEncoder {
    pub fn new(sheet_name: &str, columns: &[Column], options: EncodeOptions) -> Result<Self, Error> {
        let mut workbook = Workbook::new();
        workbook.set_tempdir(std::env::temp_dir()).map_err(xlsx_error)?;
        workbook.set_zip_compression_level(XLSX_ZIP_LEVEL);
        workbook.set_properties(&DocProperties::new().set_creation_datetime(&options.created));
        let mut enc = Self {
            workbook,
            columns: columns.to_vec(),
            sheet_name: sheet_name.to_string(),
            sheet_row_limit: options.sheet_row_limit.clamp(1, EXCEL_MAX_DATA_ROWS),
            sheet: 0,
            sheets_written: 0,
            rows_on_sheet: 0,
            header_format: CellFormat::new().set_bold().set_align(FormatAlign::Center),
            date_format: CellFormat::new().set_num_format(EXCEL_DATE_FORMAT),
            time_zone: options.time_zone,
            truncated: 0,
            output: None,
            finished: false,
        };
        enc.start_sheet()?;
        Ok(enc)
    }

    fn start_sheet(&mut self) -> Result<(), Error> {
        self.close_sheet()?;
        let name = if self.sheets_written == 0 {
            self.sheet_name.clone()
        } else {
            format!("{} ({})", self.sheet_name, self.sheets_written + 1)
        };
        let ws = self.workbook.add_worksheet_with_constant_memory().map_err(xlsx_error)?;
        ws.set_name(&name).map_err(xlsx_error)?;
        for (i, col) in self.columns.iter().enumerate() {
            let header = if col.time && !self.time_zone.is_utc() {
                std::borrow::Cow::Owned(format!("{} ({})", col.header, self.time_zone.name()))
            } else {
                std::borrow::Cow::Borrowed(col.header)
            };
            ws.write_string_with_format(0, i as u16, header.as_ref(), &self.header_format)
                .map_err(xlsx_error)?;
        }
        ws.set_freeze_panes(1, 0).map_err(xlsx_error)?;
        self.sheet = self.workbook.worksheets().len() - 1;
        self.sheets_written += 1;
        self.rows_on_sheet = 0;
        Ok(())
    }

    /// Sets the column widths, and the autofilter over the header and the rows written,
    /// on the current sheet.
    ///
    /// The widths are set last, not when the sheet starts: rust_xlsxwriter looks every
    /// cell's column up in its column settings (a SipHash per cell, twice) once there are
    /// any, and the widths only reach the file when the workbook is assembled.
    fn close_sheet(&mut self) -> Result<(), Error> {
        if self.sheets_written == 0 || self.columns.is_empty() {
            return Ok(());
        }
        let last_row = self.rows_on_sheet;
        let last_col = self.columns.len() as u16 - 1;
        let ws = self.workbook.worksheet_from_index(self.sheet).map_err(xlsx_error)?;
        for (i, col) in self.columns.iter().enumerate() {
            ws.set_column_width(i as u16, default_width(col)).map_err(xlsx_error)?;
        }
        ws.autofilter(0, 0, last_row, last_col).map_err(xlsx_error)?;
        Ok(())
    }
}

/// The text to write for a cell, cut to Excel's limit (counted in UTF-16 units, as
/// Excel counts; never inside a surrogate pair). Returns whether it was cut.
/// (rust_xlsxwriter escapes control characters and literal `_xHHHH_` sequences.)
pub fn excel_text(s: &str) -> (&str, bool) {
    // Byte length bounds the UTF-16 length: most cells skip the walk.
    if s.len() <= EXCEL_MAX_CELL_CHARS {
        return (s, false);
    }
    let mut units = 0;
    for (i, c) in s.char_indices() {
        units += c.len_utf16();
        if units > EXCEL_MAX_CELL_CHARS {
            return (&s[..i], true);
        }
    }
    (s, false)
}

/// An integer Excel holds exactly: at most 15 digits.
pub fn fits_excel_integer(i: i128) -> bool {
    i.unsigned_abs() < 10u128.pow(EXCEL_MAX_DIGITS as u32)
}

/// A float Excel holds exactly: its shortest round-trip form has at most 15
/// significant digits.
pub fn fits_excel_float(f: f64) -> bool {
    // Excel's own range: nothing beyond 9.99999999999999E+307 or below 2.2251E-308.
    if !f.is_finite() || (f != 0.0 && !(2.2251e-308..=9.99999999999999e307).contains(&f.abs())) {
        return false;
    }
    // The shortest round-trip form ("1e300", "0.000123", "123456789012345.0"): its
    // significant digits run from the first non-zero digit of the mantissa to the last.
    let mut buffer = zmij::Buffer::new();
    let shortest = buffer.format_finite(f.abs());
    let mantissa = shortest.split(['e', 'E']).next().unwrap_or("");
    let digits = mantissa.as_bytes();
    let significant = |d: &u8| d.is_ascii_digit() && *d != b'0';
    match (
        digits.iter().position(significant),
        digits.iter().rposition(significant),
    ) {
        (Some(first), Some(last)) => {
            let point = usize::from(digits[first..last].contains(&b'.'));
            last - first - point < EXCEL_MAX_DIGITS
        }
        _ => true,
    }
}

/// Writes an integer as a number when Excel holds it exactly, as text otherwise.
pub fn write_integer(ws: &mut Worksheet, row: u32, col: u16, value: i128) -> Result<(), XlsxError> {
    if fits_excel_integer(value) {
        ws.write_number(row, col, value as f64)?;
    } else {
        ws.write_string(row, col, value.to_string())?;
    }
    Ok(())
}

/// Excel's calendar: 1900-01-01 to 9999-12-31.
pub fn fits_excel_date(t: &chrono::NaiveDateTime) -> bool {
    use chrono::Datelike;
    (1900..=9999).contains(&t.year())
}

impl Encoder for XlsxEncoder {
    fn write_row(&mut self, row: &[Cell]) -> Result<(), Error> {
        if self.rows_on_sheet >= self.sheet_row_limit {
            self.start_sheet()?;
        }
        let r = self.rows_on_sheet + 1;
        let date_format = &self.date_format;
        let zone = self.time_zone;
        let mut truncated = 0;
        let ws = self.workbook.worksheet_from_index(self.sheet).map_err(xlsx_error)?;
        for (c, cell) in row.iter().enumerate() {
            let c = c as u16;
            match cell {
                Cell::Empty => {}
                Cell::Text(s) => {
                    let (text, cut) = excel_text(s);
                    truncated += u64::from(cut);
                    ws.write_string(r, c, text).map_err(xlsx_error)?;
                }
                Cell::Int(i) if fits_excel_integer(*i) => {
                    ws.write_number(r, c, *i as f64).map_err(xlsx_error)?;
                }
                Cell::Int(i) => {
                    ws.write_string(r, c, i.to_string()).map_err(xlsx_error)?;
                }
                Cell::Float(f) if fits_excel_float(*f) => {
                    ws.write_number(r, c, *f).map_err(xlsx_error)?;
                }
                Cell::Float(f) if f.is_finite() => {
                    ws.write_string(r, c, f.to_string()).map_err(xlsx_error)?;
                }
                Cell::Float(_) => {}
                Cell::Bool(b) => {
                    ws.write_string(r, c, if *b { "Yes" } else { "No" })
                        .map_err(xlsx_error)?;
                }
                // Excel holds no offset: the wall-clock time in the zone (named in the header).
                Cell::Time(t) => {
                    let local = if zone.is_utc() {
                        t.naive_utc()
                    } else {
                        t.with_timezone(&zone.0).naive_local()
                    };
                    if fits_excel_date(&local) {
                        ws.write_datetime_with_format(r, c, local, date_format)
                            .map_err(xlsx_error)?;
                    } else {
                        ws.write_string(r, c, crate::timefmt::format_in(t, zone))
                            .map_err(xlsx_error)?;
                    }
                }
                Cell::List(items) => {
                    let sep = self.columns.get(c as usize).map_or(";", |col| col.list_sep);
                    let joined = items.join(sep);
                    let (text, cut) = excel_text(&joined);
                    truncated += u64::from(cut);
                    ws.write_string(r, c, text).map_err(xlsx_error)?;
                }
            }
        }
        self.truncated += truncated;
        self.rows_on_sheet += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Error> {
        self.finish_with(|_, _| Ok(()))
    }

    fn take_output(&mut self) -> Result<Vec<u8>, Error> {
        let Some(file) = self.output.as_mut() else {
            return Ok(Vec::new());
        };
        let mut chunk = Vec::with_capacity(CHUNK);
        file.as_file_mut()
            .take(CHUNK as u64)
            .read_to_end(&mut chunk)
            .map_err(xlsx_error)?;
        if chunk.is_empty() {
            self.output = None;
        }
        Ok(chunk)
    }
}

impl XlsxEncoder {
    /// Finishes the data sheets, lets `extra` add sheets (it gets the workbook and
    /// this encoder's figures), then assembles the workbook into a temporary file.
    pub fn finish_with(
        &mut self,
        extra: impl FnOnce(&mut Workbook, &XlsxFigures) -> Result<(), XlsxError>,
    ) -> Result<(), Error> {
        if self.finished {
            return Ok(());
        }
        self.close_sheet()?;
        let figures = XlsxFigures {
            truncated_cells: self.truncated,
            data_sheets: self.sheets_written,
        };
        extra(&mut self.workbook, &figures).map_err(xlsx_error)?;
        let mut file = tempfile::NamedTempFile::new().map_err(xlsx_error)?;
        self.workbook
            .save_to_writer(file.as_file_mut())
            .map_err(|e: XlsxError| xlsx_error(e))?;
        file.as_file_mut().seek(SeekFrom::Start(0)).map_err(xlsx_error)?;
        self.output = Some(file);
        self.finished = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_excel_cannot_hold_exactly_are_detected() {
        assert!(fits_excel_integer(999_999_999_999_999) && fits_excel_integer(-999_999_999_999_999));
        assert!(!fits_excel_integer(1_000_000_000_000_000));
        assert!(!fits_excel_integer(i128::from(u64::MAX)));
        for f in [
            0.0,
            1.5,
            -37.774929,
            1e300,
            123456789012345.0,
            0.1,
            100.0,
            1.23456789012345e-7,
            120000000000000000.0,
        ] {
            assert!(fits_excel_float(f), "{f}");
        }
        for f in [
            0.1 + 0.2,
            1234567890123456.0,
            1.234567890123456e-7,
            1234567890123456e290,
            f64::NAN,
            f64::INFINITY,
            f64::MAX,
            5e-324,
        ] {
            assert!(!fits_excel_float(f), "{f}");
        }
    }

    proptest::proptest! {
        /// The digit count without allocating agrees with counting the mantissa of
        /// `{:e}` (the shortest round-trip form in scientific notation), over any bits.
        #[test]
        fn float_fit_agrees_with_the_scientific_form(bits in proptest::prelude::any::<u64>(), digits in 1u32..20, exp in -30i32..30) {
            let sci_fit = |f: f64| {
                if !f.is_finite() || (f != 0.0 && !(2.2251e-308..=9.99999999999999e307).contains(&f.abs())) {
                    return false;
                }
                let sci = format!("{:e}", f.abs());
                sci.split('e').next().unwrap_or("").bytes().filter(u8::is_ascii_digit).count() <= EXCEL_MAX_DIGITS
            };
            let random = f64::from_bits(bits);
            // Numbers with a chosen count of digits, around the 15-digit limit.
            let decimal = (bits % 10u64.pow(digits)) as f64 * 10f64.powi(exp);
            for f in [random, decimal, -decimal] {
                proptest::prop_assert_eq!(fits_excel_float(f), sci_fit(f), "{:e}", f);
            }
        }
    }

    /// The widths are set when a sheet is closed (not when it starts): every sheet of
    /// the workbook still carries them, with its autofilter and its dates' style.
    #[test]
    fn every_sheet_keeps_its_column_widths_autofilter_and_date_style() {
        use std::io::Read as _;
        let columns = [
            Column::new("Name", "name").width(22.0),
            Column::new("Created At", "created_at").time(),
            Column::new("Score", "score"),
        ];
        let options = EncodeOptions {
            sheet_row_limit: 2,
            ..EncodeOptions::default()
        };
        let mut encoder = XlsxEncoder::new("Leads", &columns, options).expect("encoder");
        let at = chrono::DateTime::parse_from_rfc3339("2024-01-15T10:30:00.125Z")
            .expect("time")
            .to_utc();
        for name in ["a", "b", "c"] {
            encoder
                .write_row(&[Cell::Text(name.into()), Cell::Time(at), Cell::Int(42)])
                .expect("row");
        }
        encoder.finish().expect("finish");
        let mut bytes = Vec::new();
        loop {
            let chunk = encoder.take_output().expect("chunk");
            if chunk.is_empty() {
                break;
            }
            bytes.extend(chunk);
        }
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a workbook");
        for (sheet, last_row) in [("xl/worksheets/sheet1.xml", 3), ("xl/worksheets/sheet2.xml", 2)] {
            let mut xml = String::new();
            zip.by_name(sheet).expect(sheet).read_to_string(&mut xml).expect("xml");
            // "Name" is 22 characters wide; "Created At" gets its header's length + 4, at least 10.
            assert!(
                xml.contains(r#"<col min="1" max="1" width="22.7109375" customWidth="1"/>"#),
                "{xml}"
            );
            assert!(
                xml.contains(r#"<col min="2" max="2" width="14.7109375" customWidth="1"/>"#),
                "{xml}"
            );
            assert!(xml.contains(&format!(r#"<autoFilter ref="A1:C{last_row}"/>"#)), "{xml}");
            assert!(xml.contains(r#"<c r="B2" s="2"><v>45306.43750144676</v></c>"#), "{xml}");
            // An integer is written as one ("42", not "42.0"): readers such as openpyxl
            // give back an int for the first and a float for the second.
            assert!(xml.contains(r#"<c r="C2"><v>42</v></c>"#), "{xml}");
        }
    }

    #[test]
    fn texts_are_cut_in_utf16_units() {
        assert_eq!(excel_text("plain"), ("plain", false));
        let emoji = "😀".repeat(EXCEL_MAX_CELL_CHARS);
        let (cut, was_cut) = excel_text(&emoji);
        assert!(was_cut);
        assert_eq!(
            cut.encode_utf16().count(),
            EXCEL_MAX_CELL_CHARS - 1,
            "no half surrogate pair"
        );
        let exact = "x".repeat(EXCEL_MAX_CELL_CHARS);
        assert_eq!(excel_text(&exact), (exact.as_str(), false));
    }
}
