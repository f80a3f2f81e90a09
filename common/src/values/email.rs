//! Email addresses as this project accepts them: one plain address, nothing else;
//! and who may be sent an export.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::NotifyConfig;

/// One plain address ([`is_address`]), lowercased: the `email` claim of a token, a
/// recipient. Checked and lowercased once, where it enters, so that every comparison
/// after that is exact.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    /// `text` as an address, or `None` when it is not one plain address. Nothing is
    /// trimmed: a caller that accepts surrounding space trims first.
    pub fn parse(text: &str) -> Option<Self> {
        is_address(text).then(|| Self(text.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the `@`.
    pub fn domain(&self) -> &str {
        domain_of(&self.0)
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for EmailAddress {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<EmailAddress> for String {
    fn from(a: EmailAddress) -> String {
        a.0
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text).ok_or_else(|| "not an email address".to_string())
    }
}

/// A plausible single address: `local@domain.tld`, no spaces, no control
/// characters, no display names or lists, at most 254 characters.
pub fn is_address(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    let atom = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c);
    text.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && local.chars().all(atom)
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or("", |(_, d)| d)
}

/// The recipient rule: anyone may have exports emailed to the `email` claim of
/// their own token (`own`); an admin also to any address in
/// `NOTIFY_ALLOWED_DOMAINS`. Checked when a job or schedule is made
/// ([`crate::notify::check_recipients`]) and again, against the owner's rights as last seen, when
/// each email is sent ([`crate::notify::email::send_for`]).
pub fn may_email(cfg: &NotifyConfig, admin: bool, own: Option<&EmailAddress>, address: &EmailAddress) -> bool {
    own == Some(address) || (admin && cfg.allowed_domains.iter().any(|d| d == address.domain()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_single_and_plain() {
        for bad in [
            "",
            "a",
            "a@b",
            "a b@c.d",
            "a@b.c\r\nBcc: x@y.z",
            "A <a@b.c>",
            "a@b.c,d@e.f",
            "a@-b.c",
            ".a@b.c",
            "a@b..c",
        ] {
            assert!(!is_address(bad), "{bad:?}");
        }
        assert!(is_address("first.last+tag@sub.example.com"));
    }

    #[test]
    fn an_address_is_lowercased_once_and_reads_back_the_same() {
        let a = EmailAddress::parse("Me@Corp.IO").unwrap();
        assert_eq!(a.as_str(), "me@corp.io");
        assert_eq!(a.domain(), "corp.io");
        assert!(EmailAddress::parse(" me@corp.io").is_none());
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, "\"me@corp.io\"");
        assert_eq!(serde_json::from_str::<EmailAddress>(&json).unwrap(), a);
        assert!(serde_json::from_str::<EmailAddress>("\"a b@c.d\"").is_err());
    }
}
