//! The S3 sink on the local S3 emulator: whatever the chunks, the stored object is every
//! byte written, in order.

use common::export::{ByteSink, Delivered, S3Sink, sink::ObjectTarget};
use integration_tests::{TestStack, object};

const MIB: usize = 1024 * 1024;
/// S3's smallest part: the most parts for the bytes written.
const PART: usize = common::config::MIN_PART_BYTES;

/// Bytes that differ from chunk to chunk and within one, so a part stored twice, out of
/// order, or cut at the wrong place cannot go unnoticed.
fn chunk(index: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ index.wrapping_mul(131) ^ (i >> 8)) as u8)
        .collect()
}

#[tokio::test]
async fn many_parts_from_uneven_chunks_store_every_byte_in_order() {
    let stack = TestStack::new("sink-parts").await;
    let target = ObjectTarget {
        bucket: stack.ctx.config.delivery.bucket.clone(),
        key: "parts/every-byte.bin".into(),
        content_type: "application/octet-stream".into(),
        content_disposition: "attachment; filename=\"every-byte.bin\"".into(),
    };
    let mut sink = S3Sink::new(stack.ctx.aws.s3.clone(), target.clone(), None, PART);
    // Small chunks, chunks of about a megabyte (as the encoders make them), a chunk
    // larger than any before it, one larger than a part, and an odd tail: 10 parts,
    // more than are ever in flight at once.
    let mut sizes: Vec<usize> = vec![1, 17, 4096];
    sizes.extend((0..30).map(|i| MIB - 7 + i * 1013));
    sizes.push(3 * MIB + 5);
    sizes.extend((0..12).map(|i| 700_000 + i * 999));
    sizes.push(6 * MIB + 1);
    sizes.extend([MIB / 2, 12_345]);
    let mut expected = Vec::new();
    for (index, len) in sizes.into_iter().enumerate() {
        let bytes = chunk(index, len);
        expected.extend_from_slice(&bytes);
        sink.write(bytes).await.expect("write");
    }
    assert!(expected.len() > 9 * PART, "{} bytes", expected.len());
    assert_eq!(sink.bytes_written(), expected.len() as u64);
    match sink.finish().await.expect("finish") {
        Delivered::Stored { bucket, key } => assert_eq!((bucket, key), (target.bucket.clone(), target.key.clone())),
        Delivered::Inline(_) => panic!("a link was asked for"),
    }
    let stored = object(&stack.ctx, &target.key).await;
    assert_eq!(stored.len(), expected.len());
    assert!(stored == expected, "the stored object differs from the bytes written");
}
