//! Probes: one observation of one check, over the network, with Route 53's per-stage limits.
//!
//! - HTTP(S): connect (TCP, and the TLS handshake for HTTPS) within the connect timeout (4 s),
//!   then the status line within the status timeout (2 s); 2xx and 3xx are healthy (redirects
//!   are not followed). With a search string, the first 5,120 bytes of the body (decompressed
//!   from gzip/deflate) within the body timeout (2 s) must contain it, case-sensitively.
//!   Certificates are not validated; SNI carries the FQDN when the check enables it.
//! - TCP: a connection within 10 s.
//! - METRIC: a Prometheus `/api/v1/query` instant query; no data or no answer is
//!   "insufficient data", which the check's InsufficientDataHealthStatus resolves.
//!
//! Every address is checked against the [`TargetPolicy`] before it is connected to, an FQDN's
//! at every probe after resolving it. What a probe reports is our own fixed wording plus
//! status codes and addresses, never text from the remote side (a check must not be a way to
//! read a service the daemon can reach).

use std::future::Future;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::header::{ACCEPT_ENCODING, CONNECTION, CONTENT_ENCODING, HOST, USER_AGENT};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::spec::{CheckKind, CheckSpec, Endpoint, HttpCheck, MetricCheck, MetricSource};
use super::targets::TargetPolicy;

/// Bytes of the (decompressed) body a search string must appear in.
pub const SEARCH_WINDOW: usize = 5120;
/// Largest Prometheus API response read.
const MAX_API_RESPONSE: usize = 4 << 20;
const USER_AGENT_VALUE: &str = concat!("dns-user-health-check/", env!("CARGO_PKG_VERSION"));

/// What one probe saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Healthy(String),
    Unhealthy(String),
    /// A metric check without data (or without an answer from its source).
    NoData(String),
}

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs one probe. The network prober is [`NetProber`]; tests substitute scripted ones.
pub trait Prober: Send + Sync + 'static {
    fn probe<'a>(&'a self, spec: &'a CheckSpec) -> BoxFuture<'a, Outcome>;
}

/// Probes over the network, only to addresses `policy` allows.
pub struct NetProber {
    tls: tokio_rustls::TlsConnector,
    policy: TargetPolicy,
}

impl NetProber {
    pub fn new(policy: TargetPolicy) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        Self {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            policy,
        }
    }
}

impl Prober for NetProber {
    fn probe<'a>(&'a self, spec: &'a CheckSpec) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match &spec.kind {
                CheckKind::Http(h) => http(&self.tls, h, &self.policy).await,
                CheckKind::Tcp {
                    endpoint,
                    connect_timeout,
                } => tcp(endpoint, *connect_timeout, &self.policy).await,
                CheckKind::Metric(m) => metric(&self.tls, m, &self.policy).await,
                CheckKind::Calculated { .. } => {
                    Outcome::Unhealthy("a calculated check has no probe".into())
                }
            }
        })
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

async fn tcp(endpoint: &Endpoint, limit: Duration, policy: &TargetPolicy) -> Outcome {
    match timeout(limit, connect_tcp(endpoint, Some(policy))).await {
        Err(_) => Outcome::Unhealthy(timed_out("connecting", limit)),
        Ok(Err(e)) => Outcome::Unhealthy(e),
        Ok(Ok((_, addr))) => Outcome::Healthy(format!("Success: TCP connection to {addr}")),
    }
}

fn timed_out(stage: &str, limit: Duration) -> String {
    format!(
        "Failure: timed out {stage} (limit {})",
        humantime::format_duration(limit)
    )
}

/// The endpoint's address: its IP, else the first address its name resolves to that
/// `policy` allows (none: any).
async fn address(endpoint: &Endpoint, policy: Option<&TargetPolicy>) -> Result<SocketAddr, String> {
    let allowed = |ip: IpAddr| policy.map_or(Ok(()), |p| p.check(ip));
    if let Some(ip) = endpoint.ip {
        allowed(ip).map_err(|e| format!("Failure: {e}"))?;
        return Ok(SocketAddr::new(ip, endpoint.port));
    }
    let name = endpoint
        .fqdn
        .as_deref()
        .expect("validated: an IP or a name");
    let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host((name, endpoint.port))
        .await
        .map_err(|e| format!("Failure: resolving {name}: {e}"))?
        .collect();
    // Like Route 53, IPv4 first.
    addrs.sort_by_key(|a| a.is_ipv6());
    let first = addrs
        .first()
        .copied()
        .ok_or_else(|| format!("Failure: {name} has no address"))?;
    addrs
        .iter()
        .copied()
        .find(|a| allowed(a.ip()).is_ok())
        .ok_or_else(|| {
            let why = allowed(first.ip()).err().unwrap_or_default();
            format!("Failure: {name} resolves to no address health checks may probe: {why}")
        })
}

async fn connect_tcp(
    endpoint: &Endpoint,
    policy: Option<&TargetPolicy>,
) -> Result<(TcpStream, SocketAddr), String> {
    let addr = address(endpoint, policy).await?;
    let failed = |e: std::io::Error| format!("Failure: connecting to {addr}: {e}");
    let source = policy.and_then(|p| match addr {
        SocketAddr::V4(_) => p.source_v4.map(IpAddr::V4),
        SocketAddr::V6(_) => p.source_v6.map(IpAddr::V6),
    });
    let stream = match source {
        None => TcpStream::connect(addr).await.map_err(failed)?,
        Some(source) => {
            let socket = match addr {
                SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
                SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
            }
            .map_err(failed)?;
            socket
                .bind(SocketAddr::new(source, 0))
                .map_err(|e| format!("Failure: probing from {source}: {e}"))?;
            socket.connect(addr).await.map_err(failed)?
        }
    };
    let _ = stream.set_nodelay(true);
    Ok((stream, addr))
}

/// TCP, then TLS if asked: the connect stage.
async fn connect(
    tls: Option<(&tokio_rustls::TlsConnector, Option<&str>)>,
    endpoint: &Endpoint,
    policy: Option<&TargetPolicy>,
) -> Result<(Box<dyn Io>, SocketAddr), String> {
    let (stream, addr) = connect_tcp(endpoint, policy).await?;
    let Some((connector, sni)) = tls else {
        return Ok((Box::new(stream), addr));
    };
    // An IP address as the server name sends no SNI.
    let name = match sni {
        Some(name) => ServerName::try_from(name.to_string())
            .map_err(|e| format!("Failure: SNI name {name:?}: {e}"))?,
        None => ServerName::IpAddress(addr.ip().into()),
    };
    let stream = connector
        .connect(name, stream)
        .await
        .map_err(|e| format!("Failure: TLS handshake with {addr}: {e}"))?;
    Ok((Box::new(stream), addr))
}

/// A spawned task that is aborted when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How much of the body to read.
enum BodyRead {
    None,
    /// The first n decompressed bytes.
    Prefix(usize),
    /// All of it, up to n bytes.
    Whole(usize),
}

struct Fetched {
    status: hyper::StatusCode,
    body: Vec<u8>,
}

/// Connect, GET, status, body: each stage within its own limit.
#[allow(clippy::too_many_arguments)]
async fn fetch(
    tls: Option<(&tokio_rustls::TlsConnector, Option<&str>)>,
    (endpoint, policy): (&Endpoint, Option<&TargetPolicy>),
    host: &str,
    path: &str,
    read: BodyRead,
    connect_timeout: Duration,
    status_timeout: Duration,
    body_timeout: Duration,
) -> Result<Fetched, String> {
    let (io, addr) = match timeout(connect_timeout, connect(tls, endpoint, policy)).await {
        Err(_) => return Err(timed_out("connecting", connect_timeout)),
        Ok(r) => r?,
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("Failure: HTTP with {addr}: {e}"))?;
    let _driver = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let request = Request::get(path)
        .header(HOST, host)
        .header(USER_AGENT, USER_AGENT_VALUE)
        .header(ACCEPT_ENCODING, "gzip, deflate")
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("Failure: building the request: {e}"))?;
    let response = match timeout(status_timeout, sender.send_request(request)).await {
        Err(_) => return Err(timed_out("waiting for the HTTP status", status_timeout)),
        Ok(Err(e)) => return Err(format!("Failure: no HTTP response from {addr}: {e}")),
        Ok(Ok(r)) => r,
    };
    let status = response.status();
    let limit = match read {
        BodyRead::None => {
            return Ok(Fetched {
                status,
                body: Vec::new(),
            });
        }
        BodyRead::Prefix(n) | BodyRead::Whole(n) => n,
    };
    let encoding = response
        .headers()
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let mut body = Decoder::new(encoding.as_deref())?;
    let mut incoming = response.into_body();
    let reading = async {
        while body.len() < limit {
            match incoming.frame().await {
                None => return Ok(()),
                Some(Err(e)) => return Err(format!("Failure: reading the body: {e}")),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        body.write(&data)?;
                    }
                }
            }
        }
        if matches!(read, BodyRead::Whole(_)) {
            return Err(format!("Failure: response larger than {limit} bytes"));
        }
        Ok(())
    };
    match timeout(body_timeout, reading).await {
        Err(_) => Err(timed_out("reading the body", body_timeout)),
        Ok(Err(e)) => Err(e),
        Ok(Ok(())) => {
            let mut body = body.finish();
            body.truncate(limit);
            Ok(Fetched { status, body })
        }
    }
}

/// Content decoding of the body as it arrives.
enum Decoder {
    Identity(Vec<u8>),
    Gzip(flate2::write::GzDecoder<Vec<u8>>),
    Deflate(flate2::write::ZlibDecoder<Vec<u8>>),
}

impl Decoder {
    fn new(encoding: Option<&str>) -> Result<Self, String> {
        match encoding {
            None | Some("identity") => Ok(Decoder::Identity(Vec::new())),
            Some("gzip" | "x-gzip") => Ok(Decoder::Gzip(flate2::write::GzDecoder::new(Vec::new()))),
            Some("deflate") => Ok(Decoder::Deflate(
                flate2::write::ZlibDecoder::new(Vec::new()),
            )),
            Some(other) => Err(format!("Failure: unsupported Content-Encoding {other:?}")),
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<(), String> {
        let r = match self {
            Decoder::Identity(v) => {
                v.extend_from_slice(data);
                Ok(())
            }
            // Flushed so that `len` counts everything decoded so far.
            Decoder::Gzip(d) => d.write_all(data).and_then(|()| d.flush()),
            Decoder::Deflate(d) => d.write_all(data).and_then(|()| d.flush()),
        };
        r.map_err(|e| format!("Failure: decompressing the body: {e}"))
    }

    fn len(&self) -> usize {
        match self {
            Decoder::Identity(v) => v.len(),
            Decoder::Gzip(d) => d.get_ref().len(),
            Decoder::Deflate(d) => d.get_ref().len(),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Decoder::Identity(v) => v,
            // What has been decoded; a stream cut short at the window is not an error here.
            Decoder::Gzip(mut d) => {
                let _ = d.try_finish();
                std::mem::take(d.get_mut())
            }
            Decoder::Deflate(mut d) => {
                let _ = d.try_finish();
                std::mem::take(d.get_mut())
            }
        }
    }
}

fn status_text(status: hyper::StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("HTTP status code {} ({reason})", status.as_u16()),
        None => format!("HTTP status code {}", status.as_u16()),
    }
}

async fn http(tls: &tokio_rustls::TlsConnector, h: &HttpCheck, policy: &TargetPolicy) -> Outcome {
    let read = if h.search.is_some() {
        BodyRead::Prefix(SEARCH_WINDOW)
    } else {
        BodyRead::None
    };
    let fetched = fetch(
        h.tls.then_some((tls, h.sni.as_deref())),
        (&h.endpoint, Some(policy)),
        &h.host,
        &h.path,
        read,
        h.connect_timeout,
        h.status_timeout,
        h.body_timeout,
    )
    .await;
    let fetched = match fetched {
        Ok(f) => f,
        Err(reason) => return Outcome::Unhealthy(reason),
    };
    let code = fetched.status.as_u16();
    if !(200..400).contains(&code) {
        return Outcome::Unhealthy(format!("Failure: {}", status_text(fetched.status)));
    }
    match &h.search {
        None => Outcome::Healthy(format!("Success: {}", status_text(fetched.status))),
        Some(needle) => {
            let found = fetched
                .body
                .windows(needle.len())
                .any(|w| w == needle.as_bytes());
            if found {
                Outcome::Healthy(format!(
                    "Success: {} and the search string in the body",
                    status_text(fetched.status)
                ))
            } else {
                Outcome::Unhealthy(format!(
                    "Failure: search string not in the first {SEARCH_WINDOW} bytes of the body ({})",
                    status_text(fetched.status)
                ))
            }
        }
    }
}

async fn metric(
    tls: &tokio_rustls::TlsConnector,
    m: &MetricCheck,
    policy: &TargetPolicy,
) -> Outcome {
    let uri: hyper::Uri = match m.url.parse() {
        Ok(u) => u,
        Err(e) => return Outcome::NoData(format!("PrometheusUrl: {e}")),
    };
    let https = uri.scheme_str() == Some("https");
    let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let endpoint = match host.parse::<IpAddr>() {
        Ok(ip) => Endpoint {
            ip: Some(ip),
            fqdn: None,
            port,
        },
        Err(_) => Endpoint {
            ip: None,
            fqdn: Some(host.to_string()),
            port,
        },
    };
    let query = match &m.source {
        MetricSource::Query { query, .. } => query.clone(),
        MetricSource::Alert { name } => {
            format!("ALERTS{{alertname=\"{name}\",alertstate=\"firing\"}}")
        }
    };
    let path = format!(
        "{}/api/v1/query?query={}",
        uri.path().trim_end_matches('/'),
        percent_encoding::utf8_percent_encode(&query, percent_encoding::NON_ALPHANUMERIC)
    );
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or(host);
    let sni = (https && endpoint.fqdn.is_some()).then_some(host);
    let fetched = fetch(
        https.then_some((tls, sni)),
        (&endpoint, Some(policy)),
        authority,
        &path,
        BodyRead::Whole(MAX_API_RESPONSE),
        m.timeout,
        m.timeout,
        m.timeout,
    )
    .await;
    let fetched = match fetched {
        Ok(f) if f.status.is_success() => f,
        Ok(f) => {
            return Outcome::NoData(format!(
                "Insufficient data: metrics API answered {}",
                status_text(f.status)
            ));
        }
        Err(reason) => return Outcome::NoData(format!("Insufficient data: {reason}")),
    };
    match vector_values(&fetched.body) {
        Err(e) => Outcome::NoData(format!("Insufficient data: {e}")),
        Ok(values) => judge(&m.source, &values),
    }
}

/// The verdict on an instant query's values.
pub fn judge(source: &MetricSource, values: &[f64]) -> Outcome {
    match source {
        MetricSource::Alert { name } if values.is_empty() => {
            Outcome::Healthy(format!("Success: alert {name} is not firing"))
        }
        MetricSource::Alert { name } => {
            Outcome::Unhealthy(format!("Failure: alert {name} is firing"))
        }
        MetricSource::Query {
            query,
            operator,
            threshold,
        } => {
            let values: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
            if values.is_empty() {
                return Outcome::NoData(format!("Insufficient data: {query} has no samples"));
            }
            match values.iter().find(|v| operator.holds(**v, *threshold)) {
                Some(v) => Outcome::Unhealthy(format!(
                    "Failure: in alarm: {query} = {v} {} {threshold}",
                    operator.symbol()
                )),
                None => Outcome::Healthy(format!(
                    "Success: OK: {query} = {} (alarm when {} {threshold})",
                    values[0],
                    operator.symbol()
                )),
            }
        }
    }
}

/// The sample values of a Prometheus instant-query response (vector or scalar).
pub fn vector_values(body: &[u8]) -> Result<Vec<f64>, String> {
    // Reasons are fixed texts: nothing of the remote body is reflected.
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| "metrics API response is not JSON".to_string())?;
    if v["status"] != "success" {
        return Err("metrics API answered with an error status".into());
    }
    let sample = |pair: &serde_json::Value| -> Result<f64, String> {
        pair.get(1)
            .and_then(|s| s.as_str())
            .and_then(|s| s.parse::<f64>().ok())
            .ok_or_else(|| "metrics API sample is not [time, \"value\"]".to_string())
    };
    let data = &v["data"];
    match data["resultType"].as_str() {
        Some("vector") => data["result"]
            .as_array()
            .ok_or("metrics API vector without a result list")?
            .iter()
            .map(|series| sample(&series["value"]))
            .collect(),
        Some("scalar") => Ok(vec![sample(&data["result"])?]),
        _ => Err("metrics API result type is not vector or scalar".into()),
    }
}

/// GETs `path` from `addr` over plain HTTP and returns the body of a 2xx response (used by
/// `dns-user health status`).
pub async fn http_get(addr: SocketAddr, path: &str, limit: Duration) -> Result<Vec<u8>, String> {
    let endpoint = Endpoint {
        ip: Some(addr.ip()),
        fqdn: None,
        port: addr.port(),
    };
    let host = addr.to_string();
    let fetched = fetch(
        None,
        (&endpoint, None),
        &host,
        path,
        BodyRead::Whole(MAX_API_RESPONSE),
        limit,
        limit,
        limit,
    )
    .await?;
    if !fetched.status.is_success() {
        return Err(status_text(fetched.status));
    }
    Ok(fetched.body)
}

/// Health checks do not validate certificates (Route 53 does not either); signatures over the
/// handshake are still checked, so the connection is a real TLS session.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::spec::Comparison;

    #[test]
    fn prometheus_responses() {
        let vector = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"job":"a"},"value":[1700000000.1,"3"]},
            {"metric":{"job":"b"},"value":[1700000000.1,"7.5"]}]}}"#;
        assert_eq!(vector_values(vector).unwrap(), vec![3.0, 7.5]);
        let scalar = br#"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}"#;
        assert_eq!(vector_values(scalar).unwrap(), vec![2.0]);
        let error = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        let reason = vector_values(error).unwrap_err();
        assert!(
            reason.contains("error status") && !reason.contains("parse error"),
            "{reason}"
        );
        assert!(vector_values(b"<html>").is_err());
    }

    #[test]
    fn alarm_rules() {
        let q = MetricSource::Query {
            query: "errors".into(),
            operator: Comparison::GreaterThan,
            threshold: 5.0,
        };
        assert!(matches!(judge(&q, &[1.0, 2.0]), Outcome::Healthy(_)));
        assert!(
            matches!(judge(&q, &[1.0, 6.0]), Outcome::Unhealthy(_)),
            "any series in alarm"
        );
        assert!(
            matches!(judge(&q, &[5.0]), Outcome::Healthy(_)),
            "> is strict"
        );
        assert!(matches!(judge(&q, &[]), Outcome::NoData(_)));
        assert!(matches!(judge(&q, &[f64::NAN]), Outcome::NoData(_)));
        let a = MetricSource::Alert {
            name: "Down".into(),
        };
        assert!(matches!(judge(&a, &[]), Outcome::Healthy(_)));
        assert!(matches!(judge(&a, &[1.0]), Outcome::Unhealthy(_)));
    }
}
