//! The paths the tools and tests use for what used to live here: key derivation
//! ([`crate::keys`]), the loader ([`crate::load`]), page streams
//! ([`crate::reads::pages`]) and item decoding ([`crate::reads`]).

pub use crate::{
    keys::*,
    load::*,
    reads::{Item, decode, pages::*},
};
