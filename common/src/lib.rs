//! Shared engine for the chat-export Lambda functions.
//!
//! A request becomes typed, bounded parameters ([`params`]), scoped to the caller
//! into a spec, and then a job ([`export::ExportJob`]: kind, file name, format,
//! columns, encoding options and a stream of row batches) run by one engine
//! ([`export::run`]): source (DynamoDB pages) -> rows -> encoder -> sink (inline
//! buffer or S3 multipart upload). Every route runs through one request pipeline
//! ([`http::pipeline`]); the function crates only declare their routes' policies.

pub mod audit;
pub mod auth;
pub mod aws;
pub mod chat_document;
pub mod chats;
pub mod clock;
pub mod config;
pub mod context;
pub mod delivery;
pub mod error;
pub mod export;
pub mod http;
pub mod leads;
pub mod logging;
pub mod model;
pub mod params;
pub mod ratelimit;
pub mod schema;
pub mod sessions;
pub mod store;
pub mod synth;
pub mod timefmt;

pub use context::AppContext;
pub use error::Error;
