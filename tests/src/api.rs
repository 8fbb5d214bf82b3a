//! Calls to the daemon's control API over real HTTP (curl), from the host or from a
//! testbed namespace.

use anyhow::Context as _;
use serde_json::Value;

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

/// `method` on `url` with an optional raw body (and bearer token): HTTP status and JSON body.
pub fn call_with(
    curl: Curl<'_>,
    method: &str,
    url: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> anyhow::Result<(u16, Value)> {
    let auth = token.map(|t| format!("Authorization: Bearer {t}"));
    let mut args = vec!["-s", "-m", "30", "-X", method, "-w", "\n%{http_code}"];
    if let Some(a) = &auth {
        args.extend(["-H", a]);
    }
    if let Some(b) = body {
        args.extend(["-H", "Content-Type: application/json", "--data-binary", b]);
    }
    args.push(url);
    let out = curl(&args)?;
    let (json, status) = out.rsplit_once('\n').context("no status line")?;
    let status: u16 = status.trim().parse().context("status")?;
    let value = if json.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(json).with_context(|| format!("{method} {url}: not JSON: {json}"))?
    };
    Ok((status, value))
}

/// [`call_with`] without a token.
pub fn call(
    curl: Curl<'_>,
    method: &str,
    url: &str,
    body: Option<&str>,
) -> anyhow::Result<(u16, Value)> {
    call_with(curl, method, url, body, None)
}
