//! Export jobs: an [`ExportSpec`](crate::spec::ExportSpec) stored with its state and run by a worker.
//!
//! A job is created by `POST /api/exports` (or any synchronous route with
//! `Prefer: respond-async`), its id is sent to the jobs queue, and a worker
//! ([`worker`]) claims it with a conditional write, runs the spec through the same
//! engine into S3, writing progress as it goes, and records the outcome. Synchronous
//! exports are recorded as finished jobs too, so the history ([`api`]) is complete.
//!
//! Table `JOBS_TABLE`: one item per job (key `id`), plus two kinds of helper items
//! (`idem#<owner>#<key>`: an idempotency key; `active#<owner>`: the caller's count of
//! queued and running jobs). Index `by_owner` (`owner`, `created_key`) lists a
//! caller's jobs newest first; helper items carry no `owner`, so they never appear
//! there. docs/data-model.md has the details.

pub mod api;
pub mod history;
pub mod job;
pub mod operator;
pub mod queue;
pub mod request;
pub mod store;
pub mod submit;
pub mod sweep;
pub mod worker;

pub use self::job::*;
