//! API tokens with scopes. Open (no tokens) only on loopback; the server refuses to start
//! otherwise.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::config::{ApiToken, Scope};
pub use crate::ingest::adapter::constant_time_eq;

#[derive(Debug, Clone)]
pub struct Principal {
    pub name: String,
}

#[derive(Clone)]
pub struct Auth {
    /// (sha256 of token, token) — compared by hash so timing does not leak the token.
    tokens: Vec<([u8; 32], ApiToken)>,
}

impl Auth {
    pub fn new(tokens: &[ApiToken]) -> Self {
        Auth {
            tokens: tokens
                .iter()
                .map(|t| (Sha256::digest(t.token.as_bytes()).into(), t.clone()))
                .collect(),
        }
    }

    pub fn is_open(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The bearer token from `Authorization: Bearer …` (or the `plumbline_token` cookie the
    /// review page sets).
    pub fn presented(headers: &HeaderMap) -> Option<String> {
        if let Some(v) = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        {
            let v = v.trim();
            return Some(
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
                    .unwrap_or(v)
                    .trim()
                    .to_string(),
            );
        }
        let cookies = headers.get(axum::http::header::COOKIE)?.to_str().ok()?;
        cookies
            .split(';')
            .filter_map(|c| c.trim().strip_prefix("plumbline_token="))
            .map(str::to_string)
            .next()
    }

    /// Checks the request's token for `scope`. `admin` implies every scope.
    pub fn check(&self, headers: &HeaderMap, scope: Scope) -> Result<Principal, ApiError> {
        if self.is_open() {
            return Ok(Principal {
                name: "anonymous".into(),
            });
        }
        let Some(token) = Self::presented(headers) else {
            return Err(ApiError::unauthorized(
                "missing API token: send `Authorization: Bearer <token>`",
            ));
        };
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let found = self
            .tokens
            .iter()
            .find(|(h, _)| constant_time_eq(h, &digest));
        match found {
            None => Err(ApiError::unauthorized("unknown API token")),
            Some((_, t)) if t.scopes.contains(&scope) || t.scopes.contains(&Scope::Admin) => {
                Ok(Principal {
                    name: t.name.clone(),
                })
            }
            Some((_, t)) => Err(ApiError::unauthorized(format!(
                "token `{}` lacks the `{}` scope",
                t.name,
                serde_json::to_value(scope)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_enforced() {
        let auth = Auth::new(&[ApiToken {
            name: "ci".into(),
            token: "0123456789abcdef".into(),
            scopes: vec![Scope::Ingest],
        }]);
        let mut h = HeaderMap::new();
        assert_eq!(auth.check(&h, Scope::Ingest).unwrap_err().status, 401);
        h.insert("authorization", "Bearer 0123456789abcdef".parse().unwrap());
        assert!(auth.check(&h, Scope::Ingest).is_ok());
        assert!(auth.check(&h, Scope::Read).unwrap_err().body["error"]
            .as_str()
            .unwrap()
            .contains("read"));
        h.insert("authorization", "Bearer wrong".parse().unwrap());
        assert_eq!(auth.check(&h, Scope::Ingest).unwrap_err().status, 401);
    }
}
