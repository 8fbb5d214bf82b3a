//! Calls to the daemon's control API over real HTTP (curl), from the host or from a testbed
//! namespace, in Route 53's REST-XML protocol. Bodies and replies are written and read in
//! boto3's dict shape (list wrappers as JSON arrays, numbers and booleans typed) so tests read
//! like boto3 scripts; the XML on the wire is what boto3 would send and parse.

use anyhow::Context as _;
use dns_user::route53::shapes::item_of;
use serde_json::{Map, Value};

/// Runs curl with the given arguments and returns its stdout.
pub type Curl<'a> = &'a dyn Fn(&[&str]) -> anyhow::Result<String>;

/// curl on the host.
pub fn host_curl(args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new("curl")
        .args(args)
        .output()
        .context("running curl")?;
    if !out.status.success() {
        anyhow::bail!("curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Members boto3 reads as integers.
const NUMBERS: &[&str] = &[
    "ResourceRecordSetCount",
    "HealthCheckVersion",
    "TTL",
    "Weight",
    "Port",
    "MaxItems",
    "HealthCheckCount",
    "HostedZoneCount",
    "RequestInterval",
    "FailureThreshold",
    "HealthThreshold",
    "Bias",
];

/// Members boto3 reads as booleans.
const BOOLEANS: &[&str] = &[
    "IsTruncated",
    "PrivateZone",
    "EvaluateTargetHealth",
    "MultiValueAnswer",
    "Inverted",
    "Disabled",
    "MeasureLatency",
    "EnableSNI",
];

fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

fn write_member(out: &mut String, name: &str, value: &Value) {
    match (value, item_of(name)) {
        (Value::Array(items), Some(item)) => {
            out.push_str(&format!("<{name}>"));
            for v in items {
                write_member(out, item, v);
            }
            out.push_str(&format!("</{name}>"));
        }
        (Value::Array(items), None) => {
            for v in items {
                write_member(out, name, v);
            }
        }
        (Value::Object(map), _) => {
            out.push_str(&format!("<{name}>"));
            for (k, v) in map {
                write_member(out, k, v);
            }
            out.push_str(&format!("</{name}>"));
        }
        (Value::String(s), _) => out.push_str(&format!("<{name}>{}</{name}>", escape(s))),
        (Value::Null, _) => {}
        (other, _) => out.push_str(&format!("<{name}>{other}</{name}>")),
    }
}

/// A request body in boto3's dict shape as Route 53's XML, under `root`.
pub fn to_xml(root: &str, body: &Value) -> String {
    let mut out = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><{root} xmlns="https://route53.amazonaws.com/doc/2013-04-01/">"#
    );
    if let Value::Object(map) = body {
        for (k, v) in map {
            write_member(&mut out, k, v);
        }
    }
    out.push_str(&format!("</{root}>"));
    out
}

/// An element as parsed: its name, its children, its text.
struct Element {
    name: String,
    children: Vec<Element>,
    text: String,
}

fn parse_tree(xml: &str) -> anyhow::Result<Element> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack = vec![Element {
        name: String::new(),
        children: Vec::new(),
        text: String::new(),
    }];
    loop {
        match reader.read_event()? {
            Event::Start(e) => stack.push(Element {
                name: e.local_name().as_ref().to_string(),
                children: Vec::new(),
                text: String::new(),
            }),
            Event::Empty(e) => {
                let element = Element {
                    name: e.local_name().as_ref().to_string(),
                    children: Vec::new(),
                    text: String::new(),
                };
                stack.last_mut().unwrap().children.push(element);
            }
            Event::Text(t) => {
                let text = t.into_inner();
                stack
                    .last_mut()
                    .unwrap()
                    .text
                    .push_str(&quick_xml::escape::unescape(&text)?);
            }
            Event::GeneralRef(r) => {
                let name = r.into_inner();
                let text = quick_xml::escape::unescape(&format!("&{name};"))?.into_owned();
                stack.last_mut().unwrap().text.push_str(&text);
            }
            Event::End(_) => {
                let done = stack.pop().unwrap();
                stack
                    .last_mut()
                    .context("unbalanced XML")?
                    .children
                    .push(done);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut top = stack.pop().context("no document")?;
    top.children.pop().context("no root element")
}

fn to_value(e: Element) -> Value {
    if let Some(item) = item_of(&e.name) {
        return Value::Array(
            e.children
                .into_iter()
                .filter(|c| c.name == item)
                .map(to_value)
                .collect(),
        );
    }
    if e.children.is_empty() {
        if NUMBERS.contains(&e.name.as_str())
            && let Ok(n) = e.text.parse::<i64>()
        {
            return n.into();
        }
        if BOOLEANS.contains(&e.name.as_str()) {
            return Value::Bool(e.text == "true");
        }
        return Value::String(e.text);
    }
    let mut map = Map::new();
    for c in e.children {
        let name = c.name.clone();
        map.insert(name, to_value(c));
    }
    Value::Object(map)
}

/// A reply body in boto3's dict shape (the root element dropped).
pub fn from_xml(xml: &str) -> anyhow::Result<Value> {
    let root = parse_tree(xml)?;
    let name = root.name.clone();
    Ok(match to_value(root) {
        Value::Object(map) => Value::Object(map),
        other => serde_json::json!({ name: other }),
    })
}

/// The request root Route 53 names for a POST to `url`.
fn request_root(url: &str) -> &'static str {
    let path = url.split('?').next().unwrap_or(url);
    let path = path.split("/2013-04-01").nth(1).unwrap_or(path);
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["hostedzone"] => "CreateHostedZoneRequest",
        ["hostedzone", _] => "UpdateHostedZoneCommentRequest",
        ["hostedzone", _, "rrset"] => "ChangeResourceRecordSetsRequest",
        ["healthcheck"] => "CreateHealthCheckRequest",
        ["healthcheck", _] => "UpdateHealthCheckRequest",
        ["keysigningkey"] => "CreateKeySigningKeyRequest",
        _ => "Request",
    }
}

/// An id without Route 53's `/hostedzone/`- or `/change/`-style prefix (what boto3 strips
/// before it puts an id in a path).
pub fn bare(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

/// How a call is signed.
#[derive(Clone, Copy, Debug)]
pub struct Key<'a> {
    pub id: &'a str,
    pub secret: &'a str,
}

/// `method` on `url` with an optional body (boto3's dict shape, sent as XML; a string is
/// sent as it is), signed with `key` (curl's own SigV4): HTTP status and reply in boto3's
/// shape.
pub fn call_with(
    curl: Curl<'_>,
    method: &str,
    url: &str,
    body: Option<&str>,
    key: Option<Key<'_>>,
) -> anyhow::Result<(u16, Value)> {
    let user = key.map(|k| format!("{}:{}", k.id, k.secret));
    let mut args = vec!["-s", "-m", "30", "-X", method, "-w", "\n%{http_code}"];
    if let Some(u) = &user {
        args.extend(["--aws-sigv4", "aws:amz:us-east-1:route53", "--user", u]);
    }
    // A body in JSON is converted; XML (or anything else) goes as it is.
    let xml = body.map(|b| match serde_json::from_str::<Value>(b) {
        Ok(v @ Value::Object(_)) => to_xml(request_root(url), &v),
        _ => b.to_string(),
    });
    // A large body goes through a file: the command line has a length limit.
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let mut file = None;
    let from_file;
    if let Some(b) = &xml {
        args.extend(["-H", "Content-Type: text/xml", "--data-binary"]);
        if b.len() > 64 * 1024 {
            let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path =
                std::env::temp_dir().join(format!("dnsx-body-{}-{n}.xml", std::process::id()));
            std::fs::write(&path, b).context("writing the request body")?;
            from_file = format!("@{}", path.display());
            args.push(&from_file);
            file = Some(path);
        } else {
            args.push(b);
        }
    }
    args.push(url);
    let out = curl(&args);
    if let Some(path) = file {
        let _ = std::fs::remove_file(path);
    }
    let out = out?;
    let (reply, status) = out.rsplit_once('\n').context("no status line")?;
    let status: u16 = status.trim().parse().context("status")?;
    let value = if reply.trim().is_empty() {
        Value::Null
    } else if reply.trim_start().starts_with('<') {
        from_xml(reply).with_context(|| format!("{method} {url}: not XML: {reply}"))?
    } else {
        serde_json::from_str(reply)
            .with_context(|| format!("{method} {url}: neither XML nor JSON: {reply}"))?
    };
    Ok((status, value))
}

/// [`call_with`] unsigned.
pub fn call(
    curl: Curl<'_>,
    method: &str,
    url: &str,
    body: Option<&str>,
) -> anyhow::Result<(u16, Value)> {
    call_with(curl, method, url, body, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boto3_shapes_round_trip_through_xml() {
        let body = serde_json::json!({"ChangeBatch": {"Changes": [
            {"Action": "CREATE", "ResourceRecordSet": {"Name": "a.", "Type": "A", "TTL": 60,
             "ResourceRecords": [{"Value": "192.0.2.1"}, {"Value": "192.0.2.2"}]}}]}});
        let xml = to_xml("ChangeResourceRecordSetsRequest", &body);
        assert!(xml.contains("<ResourceRecords><ResourceRecord><Value>192.0.2.1</Value></ResourceRecord><ResourceRecord>"), "{xml}");
        assert_eq!(from_xml(&xml).unwrap(), body);
        let empty = from_xml("<R><HostedZones/><IsTruncated>false</IsTruncated></R>").unwrap();
        assert_eq!(
            empty,
            serde_json::json!({"HostedZones": [], "IsTruncated": false})
        );
    }
}
