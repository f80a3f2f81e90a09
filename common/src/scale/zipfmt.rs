//! The ZIP records of an Excel export at scale, written by hand because its pieces
//! are made in different places: each converter writes complete STORED local file
//! entries (header + workbook) into its part, and the assembler, which alone knows
//! where each entry lands in the final object, writes the central directory. Sizes or
//! offsets past 4 GiB (or more than 65,534 entries) use ZIP64 records (APPNOTE 6.3.x,
//! 4.3.12-4.3.16 and 4.5.3).

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Deserialize, Serialize};

/// One workbook of the archive: where its local header starts in the final object
/// (or, in a part's sidecar, in the part).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    pub crc32: u32,
    pub size: u64,
    pub offset: u64,
}

/// Whether ZIP64 records are written only where a value needs them, or always (tests:
/// an archive past 4 GiB cannot be made in a unit test).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zip64 {
    Auto,
    Always,
}

const LOCAL_HEADER: u32 = 0x0403_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_CENTRAL_DIRECTORY: u32 = 0x0605_4b50;
const ZIP64_END: u32 = 0x0606_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const U32_MAX: u64 = 0xFFFF_FFFF;
const U16_MAX: u64 = 0xFFFF;
/// "Version needed to extract": 2.0 (stored, deflate), 4.5 (ZIP64).
const VERSION_20: u16 = 20;
const VERSION_45: u16 = 45;
/// General purpose flag bit 11: the name is UTF-8.
const UTF8_NAMES: u16 = 1 << 11;

/// MS-DOS date and time (local time in the format; the export's UTC instant here),
/// clamped to the years the format holds (1980-2107).
pub fn dos_time(t: DateTime<Utc>) -> (u16, u16) {
    let year = t.year().clamp(1980, 2107);
    let date = (((year - 1980) as u16) << 9) | ((t.month() as u16) << 5) | t.day() as u16;
    let time = ((t.hour() as u16) << 11) | ((t.minute() as u16) << 5) | (t.second() as u16 / 2);
    (time, date)
}

fn u16le(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn u32le(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn u64le(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// A 32-bit field: the value, or the ZIP64 marker when it does not fit (or always).
fn field32(v: u64, zip64: bool) -> u32 {
    if zip64 || v >= U32_MAX { u32::MAX } else { v as u32 }
}

/// The local file header of a STORED entry of `size` bytes; the entry's data follows it.
pub fn local_header(name: &str, crc32: u32, size: u64, (time, date): (u16, u16), mode: Zip64) -> Vec<u8> {
    let zip64 = mode == Zip64::Always || size >= U32_MAX;
    let mut extra = Vec::new();
    if zip64 {
        u16le(&mut extra, 0x0001);
        u16le(&mut extra, 16);
        u64le(&mut extra, size);
        u64le(&mut extra, size);
    }
    let mut out = Vec::with_capacity(30 + name.len() + extra.len());
    u32le(&mut out, LOCAL_HEADER);
    u16le(&mut out, if zip64 { VERSION_45 } else { VERSION_20 });
    u16le(&mut out, UTF8_NAMES);
    u16le(&mut out, 0); // STORED
    u16le(&mut out, time);
    u16le(&mut out, date);
    u32le(&mut out, crc32);
    u32le(&mut out, field32(size, zip64));
    u32le(&mut out, field32(size, zip64));
    u16le(&mut out, name.len() as u16);
    u16le(&mut out, extra.len() as u16);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&extra);
    out
}

/// The central directory of `entries` (offsets absolute in the archive), starting at
/// `cd_offset`, with its end records: the archive's last bytes.
pub fn central_directory(entries: &[Entry], cd_offset: u64, (time, date): (u16, u16), mode: Zip64) -> Vec<u8> {
    let always = mode == Zip64::Always;
    let mut out = Vec::new();
    for e in entries {
        let big_size = always || e.size >= U32_MAX;
        let big_offset = always || e.offset >= U32_MAX;
        let mut extra = Vec::new();
        if big_size || big_offset {
            let mut body = Vec::new();
            if big_size {
                u64le(&mut body, e.size);
                u64le(&mut body, e.size);
            }
            if big_offset {
                u64le(&mut body, e.offset);
            }
            u16le(&mut extra, 0x0001);
            u16le(&mut extra, body.len() as u16);
            extra.extend_from_slice(&body);
        }
        let version = if extra.is_empty() { VERSION_20 } else { VERSION_45 };
        u32le(&mut out, CENTRAL_HEADER);
        u16le(&mut out, version); // made by: MS-DOS attributes, this version
        u16le(&mut out, version);
        u16le(&mut out, UTF8_NAMES);
        u16le(&mut out, 0);
        u16le(&mut out, time);
        u16le(&mut out, date);
        u32le(&mut out, e.crc32);
        u32le(&mut out, field32(e.size, big_size));
        u32le(&mut out, field32(e.size, big_size));
        u16le(&mut out, e.name.len() as u16);
        u16le(&mut out, extra.len() as u16);
        u16le(&mut out, 0); // comment
        u16le(&mut out, 0); // disk
        u16le(&mut out, 0); // internal attributes
        u32le(&mut out, 0); // external attributes
        u32le(&mut out, field32(e.offset, big_offset));
        out.extend_from_slice(e.name.as_bytes());
        out.extend_from_slice(&extra);
    }
    let cd_size = out.len() as u64;
    let count = entries.len() as u64;
    let zip64_end = always || count >= U16_MAX || cd_size >= U32_MAX || cd_offset >= U32_MAX;
    if zip64_end {
        let end_offset = cd_offset + cd_size;
        u32le(&mut out, ZIP64_END);
        u64le(&mut out, 44); // size of the rest of this record
        u16le(&mut out, VERSION_45);
        u16le(&mut out, VERSION_45);
        u32le(&mut out, 0); // this disk
        u32le(&mut out, 0); // disk of the central directory
        u64le(&mut out, count);
        u64le(&mut out, count);
        u64le(&mut out, cd_size);
        u64le(&mut out, cd_offset);
        u32le(&mut out, ZIP64_LOCATOR);
        u32le(&mut out, 0);
        u64le(&mut out, end_offset);
        u32le(&mut out, 1); // disks
    }
    u32le(&mut out, END_OF_CENTRAL_DIRECTORY);
    u16le(&mut out, 0);
    u16le(&mut out, 0);
    let count16 = if zip64_end { u16::MAX } else { count as u16 };
    u16le(&mut out, count16);
    u16le(&mut out, count16);
    u32le(&mut out, field32(cd_size, zip64_end));
    u32le(&mut out, field32(cd_offset, zip64_end));
    u16le(&mut out, 0); // comment
    out
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// An archive made the way the assembler makes one: local entries (as parts
    /// would hold them) then the central directory.
    fn archive(files: &[(&str, Vec<u8>)], mode: Zip64) -> Vec<u8> {
        let at = crate::timefmt::parse_rfc3339("2024-01-15T10:30:42Z").unwrap();
        let mut out = Vec::new();
        let mut entries = Vec::new();
        for (name, data) in files {
            let crc32 = crc32fast::hash(data);
            entries.push(Entry {
                name: name.to_string(),
                crc32,
                size: data.len() as u64,
                offset: out.len() as u64,
            });
            out.extend(local_header(name, crc32, data.len() as u64, dos_time(at), mode));
            out.extend_from_slice(data);
        }
        let cd = central_directory(&entries, out.len() as u64, dos_time(at), mode);
        out.extend(cd);
        out
    }

    fn read_back(bytes: Vec<u8>) -> Vec<(String, Vec<u8>)> {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a valid archive");
        (0..zip.len())
            .map(|i| {
                let mut f = zip.by_index(i).unwrap();
                assert_eq!(f.compression(), zip::CompressionMethod::Stored);
                let mut data = Vec::new();
                f.read_to_end(&mut data).unwrap();
                (f.name().unwrap().to_string(), data)
            })
            .collect()
    }

    #[test]
    fn the_zip_crate_reads_what_the_parts_and_the_central_directory_make() {
        let files = [
            ("leads-00000-1.xlsx", b"first workbook".to_vec()),
            ("leads-00003-1.xlsx", vec![7u8; 70_000]),
            ("leads-00003-2.xlsx", Vec::new()),
        ];
        for mode in [Zip64::Auto, Zip64::Always] {
            let got = read_back(archive(&files, mode));
            let want: Vec<(String, Vec<u8>)> = files.iter().map(|(n, d)| (n.to_string(), d.clone())).collect();
            assert_eq!(got, want, "{mode:?}");
        }
    }

    #[test]
    fn an_archive_without_entries_is_valid() {
        assert!(read_back(archive(&[], Zip64::Auto)).is_empty());
    }

    #[test]
    fn zip64_fields_appear_only_when_needed() {
        let t = (0, 0);
        assert_eq!(local_header("a", 0, 10, t, Zip64::Auto).len(), 31);
        assert_eq!(local_header("a", 0, U32_MAX, t, Zip64::Auto).len(), 31 + 20);
        let small = Entry {
            name: "a".into(),
            crc32: 0,
            size: 1,
            offset: 0,
        };
        let far = Entry {
            offset: 5 << 30,
            ..small.clone()
        };
        assert_eq!(
            central_directory(std::slice::from_ref(&small), 10, t, Zip64::Auto).len(),
            47 + 22
        );
        assert_eq!(
            central_directory(&[far], 6 << 30, t, Zip64::Auto).len(),
            47 + 12 + 56 + 20 + 22,
            "offset in the extra field, ZIP64 end records"
        );
        let dos = dos_time(crate::timefmt::parse_rfc3339("2024-01-15T10:30:42Z").unwrap());
        assert_eq!(dos, ((10 << 11) | (30 << 5) | 21, (44 << 9) | (1 << 5) | 15));
    }
}
