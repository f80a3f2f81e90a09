//! Assembly: every part -> one object, with an S3 multipart upload that copies the
//! parts where it can (`UploadPartCopy` with byte ranges) instead of downloading them.
//!
//! S3 wants every part of an upload but the last to be at least 5 MiB, and at most
//! 10,000 parts of at most 5 GiB. [`plan`] (a pure function, tested on sizes alone)
//! turns the parts' byte ranges into upload parts:
//! - a range of at least the minimum is copied (in several copies past 5 GiB);
//! - smaller ranges are buffered (downloaded) until the buffer reaches the minimum;
//! - a big range that follows a non-empty buffer first tops the buffer up to the
//!   minimum with its first bytes (a ranged GET), and the rest of it is copied;
//! - whatever closes the document (JSON's `]`, the Excel archive's central directory)
//!   goes into the last upload part.
//!
//! Memory holds the upload parts in flight, each below twice the minimum.

use aws_sdk_s3::{Client as S3, primitives::ByteStream, types::CompletedPart};
use futures::{StreamExt, TryFutureExt, TryStreamExt, stream};

use super::{
    Shape,
    convert::Sidecar,
    zipfmt::{self, Entry, Zip64},
};
use crate::{
    error::{Error, ErrorCode},
    export::sink::{ObjectTarget, abort_multipart, complete_multipart, start_multipart},
    progress::Progress,
};

/// S3's multipart limits.
pub const S3_MIN_PART_BYTES: u64 = 5 * 1024 * 1024;
pub const S3_MAX_PART_BYTES: u64 = 5 * 1024 * 1024 * 1024;
pub const S3_MAX_PARTS: usize = 10_000;

/// Bytes `start..end` of part object `part`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub part: usize,
    pub start: u64,
    pub end: u64,
}

impl Range {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// One part of the final upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Planned {
    /// `UploadPartCopy` of one range.
    Copy(Range),
    /// `UploadPart` of the ranges (downloaded), then the document's tail if `tail`.
    Upload { pieces: Vec<Range>, tail: bool },
}

/// The limits a plan keeps (S3's, lowered in tests).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub min_part: u64,
    pub max_copy: u64,
    pub max_parts: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            min_part: S3_MIN_PART_BYTES,
            max_copy: S3_MAX_PART_BYTES,
            max_parts: S3_MAX_PARTS,
        }
    }
}

/// Splits a range of at least `min_part` into copies of at most `max_copy`, each at
/// least `max_copy / 2` when there are several (so never below the minimum).
fn copies(r: Range, max_copy: u64, out: &mut Vec<Planned>) {
    let n = r.len().div_ceil(max_copy).max(1);
    let (base, extra) = (r.len() / n, r.len() % n);
    let mut start = r.start;
    for i in 0..n {
        let len = base + u64::from(i < extra);
        out.push(Planned::Copy(Range {
            start,
            end: start + len,
            ..r
        }));
        start += len;
    }
}

/// The upload parts that make `ranges` (in order) followed by a tail of `tail_len`
/// bytes. Every part but the last is at least `min_part`; the last is an `Upload`
/// carrying the tail whenever there is a tail or anything buffered (or nothing at
/// all: an upload needs a part).
pub fn plan(ranges: &[Range], tail_len: u64, limits: &Limits) -> Result<Vec<Planned>, Error> {
    if limits.min_part == 0 || limits.max_copy < 2 * limits.min_part {
        return Err(Error::internal(
            "export error",
            "assembly limits: the largest copy must be at least twice the smallest part",
        ));
    }
    let min = limits.min_part;
    let mut out = Vec::new();
    let mut buffer: Vec<Range> = Vec::new();
    let mut buffered = 0u64;
    for r in ranges.iter().filter(|r| !r.is_empty()) {
        let mut r = *r;
        if r.len() < min {
            buffer.push(r);
            buffered += r.len();
            if buffered >= min {
                out.push(Planned::Upload {
                    pieces: std::mem::take(&mut buffer),
                    tail: false,
                });
                buffered = 0;
            }
            continue;
        }
        if buffered > 0 {
            // Top the buffer up to the minimum with the head of this range.
            let need = min - buffered;
            buffer.push(Range {
                end: r.start + need,
                ..r
            });
            out.push(Planned::Upload {
                pieces: std::mem::take(&mut buffer),
                tail: false,
            });
            buffered = 0;
            r.start += need;
            if r.len() < min {
                if !r.is_empty() {
                    buffered = r.len();
                    buffer.push(r);
                }
                continue;
            }
        }
        copies(r, limits.max_copy, &mut out);
    }
    if buffered > 0 || tail_len > 0 || out.is_empty() {
        out.push(Planned::Upload {
            pieces: buffer,
            tail: true,
        });
    }
    if out.len() > limits.max_parts {
        return Err(Error::conflict(
            ErrorCode::ExportTooLarge,
            format!(
                "the export would be assembled from {} upload parts; S3 allows {}: convert it from fewer, larger data files",
                out.len(),
                limits.max_parts
            ),
        ));
    }
    Ok(out)
}

/// What a plan does, for logs and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PlanStats {
    pub upload_parts: usize,
    /// `UploadPartCopy` calls (a range of a part).
    pub copies: usize,
    /// Of which copy a part from an offset (the rest of a part whose head topped up a buffer, or JSON's skipped comma).
    pub ranged_copies: usize,
    /// Upload parts made of downloaded ranges.
    pub uploads: usize,
    /// Downloaded ranges that are the head of a bigger part (a buffer topped up).
    pub top_ups: usize,
    /// Downloaded ranges that are the rest of a part (too small to copy after a top-up).
    pub remainders: usize,
    /// Whole small parts downloaded into a buffer.
    pub buffered_parts: usize,
}

impl PlanStats {
    pub fn of(plan: &[Planned], sizes: &[u64]) -> Self {
        let mut s = PlanStats {
            upload_parts: plan.len(),
            ..Default::default()
        };
        for p in plan {
            match p {
                Planned::Copy(r) => {
                    s.copies += 1;
                    s.ranged_copies += usize::from(r.start > 0 || sizes.get(r.part) != Some(&r.end));
                }
                Planned::Upload { pieces, .. } => {
                    s.uploads += 1;
                    for piece in pieces {
                        let whole_end = sizes.get(piece.part) == Some(&piece.end);
                        match (piece.start, whole_end) {
                            (0, true) => s.buffered_parts += 1,
                            (0, false) => s.top_ups += 1,
                            _ => s.remainders += 1,
                        }
                    }
                }
            }
        }
        s
    }
}

/// The ranges of the parts that make the file, and the bytes that close it.
pub fn layout(shape: Shape, parts: &[Sidecar], dos: (u16, u16)) -> (Vec<Range>, Vec<u8>) {
    let mut ranges: Vec<Range> = parts
        .iter()
        .enumerate()
        .map(|(part, s)| Range {
            part,
            start: 0,
            end: s.bytes,
        })
        .collect();
    let rows: u64 = parts.iter().map(|s| s.rows).sum();
    let tail = match shape {
        Shape::Lines => Vec::new(),
        Shape::Json => {
            // Every part after the first starts its rows with a comma; the first part
            // with rows needs none unless it is part 0 (which opened the array).
            if let Some(first) = parts.iter().position(|s| s.rows > 0)
                && first > 0
                && let Some(r) = ranges.get_mut(first)
            {
                r.start = 1;
            }
            // What the live encoder ends with: `]` after `[`, `\n]` after a row, then a newline.
            if rows == 0 { b"]\n".to_vec() } else { b"\n]\n".to_vec() }
        }
        Shape::Workbooks => {
            let mut entries: Vec<Entry> = Vec::new();
            let mut at = 0u64;
            for s in parts {
                entries.extend(s.entries.iter().map(|e| Entry {
                    offset: at + e.offset,
                    ..e.clone()
                }));
                at += s.bytes;
            }
            zipfmt::central_directory(&entries, at, dos, Zip64::Auto)
        }
    };
    (ranges, tail)
}

/// Downloads bytes `start..end` of an object.
async fn download(s3: &S3, bucket: &str, key: &str, r: Range) -> Result<Vec<u8>, Error> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .range(format!("bytes={}-{}", r.start, r.end - 1))
        .send()
        .await
        .map_err(Error::storage)?;
    let bytes = out
        .body
        .collect()
        .await
        .map_err(|e| Error::internal("storage error", e))?
        .into_bytes();
    if bytes.len() as u64 != r.len() {
        return Err(Error::internal(
            "storage error",
            format!("{key}: asked for {} bytes, got {}", r.len(), bytes.len()),
        ));
    }
    Ok(bytes.to_vec())
}

/// One planned part, uploaded or copied as part `number`.
async fn run_part(
    s3: &S3,
    target: &ObjectTarget,
    upload_id: &str,
    part_keys: &[String],
    tail: &[u8],
    number: i32,
    planned: Planned,
) -> Result<CompletedPart, Error> {
    let key_of = |r: &Range| {
        part_keys
            .get(r.part)
            .ok_or_else(|| Error::internal("export error", format!("no part {}", r.part)))
    };
    let e_tag = match planned {
        Planned::Copy(r) => {
            // Part keys are ours (`scale/<hex id>/part-NNNNN`): nothing to escape.
            let source = format!("{}/{}", target.bucket, key_of(&r)?);
            let out = s3
                .upload_part_copy()
                .bucket(&target.bucket)
                .key(&target.key)
                .upload_id(upload_id)
                .part_number(number)
                .copy_source(source)
                .copy_source_range(format!("bytes={}-{}", r.start, r.end - 1))
                .send()
                .await
                .map_err(Error::storage)?;
            out.copy_part_result.and_then(|c| c.e_tag)
        }
        Planned::Upload {
            pieces,
            tail: with_tail,
        } => {
            let size: u64 = pieces.iter().map(Range::len).sum::<u64>() + if with_tail { tail.len() as u64 } else { 0 };
            let mut body = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            for piece in &pieces {
                body.extend(download(s3, &target.bucket, key_of(piece)?, *piece).await?);
            }
            if with_tail {
                body.extend_from_slice(tail);
            }
            let out = s3
                .upload_part()
                .bucket(&target.bucket)
                .key(&target.key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(Error::storage)?;
            out.e_tag
        }
    };
    Ok(CompletedPart::builder().part_number(number).set_e_tag(e_tag).build())
}

/// Runs a plan into `target` (parts in the target's bucket), `concurrency` parts at
/// a time, telling `progress` each upload part done. On any failure the upload is aborted: no partial object is ever visible.
pub async fn execute(
    s3: &S3,
    target: &ObjectTarget,
    part_keys: &[String],
    plan: Vec<Planned>,
    tail: &[u8],
    concurrency: usize,
    progress: &dyn Progress,
) -> Result<(), Error> {
    let upload_id = start_multipart(s3, target).await?;
    progress.expect(0, plan.len() as u64);
    let result = async {
        let parts: Vec<CompletedPart> = stream::iter(plan.into_iter().enumerate())
            .map(|(i, planned)| {
                let number = i32::try_from(i + 1).unwrap_or(i32::MAX);
                run_part(s3, target, &upload_id, part_keys, tail, number, planned).map_ok(|part| {
                    progress.advance(0, 1);
                    part
                })
            })
            .buffered(concurrency.max(1))
            .try_collect()
            .await?;
        complete_multipart(s3, target, &upload_id, parts).await
    }
    .await;
    if result.is_err() {
        abort_multipart(s3, target, &upload_id).await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(sizes: &[u64]) -> Vec<Range> {
        sizes
            .iter()
            .enumerate()
            .map(|(part, &end)| Range { part, start: 0, end })
            .collect()
    }

    /// Checks a plan against the rules S3 enforces and against its input: the
    /// planned bytes, in order, are exactly the ranges followed by the tail.
    fn check(input: &[Range], tail: u64, limits: &Limits) -> Vec<Planned> {
        let plan = plan(input, tail, limits).unwrap();
        let last = plan.len() - 1;
        let mut flat: Vec<Range> = Vec::new();
        for (i, p) in plan.iter().enumerate() {
            let size = match p {
                Planned::Copy(r) => {
                    assert!(r.len() <= limits.max_copy, "{p:?}");
                    flat.push(*r);
                    r.len()
                }
                Planned::Upload { pieces, tail: t } => {
                    assert!(!*t || i == last, "only the last part carries the tail");
                    flat.extend(pieces.iter().copied());
                    let s: u64 = pieces.iter().map(Range::len).sum();
                    assert!(s < 2 * limits.min_part, "a buffer stays below two minimum parts: {p:?}");
                    s + if *t { tail } else { 0 }
                }
            };
            if i < last {
                assert!(size >= limits.min_part, "part {i} of {plan:?} is too small");
            }
        }
        if tail > 0 {
            assert!(matches!(plan[last], Planned::Upload { tail: true, .. }), "{plan:?}");
        }
        // Adjacent pieces of one part merge back into it.
        let mut merged: Vec<Range> = Vec::new();
        for r in flat {
            match merged.last_mut() {
                Some(m) if m.part == r.part && m.end == r.start => m.end = r.end,
                _ => merged.push(r),
            }
        }
        let want: Vec<Range> = input.iter().copied().filter(|r| !r.is_empty()).collect();
        assert_eq!(merged, want);
        plan
    }

    const L: Limits = Limits {
        min_part: 100,
        max_copy: 250,
        max_parts: 10_000,
    };

    #[test]
    fn big_parts_are_copied_and_small_ones_buffered() {
        let plan = check(&ranges(&[150, 30, 40, 50, 0, 20]), 2, &L);
        assert_eq!(
            plan,
            vec![
                Planned::Copy(Range {
                    part: 0,
                    start: 0,
                    end: 150
                }),
                Planned::Upload {
                    pieces: ranges(&[150, 30, 40, 50])[1..].to_vec(),
                    tail: false
                },
                Planned::Upload {
                    pieces: vec![Range {
                        part: 5,
                        start: 0,
                        end: 20
                    }],
                    tail: true
                },
            ]
        );
        let stats = PlanStats::of(&plan, &[150, 30, 40, 50, 0, 20]);
        assert_eq!((stats.copies, stats.buffered_parts, stats.top_ups), (1, 4, 0));
    }

    #[test]
    fn a_big_part_after_a_buffer_tops_it_up_and_is_copied_from_there() {
        let plan = check(&ranges(&[30, 180, 110]), 0, &L);
        assert_eq!(
            plan,
            vec![
                Planned::Upload {
                    pieces: vec![
                        Range {
                            part: 0,
                            start: 0,
                            end: 30
                        },
                        Range {
                            part: 1,
                            start: 0,
                            end: 70
                        }
                    ],
                    tail: false
                },
                Planned::Copy(Range {
                    part: 1,
                    start: 70,
                    end: 180
                }),
                Planned::Copy(Range {
                    part: 2,
                    start: 0,
                    end: 110
                }),
            ]
        );
        let stats = PlanStats::of(&plan, &[30, 180, 110]);
        assert_eq!((stats.ranged_copies, stats.top_ups, stats.remainders), (1, 1, 0));
        // What is left of a big part after topping up may be small: it is buffered.
        let plan = check(&ranges(&[30, 120, 10]), 5, &L);
        assert_eq!(plan.len(), 2);
        assert!(matches!(&plan[1], Planned::Upload { pieces, tail: true } if pieces.len() == 2));
    }

    #[test]
    fn parts_past_the_largest_copy_are_split() {
        let plan = check(&ranges(&[1000]), 0, &L);
        assert_eq!(plan.len(), 4, "{plan:?}");
        let plan = check(&ranges(&[251]), 0, &L);
        assert_eq!(plan.len(), 2);
    }

    #[test]
    fn edge_cases_hold_the_rules() {
        check(&[], 0, &L);
        check(&[], 7, &L);
        check(&ranges(&[0, 0, 0]), 0, &L);
        check(
            &[
                Range {
                    part: 0,
                    start: 1,
                    end: 1,
                },
                Range {
                    part: 1,
                    start: 1,
                    end: 300,
                },
            ],
            3,
            &L,
        );
        // Every mix of sizes around the limits.
        let sizes = [0u64, 1, 50, 99, 100, 101, 199, 200, 249, 250, 251, 499, 500, 777];
        for a in sizes {
            for b in sizes {
                for c in sizes {
                    for tail in [0, 3] {
                        let mut input = ranges(&[a, b, c, a]);
                        if b > 0 {
                            input[1].start = 1.min(b);
                        }
                        check(&input, tail, &L);
                    }
                }
            }
        }
    }

    #[test]
    fn more_parts_than_s3_allows_are_refused() {
        let limits = Limits { max_parts: 3, ..L };
        assert!(plan(&ranges(&[100, 100, 100]), 0, &limits).is_ok());
        let e = plan(&ranges(&[100, 100, 100, 100]), 0, &limits).unwrap_err();
        assert_eq!(e.code(), "export_too_large");
        assert!(e.to_string().contains("4 upload parts"), "{e}");
    }

    #[test]
    fn json_parts_lose_the_first_comma_and_get_the_live_closer() {
        let part = |index: u32, rows: u64, bytes: u64| Sidecar {
            index,
            rows,
            bytes,
            data_file: None,
            items: rows,
            md5: None,
            entries: vec![],
        };
        let (r, tail) = layout(
            Shape::Json,
            &[part(0, 0, 1), part(1, 0, 0), part(2, 3, 90), part(3, 1, 30)],
            (0, 0),
        );
        assert_eq!((r[0].start, r[2].start, r[3].start), (0, 1, 0));
        assert_eq!(tail, b"\n]\n");
        let (r, tail) = layout(Shape::Json, &[part(0, 2, 50), part(1, 1, 30)], (0, 0));
        assert_eq!((r[0].start, r[1].start), (0, 0));
        assert_eq!(tail, b"\n]\n");
        let (_, tail) = layout(Shape::Json, &[part(0, 0, 1), part(1, 0, 0)], (0, 0));
        assert_eq!(tail, b"]\n", "an empty export is `[]` and a newline, as live");
    }
}
