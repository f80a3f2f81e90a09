//! How long work tells whoever watches it how far it has got. `exportctl` draws
//! progress bars from it on a terminal; the Lambda functions and the tests pass
//! [`Unwatched`]. Nothing here draws, and nothing here knows what the units are.

/// What long work reports as it goes: the items of a Scan segment, the records of a
/// load, the data files of a conversion. Every method has a do-nothing default.
pub trait Progress: Send + Sync {
    /// `part` will have `total` units to do, once that is known.
    fn expect(&self, part: u32, total: u64) {
        let _ = (part, total);
    }

    /// `n` more units done in `part` (a Scan segment, a data file; `0` when the work
    /// has one part).
    fn advance(&self, part: u32, n: u64) {
        let _ = (part, n);
    }

    /// `part` goes on where an earlier run stopped; `finished` when that run had
    /// finished it, so it is skipped.
    fn resumed(&self, part: u32, finished: bool) {
        let _ = (part, finished);
    }

    /// `part` has no more to do.
    fn done(&self, part: u32) {
        let _ = part;
    }
}

/// Nobody watches: every report is dropped.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unwatched;

impl Progress for Unwatched {}

/// A closure is told each `advance`'s count, whatever the part.
impl<F: Fn(u64) + Send + Sync> Progress for F {
    fn advance(&self, _part: u32, n: u64) {
        self(n);
    }
}
