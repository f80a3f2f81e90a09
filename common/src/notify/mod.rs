//! Email delivery of finished exports: who may be emailed ([`check_recipients`]),
//! the signed download links the emails carry ([`link`]) and the emails themselves
//! ([`email`]). docs/schedules.md, "Email delivery".

pub mod email;
pub mod link;

use serde::{Deserialize, Serialize};

use crate::{
    auth::Caller,
    config::NotifyConfig,
    error::Error,
    values::{email::EmailAddress, text::sanitize},
};

/// Most recipients one job or schedule may email.
pub const MAX_RECIPIENTS: usize = 10;

/// `"notify": {"emails": [...], "on_empty": true}` of a job or schedule request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyRequest {
    #[serde(default)]
    pub emails: Vec<String>,
    /// `[{"url", "secret_id"}]`: receivers of the finished job's event
    /// ([`crate::webhooks`]); checked against the caller's secrets when the job or
    /// schedule is made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<crate::values::webhook::WebhookRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_empty: Option<bool>,
}

/// Checked recipients (lowercase, each once) and whether an empty run emails.
#[derive(Clone, Debug, PartialEq)]
pub struct Notify {
    pub emails: Vec<EmailAddress>,
    pub on_empty: bool,
    /// As asked for: [`crate::webhooks::vet`] checks them (it needs the database).
    pub webhooks: Vec<crate::values::webhook::WebhookRequest>,
}

/// Nobody to email (an empty run would email, had it recipients).
impl Default for Notify {
    fn default() -> Self {
        Self {
            emails: Vec::new(),
            on_empty: true,
            webhooks: Vec::new(),
        }
    }
}

pub use crate::values::email::may_email;

/// The recipients a caller may have an export emailed to: a non-admin only the
/// `email` claim of its own token; an admin also any address in
/// `NOTIFY_ALLOWED_DOMAINS`. `field` names the request field in messages.
pub fn check_recipients(
    cfg: &NotifyConfig,
    caller: &Caller,
    request: Option<NotifyRequest>,
    field: &str,
) -> Result<Notify, Error> {
    let Some(request) = request else {
        return Ok(Notify::default());
    };
    if request.emails.len() > MAX_RECIPIENTS {
        return Err(Error::bad_request(format!(
            "{field}.emails: at most {MAX_RECIPIENTS} recipients"
        )));
    }
    let own = caller.email.as_ref();
    let mut emails: Vec<EmailAddress> = Vec::new();
    for (i, raw) in request.emails.iter().enumerate() {
        let at = format!("{field}.emails[{i}]");
        let Some(address) = EmailAddress::parse(raw.trim()) else {
            return Err(Error::bad_request(format!(
                "{at}: '{}' is not an email address",
                sanitize(raw)
            )));
        };
        if !may_email(cfg, caller.is_admin(), own, &address) {
            let rule = if caller.is_admin() {
                "admins may email their own address and addresses in NOTIFY_ALLOWED_DOMAINS"
            } else if own.is_some() {
                "exports may only be emailed to the address of your own token"
            } else {
                "your token has no email claim, so exports cannot be emailed"
            };
            // A well-formed address this caller may not use: not allowed, not malformed.
            return Err(Error::Forbidden(format!("{at}: {rule}")));
        }
        if !emails.contains(&address) {
            emails.push(address);
        }
    }
    Ok(Notify {
        emails,
        on_empty: request.on_empty.unwrap_or(true),
        webhooks: request.webhooks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn cfg() -> NotifyConfig {
        NotifyConfig {
            from: Some("exports@example.com".into()),
            allowed_domains: vec!["example.com".into()],
            link_days: 7,
            public_api_url: "http://127.0.0.1:3000".into(),
        }
    }

    fn caller(role: Role, email: Option<&str>) -> Caller {
        Caller {
            sub: "u".into(),
            role,
            client_id: None,
            company_id: None,
            email: email.and_then(EmailAddress::parse),
        }
    }

    fn ask(emails: &[&str]) -> Option<NotifyRequest> {
        Some(NotifyRequest {
            emails: emails.iter().map(|e| e.to_string()).collect(),
            on_empty: None,
            webhooks: Vec::new(),
        })
    }

    #[test]
    fn users_may_only_email_themselves() {
        let me = caller(Role::User, Some("Me@Corp.io"));
        let ok = check_recipients(&cfg(), &me, ask(&["me@corp.io", "ME@corp.io"]), "notify").unwrap();
        assert_eq!(ok.emails, [EmailAddress::parse("me@corp.io").unwrap()]);
        for bad in [&["other@corp.io"][..], &["a@example.com"], &["me@corp.io", "x@y.z"]] {
            let e = check_recipients(&cfg(), &me, ask(bad), "notify").unwrap_err();
            assert!(e.to_string().starts_with("notify.emails["), "{e}");
        }
        let nobody = caller(Role::User, None);
        assert!(check_recipients(&cfg(), &nobody, ask(&["me@corp.io"]), "notify").is_err());
        assert!(check_recipients(&cfg(), &nobody, ask(&[]), "notify").is_ok());
    }

    #[test]
    fn admins_may_email_allowed_domains() {
        let admin = caller(Role::Admin, Some("boss@corp.io"));
        assert!(check_recipients(&cfg(), &admin, ask(&["a@example.com", "boss@corp.io"]), "notify").is_ok());
        assert!(check_recipients(&cfg(), &admin, ask(&["a@evil.example.com"]), "notify").is_err());
        assert!(check_recipients(&cfg(), &admin, ask(&["a@example.com.evil.io"]), "notify").is_err());
    }
}
