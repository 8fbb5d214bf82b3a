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
    // A large body goes through a file: the command line has a length limit.
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let mut file = None;
    let from_file;
    if let Some(b) = body {
        args.extend(["-H", "Content-Type: application/json", "--data-binary"]);
        if b.len() > 64 * 1024 {
            let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path =
                std::env::temp_dir().join(format!("dnsx-body-{}-{n}.json", std::process::id()));
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
