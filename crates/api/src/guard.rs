//! Requests a browser could be tricked into sending. Any web page the operator visits can
//! make their browser call this API: by DNS rebinding (a hostile name that resolves to
//! 127.0.0.1, so the request carries a foreign `Host`) or by a cross-site POST (which a
//! browser always marks with its `Origin`). Webhooks and CLIs send neither a foreign
//! `Origin` nor, on an open API, a non-loopback `Host`.
//!
//! - An open API (no tokens, loopback only) answers only loopback host names.
//! - A state-changing request whose `Origin` is not this server is refused, with or
//!   without tokens (the review page's cookie must not be usable from another site).
//!   "This server" is the request's `Host`, or `server.public_url` (behind a reverse
//!   proxy that rewrites `Host`, the page's origin is the public one).

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::Auth;
use crate::error::ApiError;

/// What the guard knows: the tokens (is the API open?) and the public origin.
#[derive(Clone)]
pub struct Guard {
    pub auth: Auth,
    /// `scheme://host[:port]` of `server.public_url`.
    pub public_origin: String,
}

impl Guard {
    pub fn new(auth: Auth, public_url: &str) -> Guard {
        let origin = match public_url.split_once("://") {
            Some((scheme, rest)) => {
                format!("{scheme}://{}", rest.split('/').next().unwrap_or(""))
            }
            None => String::new(),
        };
        Guard {
            auth,
            public_origin: origin,
        }
    }
}

/// The guard as a layer for the whole router (`Router::layer`).
pub async fn guard(State(g): State<Guard>, req: Request, next: Next) -> Response {
    match check(&g, &req) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

fn check(g: &Guard, req: &Request) -> Result<(), ApiError> {
    let auth = &g.auth;
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth.is_open() && !is_loopback_name(host) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "Host `{host}` is not a loopback name: an API without tokens answers only \
                 127.0.0.1, [::1] and localhost (a foreign name is how DNS rebinding reaches it)"
            ),
        ));
    }
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if let (false, Some(origin)) = (safe, req.headers().get(header::ORIGIN)) {
        let origin = origin.to_str().unwrap_or("");
        let from = origin
            .split_once("://")
            .map_or(origin, |(_, rest)| rest)
            .trim_end_matches('/');
        let public = !g.public_origin.is_empty()
            && origin
                .trim_end_matches('/')
                .eq_ignore_ascii_case(&g.public_origin);
        if !from.eq_ignore_ascii_case(host) && !public {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "cross-site request refused: Origin `{origin}` is not this server \
                     (`{host}`); state-changing requests must come from the API's own page \
                     or a client that sends no Origin"
                ),
            ));
        }
    }
    Ok(())
}

/// `127.x.y.z`, `[::1]` or `localhost`, with or without a port.
fn is_loopback_name(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split_once(']').map_or(rest, |(n, _)| n)
    } else {
        host.rsplit_once(':').map_or(host, |(n, _)| n)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{ApiToken, Scope};

    fn req(method: Method, host: &str, origin: Option<&str>) -> Request {
        let mut b = axum::http::Request::builder()
            .method(method)
            .uri("/v1/packs/exfiltration/shadow")
            .header(header::HOST, host);
        if let Some(o) = origin {
            b = b.header(header::ORIGIN, o);
        }
        b.body(axum::body::Body::empty()).unwrap()
    }

    /// The confirmed findings: a rebinding `Host` and a cross-site POST were served.
    #[test]
    fn an_open_api_refuses_foreign_hosts_and_cross_site_writes() {
        let open = Guard::new(Auth::new(&[]), "http://127.0.0.1:7420");
        for host in [
            "127.0.0.1:7420",
            "localhost:7420",
            "[::1]:7420",
            "127.0.0.2",
        ] {
            assert!(
                check(&open, &req(Method::GET, host, None)).is_ok(),
                "{host}"
            );
        }
        let e = check(&open, &req(Method::GET, "evil.example:7420", None)).unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        let e = check(
            &open,
            &req(Method::POST, "127.0.0.1:7420", Some("https://evil.example")),
        )
        .unwrap_err();
        assert!(e.body["error"].as_str().unwrap().contains("cross-site"));
        // The page itself, and clients that send no Origin, are served.
        let own = req(
            Method::POST,
            "127.0.0.1:7420",
            Some("http://127.0.0.1:7420"),
        );
        assert!(check(&open, &own).is_ok());
        assert!(check(&open, &req(Method::POST, "127.0.0.1:7420", None)).is_ok());
    }

    #[test]
    fn with_tokens_any_host_is_served_but_cross_site_writes_are_not() {
        let auth = Guard::new(
            Auth::new(&[ApiToken {
                name: "ci".into(),
                token: "0123456789abcdef".into(),
                scopes: vec![Scope::Read],
            }]),
            "https://plumbline.acme.example/",
        );
        let host = "plumbline.acme.example";
        assert!(check(&auth, &req(Method::GET, host, None)).is_ok());
        let page = req(Method::POST, host, Some("https://plumbline.acme.example"));
        assert!(check(&auth, &page).is_ok());
        let other = req(Method::DELETE, host, Some("https://evil.example"));
        assert_eq!(
            check(&auth, &other).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        // Behind a proxy that rewrites Host, the public origin is the page's.
        let proxied = req(
            Method::POST,
            "10.0.0.5:7420",
            Some("https://plumbline.acme.example"),
        );
        assert!(check(&auth, &proxied).is_ok());
        let lookalike = req(
            Method::POST,
            "10.0.0.5:7420",
            Some("https://plumbline.acme.example.evil.example"),
        );
        assert!(check(&auth, &lookalike).is_err());
    }
}
