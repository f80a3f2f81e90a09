//! `exportctl`: local work and operations. The binary in `main.rs` only parses
//! arguments; everything it runs lives here so tests can drive the same code.

pub mod args;
pub mod backfill;
pub mod bench;
pub mod load;
pub mod output;
pub mod progress;
pub mod scale;
pub mod serve;
pub mod streams;
