//! Shared engine for the chat-export Lambda functions.
//!
//! An export is a plain value ([`export::ExportJob`]: kind, file name, format, columns,
//! encoding options and a stream of row batches) run by one engine
//! ([`export::run`]): source (DynamoDB pages) -> rows -> encoder -> sink (inline
//! buffer or S3 multipart upload). HTTP handlers only translate requests into jobs
//! and outcomes into responses ([`api`]).

pub mod api;
pub mod audit;
pub mod auth;
pub mod aws;
pub mod chat_document;
pub mod chats;
pub mod config;
pub mod context;
pub mod error;
pub mod export;
pub mod leads;
pub mod logging;
pub mod model;
pub mod ratelimit;
pub mod schema;
pub mod sessions;
pub mod store;
pub mod synth;
pub mod timefmt;

pub use context::AppContext;
pub use error::Error;
