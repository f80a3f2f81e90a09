//! Ties made exact. Every read returns records in key order: time, then id. A key
//! holds an id of up to 1,024 bytes verbatim, but a longer one as its first bytes
//! and a digest ([`crate::keys`]), so records at the same instant whose ids share
//! their first bytes ([`tie_prefix`]) can come in digest order instead of id order.
//! Such records are adjacent in key order, so sorting each run of them by the full
//! id makes the order exact. A page's last run may go on in the next page, so it is
//! held back until the run ends: memory stays bounded by the longest run, which
//! ordinary data never makes longer than one record, and a run longer than
//! [`MAX_RUN`] fails the export instead of holding it.

use futures::{StreamExt, TryStreamExt, stream};

use super::Pages;
use crate::{error::Error, keys::tie_prefix};

/// Records at one instant sharing their ids' first bytes, at most: past it the
/// export fails with a clear message rather than hold more.
pub const MAX_RUN: usize = 100_000;

/// Where a record sits in its read's key order: within `group` (a session, a
/// conversation; empty when the key starts with the time), at `at_ms`, then `id`.
pub(super) struct Tie<'a> {
    pub group: [&'a str; 2],
    pub at_ms: i64,
    pub id: &'a str,
}

/// How to find a record's [`Tie`]: `None` for a record outside the key order (a
/// session without messages).
pub(super) type TieOf<T> = for<'a> fn(&'a T) -> Option<Tie<'a>>;

fn same_run<T>(tie: TieOf<T>, a: &T, b: &T) -> bool {
    match (tie(a), tie(b)) {
        (Some(x), Some(y)) => x.group == y.group && x.at_ms == y.at_ms && tie_prefix(x.id) == tie_prefix(y.id),
        _ => false,
    }
}

/// Sorts every run of `records` by the full id; stable, so equal ids (of two
/// tenants, in an all-tenant read) keep the read's order.
fn sort_runs<T>(records: &mut [T], tie: TieOf<T>) {
    let mut start = 0;
    while start < records.len() {
        let mut end = start + 1;
        while end < records.len() && same_run(tie, &records[start], &records[end]) {
            end += 1;
        }
        if end - start > 1 {
            records[start..end].sort_by(|a, b| tie(a).map(|t| t.id).cmp(&tie(b).map(|t| t.id)));
        }
        start = end;
    }
}

/// `pages` with every run of ties in full-id order.
pub(super) fn in_id_order<T: Send + 'static>(pages: Pages<T>, tie: TieOf<T>) -> Pages<T> {
    stream::try_unfold(
        (pages, Vec::<T>::new(), false),
        move |(mut pages, mut held, done)| async move {
            if done {
                return Ok(None);
            }
            while let Some(page) = pages.try_next().await? {
                held.extend(page);
                let Some(last) = held.last() else { continue };
                let mut split = held.len() - 1;
                while split > 0 && same_run(tie, &held[split - 1], last) {
                    split -= 1;
                }
                if held.len() - split > MAX_RUN {
                    return Err(Error::internal(
                        "more records share one instant and their ids' first bytes than can be put in id order",
                        format!("a run of ties past {MAX_RUN} records"),
                    ));
                }
                if split == 0 {
                    continue; // one run so far: it may go on in the next page
                }
                let rest = held.split_off(split);
                let mut ready = std::mem::replace(&mut held, rest);
                sort_runs(&mut ready, tie);
                return Ok(Some((ready, (pages, held, false))));
            }
            if held.is_empty() {
                return Ok(None);
            }
            sort_runs(&mut held, tie);
            Ok(Some((held, (pages, Vec::new(), true))))
        },
    )
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tie(r: &(i64, String)) -> Option<Tie<'_>> {
        Some(Tie {
            group: ["", ""],
            at_ms: r.0,
            id: &r.1,
        })
    }

    #[tokio::test]
    async fn runs_are_sorted_across_pages_and_nothing_else_moves() {
        let long = |tail: &str| format!("{}{tail}", "a".repeat(2000));
        // Key order as a digest might give it: within instant 2, the long ids out of
        // order, and the run split over two pages.
        let pages: Vec<Vec<(i64, String)>> = vec![
            vec![(1, "b".into()), (1, "a".into()), (2, long("z"))],
            vec![(2, long("b")), (2, long("a"))],
            vec![],
            vec![(2, "b".into()), (3, long("y")), (3, long("x"))],
        ];
        let stream: Pages<(i64, String)> = stream::iter(pages.into_iter().map(Ok)).boxed();
        let out: Vec<Vec<(i64, String)>> = in_id_order(stream, tie).try_collect().await.unwrap();
        let flat: Vec<(i64, String)> = out.into_iter().flatten().collect();
        assert_eq!(
            flat,
            vec![
                // Ids that differ in their first bytes are never moved: the key
                // order is the id order there already.
                (1, "b".into()),
                (1, "a".into()),
                (2, long("a")),
                (2, long("b")),
                (2, long("z")),
                (2, "b".into()),
                (3, long("x")),
                (3, long("y")),
            ]
        );
    }

    #[tokio::test]
    async fn an_endless_run_fails_instead_of_growing() {
        let page = |n: usize| {
            (0..n)
                .map(|i| (1, format!("{}{i}", "a".repeat(100))))
                .collect::<Vec<_>>()
        };
        let pages: Pages<(i64, String)> = stream::iter((0..3).map(move |_| Ok(page(MAX_RUN / 2 + 1)))).boxed();
        let err = in_id_order(pages, tie).try_collect::<Vec<_>>().await.unwrap_err();
        assert!(err.to_string().contains("can be put in id order"), "{err}");
    }
}
