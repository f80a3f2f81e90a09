//! Email addresses as this project accepts them: one plain address, nothing else;
//! and who may be sent an export.

use crate::config::NotifyConfig;

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
pub fn may_email(cfg: &NotifyConfig, admin: bool, own: Option<&str>, address: &str) -> bool {
    let address = address.trim().to_ascii_lowercase();
    own.is_some_and(|o| o.eq_ignore_ascii_case(&address))
        || (admin && cfg.allowed_domains.iter().any(|d| d == domain_of(&address)))
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
}
