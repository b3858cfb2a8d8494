//! API tokens with scopes, and the one extractor every handler states its scope with:
//! `_: Require<Read>` refuses the request before the handler runs. Open (no tokens) only on
//! loopback; the binary refuses to start otherwise.

use std::marker::PhantomData;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::ApiError;
pub use plumbline_ingest::adapter::constant_time_eq;

/// This crate's part of the embedded default configuration (`crates/api/config.toml`).
pub const DEFAULT_CONFIG: &str = include_str!("../config.toml");

/// `[auth]` in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub tokens: Vec<ApiToken>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        #[derive(Deserialize)]
        struct Defaults {
            auth: AuthConfig,
        }
        toml::from_str::<Defaults>(DEFAULT_CONFIG)
            .expect("crates/api/config.toml is valid")
            .auth
    }
}

impl AuthConfig {
    /// Tokens shorter than 16 characters are refused: they are guessable.
    pub fn validate(&self) -> Result<(), String> {
        match self.tokens.iter().find(|t| t.token.len() < 16) {
            Some(t) => Err(format!(
                "auth token `{}` is shorter than 16 characters",
                t.name
            )),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    pub name: String,
    pub token: String,
    pub scopes: Vec<Scope>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Ingest,
    Read,
    /// Approve or deny response actions (a review page's token; admin also may).
    Review,
    Admin,
}

/// A scope as a type, for [`Require`].
pub trait RequiredScope: Send + Sync + 'static {
    const SCOPE: Scope;
}

/// The scopes as types: `Require<scope::Read>`.
pub mod scope {
    use super::{RequiredScope, Scope};

    macro_rules! scope_types {
        ($($name:ident),*) => {$(
            #[doc = concat!("The `", stringify!($name), "` scope, for [`super::Require`].")]
            pub struct $name;
            impl RequiredScope for $name {
                const SCOPE: Scope = Scope::$name;
            }
        )*};
    }
    scope_types!(Ingest, Read, Review, Admin);
}

/// Extracting this refuses the request unless its token carries `S` (or `admin`); the
/// handler then knows who asked. Works with any router state that can hand out the
/// [`Auth`] (`FromRef`).
pub struct Require<S: RequiredScope> {
    pub who: Principal,
    scope: PhantomData<S>,
}

impl<St, S> FromRequestParts<St> for Require<S>
where
    S: RequiredScope,
    Auth: FromRef<St>,
    St: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, ApiError> {
        let who = Auth::from_ref(state).check(&parts.headers, S::SCOPE)?;
        Ok(Require {
            who,
            scope: PhantomData,
        })
    }
}

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

    /// The name of the known token the request presents, without checking any scope
    /// (the rate limiter's key).
    pub fn caller(&self, headers: &HeaderMap) -> Option<&str> {
        let token = Self::presented(headers)?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.tokens
            .iter()
            .find(|(h, _)| constant_time_eq(h, &digest))
            .map(|(_, t)| t.name.as_str())
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
            // Known but not allowed: 403, without naming the token (its name would tell a
            // holder of a leaked token which one it is).
            Some(_) => Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                format!(
                    "this token lacks the `{}` scope",
                    serde_json::to_value(scope)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The extractor refuses before any handler runs, naming the missing scope.
    #[tokio::test]
    async fn require_states_the_scope_a_route_needs() {
        let auth = Auth::new(&[ApiToken {
            name: "page".into(),
            token: "review-token-0123456789".into(),
            scopes: vec![Scope::Read, Scope::Review],
        }]);
        let mut parts = axum::http::Request::builder()
            .header("authorization", "Bearer review-token-0123456789")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let who = Require::<scope::Review>::from_request_parts(&mut parts, &auth)
            .await
            .unwrap()
            .who;
        assert_eq!(who.name, "page");
        let refused = Require::<scope::Admin>::from_request_parts(&mut parts, &auth)
            .await
            .err()
            .unwrap();
        assert_eq!(refused.status, 403);
        let message = refused.body["error"].as_str().unwrap();
        assert!(
            message.contains("`admin`") && !message.contains("page"),
            "{message}"
        );
        // An open API (no tokens, loopback only) lets every scope through.
        let open = Auth::new(&[]);
        assert!(
            Require::<scope::Admin>::from_request_parts(&mut parts, &open)
                .await
                .is_ok()
        );
    }

    #[test]
    fn short_tokens_are_refused() {
        let short = AuthConfig {
            tokens: vec![ApiToken {
                name: "ci".into(),
                token: "short".into(),
                scopes: vec![Scope::Read],
            }],
        };
        assert!(short.validate().unwrap_err().contains("`ci`"));
        assert!(AuthConfig::default().tokens.is_empty());
    }

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
