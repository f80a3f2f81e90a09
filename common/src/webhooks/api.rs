//! `POST /api/webhook-secrets` (a new secret, shown once), `GET` and `DELETE
//! /api/webhook-secrets/{id}`. A secret is its owner's: to anyone else it does not
//! exist (404), admins included (a secret signs its owner's events only).

use chrono::{DateTime, Utc};
use lambda_http::{
    Body, Response,
    http::{HeaderValue, StatusCode, header::LOCATION},
};
use serde_json::json;

use super::secrets;
use crate::{
    AppContext,
    error::Error,
    http::{
        ErrorStyle, Policy, RawRequest,
        pipeline::{JOB_ERRORS, Route, Trace, authenticate},
        query::{self, NoParams},
        response::json_response,
        sanitize,
    },
};

pub const SECRETS_PATH: &str = "/api/webhook-secrets";
pub const SECRET_PATH: &str = "/api/webhook-secrets/{id}";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretRoute {
    Create,
    Get(String),
    Delete(String),
}

fn secret_path(path: &str) -> Option<Option<&str>> {
    let rest = path.strip_prefix(SECRETS_PATH)?;
    if rest.is_empty() || rest == "/" {
        return Some(None);
    }
    let id = rest.strip_prefix('/')?;
    (!id.is_empty() && !id.contains('/')).then_some(Some(id))
}

impl SecretRoute {
    pub fn matching(method: &str, path: &str) -> Option<Self> {
        match (method, secret_path(path)?) {
            ("POST", None) => Some(Self::Create),
            ("GET", Some(id)) => Some(Self::Get(id.to_string())),
            ("DELETE", Some(id)) => Some(Self::Delete(id.to_string())),
            _ => None,
        }
    }

    /// The methods a path serves (its `Allow` header); `None`: not one of its paths.
    pub fn allowed(path: &str) -> Option<&'static str> {
        Some(match secret_path(path)? {
            None => "POST",
            Some(_) => "GET, DELETE",
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Create => "POST /api/webhook-secrets",
            Self::Get(_) => "GET /api/webhook-secrets/{id}",
            Self::Delete(_) => "DELETE /api/webhook-secrets/{id}",
        }
    }
}

fn not_found() -> Error {
    Error::NotFound("no such webhook secret".into())
}

impl Route for SecretRoute {
    fn policy(&self) -> Policy {
        Policy {
            audited: !matches!(self, Self::Get(_)),
            ..Policy::query(self.name(), "webhook-secrets")
        }
    }

    fn error_style(&self, _raw: &RawRequest) -> ErrorStyle {
        JOB_ERRORS
    }

    async fn attempt(
        &self,
        ctx: &AppContext,
        raw: &RawRequest,
        now: DateTime<Utc>,
        trace: &mut Trace,
    ) -> Result<Response<Body>, Error> {
        let caller = authenticate(ctx, raw, now, trace).await?;
        raw.typed_headers()?;
        query::decode::<NoParams>(&raw.query)?;
        match self {
            Self::Create => {
                // Nothing to ask: an empty body, or an empty JSON object.
                let _: EmptyBody = raw.json_body(false)?;
                let created = secrets::create(ctx, &caller, now).await?;
                trace.job_id = Some(created.id.to_string());
                let body = json!({
                    "id": created.id.as_str(),
                    "secret": created.secret,
                    "created_at": crate::timefmt::format(&created.created_at),
                    "note": "the secret is shown once: store it now; webhooks name it by id",
                });
                let mut resp = json_response(StatusCode::CREATED, &body);
                if let Ok(location) = HeaderValue::from_str(&format!("{SECRETS_PATH}/{}", created.id)) {
                    resp.headers_mut().insert(LOCATION, location);
                }
                Ok(resp)
            }
            Self::Get(id) => {
                raw.no_body()?;
                trace.job_id = Some(sanitize(id));
                let owned = secrets::owned(ctx, &caller.sub, id).await?.ok_or_else(not_found)?;
                Ok(json_response(
                    StatusCode::OK,
                    &json!({"id": owned.id.as_str(), "created_at": crate::timefmt::format(&owned.created_at)}),
                ))
            }
            Self::Delete(id) => {
                raw.no_body()?;
                trace.job_id = Some(sanitize(id));
                if !secrets::delete(ctx, &caller.sub, id).await? {
                    return Err(not_found());
                }
                Response::builder()
                    .status(StatusCode::NO_CONTENT)
                    .body(Body::Empty)
                    .map_err(|e| Error::internal("response error", e))
            }
        }
    }
}

/// `POST /api/webhook-secrets` takes no fields.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyBody {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match() {
        assert_eq!(SecretRoute::matching("POST", SECRETS_PATH), Some(SecretRoute::Create));
        assert_eq!(
            SecretRoute::matching("DELETE", "/api/webhook-secrets/ab"),
            Some(SecretRoute::Delete("ab".into()))
        );
        assert_eq!(SecretRoute::matching("GET", SECRETS_PATH), None);
        assert_eq!(SecretRoute::matching("GET", "/api/webhook-secrets/a/b"), None);
        assert_eq!(SecretRoute::matching("GET", "/api/webhook-secretsx"), None);
        assert_eq!(SecretRoute::allowed(SECRETS_PATH), Some("POST"));
    }
}
