//! Shared engine for the chat-export Lambda functions.
//!
//! A request becomes typed, bounded parameters ([`params`]), scoped to the caller
//! into an [`spec::ExportSpec`]: a plain value (kind, filters, tenant scope, format,
//! options, `as_of`) that any trigger can build, store or replay. [`compile::compile`]
//! turns a spec into its pipeline: source ([`source`]: DynamoDB reads of typed
//! records) -> rows ([`kinds`]) -> encoder ([`export`]) -> sink (inline buffer or S3
//! multipart upload, [`delivery`]). Every route runs through one request pipeline
//! ([`http::pipeline`]); the function crates only declare their routes' policies.

pub mod alloc;
pub mod audit;
pub mod auth;
pub mod aws;
pub mod backfill;
pub mod clock;
pub mod compile;
pub mod config;
pub mod context;
pub mod delivery;
pub mod dynamo;
pub mod error;
pub mod export;
pub mod http;
pub mod index;
pub mod jobs;
pub mod keys;
pub mod kinds;
pub mod load;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod params;
pub mod progress;
pub mod ratelimit;
pub mod reads;
pub mod rights;
pub mod scale;
pub mod schedules;
pub mod schema;
pub mod source;
pub mod spec;
pub mod synth;
pub mod timefmt;
pub mod values;
pub mod webhooks;

pub use context::AppContext;
pub use error::Error;
