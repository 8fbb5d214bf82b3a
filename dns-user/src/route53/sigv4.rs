//! AWS Signature Version 4, as botocore and the Go SDK sign Route 53 requests (service
//! `route53`, any region): [`sign`] for the CLI, [`verify`] for the server.
//!
//! The canonical request is the method; the path URI-encoded once more (the non-S3 rule: `%`
//! becomes `%25`); the query's pairs decoded, encoded strictly and sorted; the signed headers
//! as `name:value` with spaces collapsed; the signed-header list; the hex SHA-256 of the body.
//! The key is the HMAC chain `"AWS4" + secret` → date → region → service → `aws4_request`;
//! signatures are compared in constant time (`ring::hmac::verify`).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use ring::{digest, hmac};

/// The signing name of Route 53.
pub const SERVICE: &str = "route53";
/// How far a request's `X-Amz-Date` may be from the server's clock (AWS: 15 minutes).
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Why a request's signature was not accepted (each is a 403).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("{0}")]
    Incomplete(String),
    #[error("the access key id {0} is not known to this server")]
    UnknownKey(String),
    #[error("the request was signed at {0}, more than 15 minutes from this server's clock")]
    Expired(String),
    #[error(
        "the request signature we calculated does not match the signature you provided; check your secret access key and signing method"
    )]
    Mismatch,
}

impl AuthError {
    /// AWS's error code for it.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Incomplete(_) => "IncompleteSignature",
            AuthError::UnknownKey(_) => "InvalidClientTokenId",
            AuthError::Expired(_) | AuthError::Mismatch => "SignatureDoesNotMatch",
        }
    }
}

/// A key pair.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// Access key id → secret: the keys a server accepts.
pub type Keys = HashMap<String, String>;

/// `X-Amz-Date`'s format of `at`: `20261202T181340Z`.
pub fn amz_date(at: SystemTime) -> String {
    let text = humantime::format_rfc3339_seconds(at).to_string();
    // 2026-12-02T18:13:40Z -> 20261202T181340Z
    text.chars().filter(|c| *c != '-' && *c != ':').collect()
}

fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &text[0..4],
        &text[4..6],
        &text[6..8],
        &text[9..11],
        &text[11..13],
        &text[13..15]
    );
    humantime::parse_rfc3339(&rfc3339).ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

/// Percent-encodes every byte but the unreserved ones (and `/` when `keep_slash`).
fn encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (encode(&decode(k), false), encode(&decode(v), false))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The canonical request's text (see the module docs).
fn canonical_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    signed: &[String],
    payload_hash: &str,
) -> String {
    let path = if uri.path().is_empty() {
        "/"
    } else {
        uri.path()
    };
    let mut lines = vec![
        method.as_str().to_string(),
        encode(path, true),
        canonical_query(uri.query().unwrap_or("")),
    ];
    for name in signed {
        let values: Vec<String> = headers
            .get_all(name.as_str())
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        lines.push(format!("{name}:{}", values.join(",")));
    }
    lines.push(String::new());
    lines.push(signed.join(";"));
    lines.push(payload_hash.to_string());
    lines.join("\n")
}

fn signing_key(secret: &str, date: &str, region: &str) -> hmac::Key {
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in [date, region, SERVICE, "aws4_request"] {
        let k = hmac::Key::new(hmac::HMAC_SHA256, &key);
        key = hmac::sign(&k, part.as_bytes()).as_ref().to_vec();
    }
    hmac::Key::new(hmac::HMAC_SHA256, &key)
}

fn string_to_sign(amz_date: &str, scope: &str, canonical: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    )
}

/// Signs a request as botocore does: adds `X-Amz-Date` and `Authorization` to `headers`
/// (which must hold `Host`), signing every header it holds.
pub fn sign(
    method: &Method,
    uri: &Uri,
    headers: &mut HeaderMap,
    body: &[u8],
    credentials: &Credentials,
    region: &str,
    now: SystemTime,
) {
    let date_time = amz_date(now);
    headers.insert(
        "x-amz-date",
        HeaderValue::from_str(&date_time).expect("ASCII"),
    );
    let mut signed: Vec<String> = headers.keys().map(|k| k.as_str().to_string()).collect();
    signed.sort();
    signed.dedup();
    let canonical = canonical_request(method, uri, headers, &signed, &sha256_hex(body));
    let scope = format!("{}/{region}/{SERVICE}/aws4_request", &date_time[..8]);
    let key = signing_key(&credentials.secret_access_key, &date_time[..8], region);
    let signature = hmac::sign(
        &key,
        string_to_sign(&date_time, &scope, &canonical).as_bytes(),
    );
    let authorization = format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={}",
        credentials.access_key_id,
        signed.join(";"),
        hex(signature.as_ref())
    );
    headers.insert(
        axum::http::header::AUTHORIZATION,
        HeaderValue::from_str(&authorization).expect("ASCII"),
    );
}

/// Checks a request's SigV4 signature against `keys`; the access key id it was signed with.
pub fn verify(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    keys: &Keys,
    now: SystemTime,
) -> Result<String, AuthError> {
    let incomplete = |m: &str| AuthError::Incomplete(m.to_string());
    let authorization = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| incomplete("the request is not signed: an AWS Signature Version 4 Authorization header is required"))?;
    let fields = authorization
        .strip_prefix(ALGORITHM)
        .ok_or_else(|| incomplete("only AWS4-HMAC-SHA256 signatures are accepted"))?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for field in fields.split(',') {
        match field.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed_headers = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => {}
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(incomplete(
            "the Authorization header needs Credential, SignedHeaders and Signature",
        ));
    };
    let parts: Vec<&str> = credential.split('/').collect();
    let [key_id, date, region, service, terminator] = parts[..] else {
        return Err(incomplete(
            "Credential must be KEY/yyyymmdd/region/route53/aws4_request",
        ));
    };
    if service != SERVICE || terminator != "aws4_request" {
        return Err(incomplete(
            "Credential must be KEY/yyyymmdd/region/route53/aws4_request",
        ));
    }
    let secret = keys
        .get(key_id)
        .ok_or_else(|| AuthError::UnknownKey(key_id.to_string()))?;
    let date_time = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| incomplete("the X-Amz-Date header is required"))?;
    let signed_at = parse_amz_date(date_time)
        .ok_or_else(|| incomplete("X-Amz-Date must be yyyymmddThhmmssZ"))?;
    if !date_time.starts_with(date) || date.len() != 8 {
        return Err(incomplete("the Credential's date is not X-Amz-Date's"));
    }
    let skew = now
        .duration_since(signed_at)
        .unwrap_or_else(|e| e.duration());
    if skew > MAX_SKEW {
        return Err(AuthError::Expired(date_time.to_string()));
    }
    let signed: Vec<String> = signed_headers
        .split(';')
        .map(|h| h.to_ascii_lowercase())
        .collect();
    if !signed.iter().any(|h| h == "host") || !signed.iter().any(|h| h == "x-amz-date") {
        return Err(incomplete("SignedHeaders must include host and x-amz-date"));
    }
    let canonical = canonical_request(method, uri, headers, &signed, &sha256_hex(body));
    let scope = format!("{date}/{region}/{SERVICE}/aws4_request");
    let key = signing_key(secret, date, region);
    let given = unhex(signature).ok_or(AuthError::Mismatch)?;
    hmac::verify(
        &key,
        string_to_sign(date_time, &scope, &canonical).as_bytes(),
        &given,
    )
    .map_err(|_| AuthError::Mismatch)?;
    Ok(key_id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's published example (Signature Version 4 test suite, `get-vanilla`, with the
    /// service renamed): the same key, date and request give the same signature.
    #[test]
    fn the_signing_key_and_signature_match_aws_examples() {
        // From "Examples of how to derive a signing key for Signature Version 4" (AWS docs):
        // secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20120215, us-east-1, iam.
        let mut key = b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_vec();
        for part in ["20120215", "us-east-1", "iam", "aws4_request"] {
            let k = hmac::Key::new(hmac::HMAC_SHA256, &key);
            key = hmac::sign(&k, part.as_bytes()).as_ref().to_vec();
        }
        assert_eq!(
            hex(&key),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    fn request() -> (Method, Uri, HeaderMap, Vec<u8>) {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("127.0.0.1:8053"));
        (
            Method::GET,
            "/2013-04-01/hostedzone/Z1/rrset?name=%2A.example.com.&maxitems=10"
                .parse()
                .unwrap(),
            headers,
            b"<x/>".to_vec(),
        )
    }

    #[test]
    fn what_sign_signs_verify_accepts_and_any_change_is_refused() {
        let creds = Credentials {
            access_key_id: "AKID".into(),
            secret_access_key: "secret".into(),
        };
        let keys: Keys = [("AKID".to_string(), "secret".to_string())].into();
        let now = SystemTime::now();
        let (method, uri, mut headers, body) = request();
        sign(&method, &uri, &mut headers, &body, &creds, "eu-west-1", now);
        assert_eq!(
            verify(&method, &uri, &headers, &body, &keys, now),
            Ok("AKID".into())
        );
        // Another body, path, method, key, or a stale date: refused.
        assert_eq!(
            verify(&method, &uri, &headers, b"<y/>", &keys, now),
            Err(AuthError::Mismatch)
        );
        let other: Uri = "/2013-04-01/hostedzone/Z2/rrset?name=%2A.example.com.&maxitems=10"
            .parse()
            .unwrap();
        assert_eq!(
            verify(&method, &other, &headers, &body, &keys, now),
            Err(AuthError::Mismatch)
        );
        assert_eq!(
            verify(&Method::DELETE, &uri, &headers, &body, &keys, now),
            Err(AuthError::Mismatch)
        );
        let wrong: Keys = [("AKID".to_string(), "other".to_string())].into();
        assert_eq!(
            verify(&method, &uri, &headers, &body, &wrong, now),
            Err(AuthError::Mismatch)
        );
        let unknown: Keys = [("OTHER".to_string(), "secret".to_string())].into();
        assert!(matches!(
            verify(&method, &uri, &headers, &body, &unknown, now),
            Err(AuthError::UnknownKey(_))
        ));
        assert!(matches!(
            verify(
                &method,
                &uri,
                &headers,
                &body,
                &keys,
                now + Duration::from_secs(16 * 60)
            ),
            Err(AuthError::Expired(_))
        ));
        let (method, uri, headers, body) = request();
        assert!(matches!(
            verify(&method, &uri, &headers, &body, &keys, now),
            Err(AuthError::Incomplete(_))
        ));
    }

    #[test]
    fn queries_are_sorted_and_strictly_encoded() {
        assert_eq!(
            canonical_query("type=A&name=*.example.com.&maxitems=1"),
            "maxitems=1&name=%2A.example.com.&type=A"
        );
        assert_eq!(canonical_query(""), "");
        assert_eq!(
            encode("/2013-04-01/tags/hostedzone/%2Fhz", true),
            "/2013-04-01/tags/hostedzone/%252Fhz"
        );
    }
}
