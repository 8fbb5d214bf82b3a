//! The front door of every HTTP listener (the control API and the metrics endpoint): what is
//! checked before a request reaches a handler, and how connections are held.
//!
//! - **Connections**: at most `max_connections` at once (more are closed at accept); a request's
//!   headers must arrive within `read_timeout` (an idle keep-alive connection is closed after
//!   it too), and its body within `read_timeout` again; `accept` errors (out of file
//!   descriptors) are logged at warn and backed off, never spun on.
//! - **Browsers**: a web page in the operator's browser must not be able to drive the API
//!   (CSRF), nor a hostile DNS name pointed at loopback (DNS rebinding). A request is refused
//!   when its `Host` is not an IP literal, `localhost` or one of `api.server_names`; when it
//!   carries an `Origin` other than its own `http[s]://Host`, or `Sec-Fetch-Site` other than
//!   `same-origin`/`none`; or when its body has a content type a browser may send cross-origin
//!   without a preflight (`text/plain`, `application/x-www-form-urlencoded`,
//!   `multipart/form-data`).
//! - **Signatures**: with access keys configured, every request must carry a valid AWS
//!   Signature Version 4 ([`crate::route53::sigv4`]) made with one of them, checked over the
//!   whole body; without keys any signature (or none) is accepted, which the config allows on
//!   loopback only.
//! - **Errors** are Route 53's XML `ErrorResponse`, for every refusal here too (403, 404, 405,
//!   408, 413).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::server::{WarnEvery, accept};

/// How a listener holds connections and reads requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; more are closed at accept.
    pub max_connections: usize,
    /// For a request's headers, and again for its body.
    pub read_timeout: Duration,
    /// Largest request body.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            read_timeout: Duration::from_secs(10),
            max_body: 2 << 20,
        }
    }
}

/// What the browser guard accepts.
#[derive(Clone, Debug, Default)]
pub struct Guard {
    /// Host names (lower case, no port) the listener answers to besides IP literals and
    /// `localhost`.
    pub server_names: Vec<String>,
    /// Access key id -> secret: requests must be signed with one (SigV4). Empty: any
    /// signature or none is accepted.
    pub keys: Arc<crate::route53::sigv4::Keys>,
    pub limits: Limits,
}

/// Route 53's error envelope (`ErrorResponse`), for every refusal; `problems` are an invalid
/// change batch's messages.
pub fn error(status: StatusCode, code: &str, message: &str, problems: &[String]) -> Response {
    use crate::route53::shapes::{ErrorDetail, ErrorResponse, Xmlns, to_xml};
    let request_id = crate::route53::uuid();
    let body = ErrorResponse {
        xmlns: Xmlns,
        error: ErrorDetail {
            kind: if status.is_server_error() {
                "Receiver"
            } else {
                "Sender"
            }
            .into(),
            code: code.into(),
            message: message.into(),
            messages: (!problems.is_empty()).then(|| problems.to_vec().into()),
        },
        request_id: request_id.clone(),
    };
    let mut response =
        (status, [(header::CONTENT_TYPE, "text/xml")], to_xml(&body)).into_response();
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amzn-requestid", id);
    }
    response
}

/// Why the front door turned a request away.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn response(&self) -> Response {
        error(self.status, "AccessDenied", &self.message, &[])
    }
}

fn refuse(message: &str) -> Refusal {
    Refusal {
        status: StatusCode::FORBIDDEN,
        message: message.to_string(),
    }
}

/// The host part of a `Host` header (or of an origin's authority), lower case, no port.
fn host_part(authority: &str) -> Option<String> {
    let authority = authority.trim();
    let host = if let Some(rest) = authority.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.starts_with(':')) {
            return None;
        }
        inside.parse::<std::net::Ipv6Addr>().ok()?;
        return Some(format!("[{}]", inside.to_ascii_lowercase()));
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            Some(_) => return None,
            None => authority,
        }
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

impl Guard {
    /// Whether `host` (from [`host_part`]) names this listener: an IP literal cannot be
    /// rebound, `localhost` is the machine's own, the rest must be configured.
    fn own_host(&self, host: &str) -> bool {
        let bare = host.trim_end_matches('.');
        host.parse::<IpAddr>().is_ok()
            || host.starts_with('[')
            || bare == "localhost"
            || self
                .server_names
                .iter()
                .any(|n| n.trim_end_matches('.') == bare)
    }

    /// Why the request must be refused before anything reads it, if it must.
    fn check_headers(&self, method: &Method, headers: &HeaderMap) -> Result<(), Refusal> {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        let host = text(header::HOST)
            .and_then(host_part)
            .ok_or_else(|| refuse("a Host header naming this server is required"))?;
        if !self.own_host(&host) {
            return Err(refuse(&format!(
                "Host {host} is not one of this server's names (api.server_names)"
            )));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let own = text(header::HOST).unwrap_or("").trim().to_ascii_lowercase();
            let origin = origin.to_str().unwrap_or("").to_ascii_lowercase();
            let same = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .is_some_and(|authority| authority == own);
            if !same {
                return Err(refuse(&format!(
                    "cross-origin requests are refused (Origin {origin:?})"
                )));
            }
        }
        if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site"))
            && !matches!(site, "same-origin" | "none")
        {
            return Err(refuse(&format!(
                "cross-site requests are refused (Sec-Fetch-Site {site})"
            )));
        }
        if let Some(value) = headers.get(header::CONTENT_TYPE)
            && !matches!(*method, Method::GET | Method::HEAD)
        {
            let media = value
                .to_str()
                .unwrap_or("")
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if matches!(
                media.as_str(),
                "text/plain" | "application/x-www-form-urlencoded" | "multipart/form-data"
            ) {
                return Err(refuse(&format!(
                    "content type {media} is refused: a browser sends it cross-origin; send text/xml or none"
                )));
            }
        }
        Ok(())
    }
}

/// Middleware: the browser guard, then the body read whole within the read timeout and the
/// size limit, then the signature (with access keys configured), before the handler runs.
pub async fn guard(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    if let Err(refusal) = guard.check_headers(request.method(), request.headers()) {
        return refusal.response();
    }
    let (parts, body) = request.into_parts();
    let limits = &guard.limits;
    let read = tokio::time::timeout(
        limits.read_timeout,
        axum::body::to_bytes(body, limits.max_body),
    )
    .await;
    let bytes = match read {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "InvalidInput",
                &format!(
                    "the request body is larger than {} bytes (or broken)",
                    limits.max_body
                ),
                &[],
            );
        }
        Err(_) => {
            let mut response = error(
                StatusCode::REQUEST_TIMEOUT,
                "RequestTimeout",
                "the request body did not arrive in time",
                &[],
            );
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return response;
        }
    };
    if !guard.keys.is_empty()
        && let Err(e) = crate::route53::sigv4::verify(
            &parts.method,
            &parts.uri,
            &parts.headers,
            &bytes,
            &guard.keys,
            std::time::SystemTime::now(),
        )
    {
        return error(StatusCode::FORBIDDEN, e.code(), &e.to_string(), &[]);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Adds the guard, and error bodies for unknown paths and methods, to `router`.
pub fn guarded(router: Router, guard: Arc<Guard>) -> Router {
    router
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "InvalidInput",
                "method not allowed on this path",
                &[],
            )
        })
        .fallback(|| async { error(StatusCode::NOT_FOUND, "NotFound", "no such API call", &[]) })
        .layer(axum::middleware::from_fn_with_state(guard, self::guard))
}

/// Serves `router` on `listener` within `limits` until the task is dropped.
pub async fn serve(listener: TcpListener, router: Router, limits: Limits) -> anyhow::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (accept_warn, cap_warn) = (WarnEvery::new(), WarnEvery::new());
    let mut backoff = Duration::ZERO;
    loop {
        let (stream, peer) = accept(&listener, &mut backoff, &accept_warn).await;
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            cap_warn.warn(|| {
                format!(
                    "HTTP connection from {peer} closed: {} connections already open",
                    limits.max_connections
                )
            });
            continue;
        };
        let service = TowerToHyperService::new(router.clone());
        let read_timeout = limits.read_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(read_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!("HTTP connection from {peer}: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn allowed(guard: &Guard, method: Method, pairs: &[(&'static str, &str)]) -> bool {
        guard.check_headers(&method, &headers(pairs)).is_ok()
    }

    #[test]
    fn browsers_and_rebound_names_are_refused() {
        let g = Guard {
            server_names: vec!["dns-api.internal".into()],
            ..Guard::default()
        };
        let post = Method::POST;
        let json = ("content-type", "application/json");
        for host in [
            "127.0.0.1:8053",
            "[::1]:8053",
            "localhost:8053",
            "LOCALHOST",
            "dns-api.internal:8053",
        ] {
            assert!(allowed(&g, post.clone(), &[("host", host), json]), "{host}");
        }
        for host in [
            "rebind.evil.example",
            "evil.example:8053",
            "127.0.0.1.nip.io",
        ] {
            assert!(
                !allowed(&g, post.clone(), &[("host", host), json]),
                "{host}"
            );
        }
        assert!(!allowed(&g, post.clone(), &[json]), "no Host");
        let host = ("host", "127.0.0.1:8053");
        assert!(allowed(
            &g,
            post.clone(),
            &[host, json, ("origin", "http://127.0.0.1:8053")]
        ));
        for origin in ["http://evil.example", "null", "http://127.0.0.1:3000"] {
            assert!(
                !allowed(&g, post.clone(), &[host, json, ("origin", origin)]),
                "{origin}"
            );
        }
        for media in [
            "text/plain",
            "text/plain;charset=UTF-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ] {
            assert!(
                !allowed(&g, post.clone(), &[host, ("content-type", media)]),
                "{media}"
            );
        }
        assert!(!allowed(
            &g,
            post.clone(),
            &[host, json, ("sec-fetch-site", "cross-site")]
        ));
        assert!(allowed(&g, Method::GET, &[host]));
    }
}
