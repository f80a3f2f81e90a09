//! Values every layer shares, checked once where they enter: text made safe to
//! echo ([`text`]), email addresses ([`email`]), ids ([`id`]), closed sets of names
//! ([`enums`]). Layer 2 of ARCHITECTURE.md: nothing here imports anything of the
//! crate but its foundation.

pub mod email;
pub mod enums;
pub mod header;
pub mod id;
pub mod text;
pub mod webhook;

/// Bytes as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
