//! The CLI's side of the control API: `dns-user zone|change|health|test-answer` speak Route
//! 53's REST-XML protocol to the running server (reqwest, typed with [`crate::route53::shapes`],
//! signed with SigV4 when credentials are given) and print readable tables, or the response as
//! JSON with `--json`.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::route53::shapes::{self as wire, Xmlns};
use crate::route53::sigv4::{self, Credentials};
use crate::route53::{bare_id, plain_name};

/// Where the API is and how to sign requests.
#[derive(Args, Debug, Clone)]
pub struct ApiArgs {
    /// The server's control API.
    #[arg(
        long = "api-url",
        value_name = "URL",
        default_value = "http://127.0.0.1:8053",
        global = true
    )]
    pub url: String,
    /// Access key id to sign requests with (SigV4); needed when the server has access keys.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", global = true)]
    pub access_key_id: Option<String>,
    /// Its secret.
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        hide_env_values = true,
        global = true
    )]
    pub secret_access_key: Option<String>,
    /// Region named in the signature's scope (any; the server reads it from the request).
    #[arg(
        long,
        env = "AWS_DEFAULT_REGION",
        default_value = "us-east-1",
        global = true
    )]
    pub region: String,
    /// Print the response as JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum ZoneCommand {
    /// Hosted zones.
    List,
    /// One hosted zone.
    Get { zone: String },
    /// Create a hosted zone (with a default SOA and NS).
    Create {
        name: String,
        /// Unique per request (default: a timestamp).
        #[arg(long)]
        caller_reference: Option<String>,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Delete a hosted zone that only has its SOA and NS left.
    Delete { zone: String },
    /// List a zone's record sets (every page, or one with --max-items).
    Records {
        zone: String,
        /// Start at this name (and --type, --identifier).
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "type")]
        rtype: Option<String>,
        #[arg(long)]
        identifier: Option<String>,
        /// One page of at most this many.
        #[arg(long)]
        max_items: Option<usize>,
    },
}

#[derive(Subcommand, Debug)]
pub enum DnssecCommand {
    /// Whether the zone is signed, and its key-signing keys with the DS record to give the
    /// parent zone (Route 53's GetDNSSEC).
    Get { zone: String },
    /// Sign the zone (it needs an active key-signing key).
    Enable { zone: String },
    /// Stop signing the zone (its keys stay).
    Disable { zone: String },
    /// Create a key-signing key; the server makes and keeps the private key.
    CreateKsk {
        zone: String,
        /// 3..128 characters of A-Z, a-z, 0-9 and _.
        name: String,
        /// Route 53's KeyManagementServiceArn, kept as the key's label (default: one naming
        /// the key).
        #[arg(long)]
        kms_arn: Option<String>,
        /// ACTIVE or INACTIVE.
        #[arg(long, default_value = "ACTIVE")]
        status: String,
        /// Unique per request (default: a timestamp).
        #[arg(long)]
        caller_reference: Option<String>,
    },
    /// Let a key-signing key sign the DNSKEY RRset.
    ActivateKsk { zone: String, name: String },
    /// Stop a key-signing key signing (not the last active one of a signed zone).
    DeactivateKsk { zone: String, name: String },
    /// Delete an inactive key-signing key.
    DeleteKsk { zone: String, name: String },
}

#[derive(Subcommand, Debug)]
pub enum ChangeCommand {
    /// Apply a change batch: Route 53's JSON, `{"Changes": [...]}` or
    /// `{"HostedZoneId": .., "ChangeBatch": {...}}`.
    Apply {
        file: std::path::PathBuf,
        /// Hosted zone id or name (default: the file's HostedZoneId, else the hosted zone that
        /// holds the first change's name).
        #[arg(long)]
        zone: Option<String>,
        /// Wait until the change is INSYNC (both answer paths serve it).
        #[arg(long)]
        wait: bool,
    },
    /// A change's status.
    Get { id: String },
}

#[derive(Subcommand, Debug)]
pub enum CheckCommand {
    /// Health checks.
    List,
    /// One health check's definition.
    Get { id: String },
    /// Create a health check from a HealthCheckConfig JSON file.
    Create {
        file: std::path::PathBuf,
        #[arg(long)]
        caller_reference: Option<String>,
    },
    /// Update a health check: a JSON object of the fields to change (null removes one).
    Update {
        id: String,
        file: std::path::PathBuf,
    },
    /// Delete a health check nothing uses.
    Delete { id: String },
    /// Status, last failure and recent observations: of one check, or of all.
    Status {
        id: Option<String>,
        /// Observations shown per check.
        #[arg(long, default_value_t = 5)]
        observations: usize,
    },
}

/// A refusal from the API, or a transport failure.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{code} ({status}): {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("calling {url}: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url}: the server's reply is not what Route 53 sends: {problem}")]
    Reply { url: String, problem: String },
}

/// A client of one server's API.
pub struct Client {
    base: String,
    credentials: Option<Credentials>,
    region: String,
    http: reqwest::Client,
}

impl Client {
    pub fn new(args: &ApiArgs) -> anyhow::Result<Client> {
        let credentials = match (&args.access_key_id, &args.secret_access_key) {
            (Some(id), Some(secret)) => Some(Credentials {
                access_key_id: id.clone(),
                secret_access_key: secret.clone(),
            }),
            (None, None) => None,
            _ => anyhow::bail!("give both an access key id and its secret, or neither"),
        };
        Ok(Client {
            base: args.url.trim_end_matches('/').to_string(),
            credentials,
            region: args.region.clone(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
        })
    }

    /// Sends a request for `path` (under the API root), signed when the client has
    /// credentials: the status and body of the reply.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<(reqwest::StatusCode, bytes::Bytes), ClientError> {
        let url = format!("{}{path}", self.base);
        let http = |source| ClientError::Http {
            url: url.clone(),
            source,
        };
        let reply = |problem: String| ClientError::Reply {
            url: url.clone(),
            problem: crate::text::escape(&problem).into_owned(),
        };
        let body = body.unwrap_or_default();
        let mut request = self
            .http
            .request(method.clone(), &url)
            .body(body.clone())
            .build()
            .map_err(http)?;
        if !body.is_empty() {
            request.headers_mut().insert(
                reqwest::header::CONTENT_TYPE,
                reqwest::header::HeaderValue::from_static("text/xml"),
            );
        }
        if let Some(credentials) = &self.credentials {
            let host = request
                .url()
                .host_str()
                .map(|h| match request.url().port() {
                    Some(p) => format!("{h}:{p}"),
                    None => h.to_string(),
                })
                .unwrap_or_default();
            let url = request.url();
            let uri: axum::http::Uri = match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_string(),
            }
            .parse()
            .map_err(|_| reply(format!("bad path {}", url.path())))?;
            let headers = request.headers_mut();
            headers.insert(
                reqwest::header::HOST,
                host.parse()
                    .map_err(|_| reply(format!("bad host {host}")))?,
            );
            sigv4::sign(
                &method,
                &uri,
                headers,
                body.as_bytes(),
                credentials,
                &self.region,
                SystemTime::now(),
            );
        }
        let response = self.http.execute(request).await.map_err(http)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(http)?;
        Ok((status, bytes))
    }

    /// Calls `path` (under the API root) with an optional XML body and reads the reply of a
    /// success as `T`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let reply = |problem: String| ClientError::Reply {
            url: url.clone(),
            problem: crate::text::escape(&problem).into_owned(),
        };
        let (status, bytes) = self.send(method, path, body).await?;
        if status.is_success() {
            return wire::from_xml(&bytes).map_err(reply);
        }
        let error: wire::ErrorResponse = wire::from_xml(&bytes).map_err(|e| {
            reply(format!(
                "{status}: {e}: {}",
                String::from_utf8_lossy(&bytes)
            ))
        })?;
        let mut message = error.error.message;
        for m in error.error.messages.iter().flat_map(|m| &m.items) {
            message.push_str("\n  ");
            message.push_str(m);
        }
        // Printed to the operator's terminal: nothing in it may be a control sequence.
        Err(ClientError::Api {
            status: status.as_u16(),
            code: crate::text::escape(&error.error.code).into_owned(),
            message: crate::text::escape(&message).into_owned(),
        })
    }

    /// Every health check's state and recent probes (the server's `/health-checks`, JSON).
    async fn status_list(&self) -> anyhow::Result<Vec<crate::health::monitor::CheckStatus>> {
        let (status, bytes) = self.send(Method::GET, "/health-checks", None).await?;
        if !status.is_success() {
            let error: wire::ErrorResponse = wire::from_xml(&bytes)
                .map_err(|e| anyhow::anyhow!("/health-checks: {status}: {e}"))?;
            anyhow::bail!(
                "{} ({status}): {}",
                crate::text::escape(&error.error.code),
                crate::text::escape(&error.error.message)
            );
        }
        serde_json::from_slice(&bytes).context("the server's /health-checks is not a status list")
    }

    /// Every hosted zone (all pages).
    async fn zones(&self) -> Result<Vec<wire::HostedZone>, ClientError> {
        let mut zones = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let path = match &marker {
                None => "/2013-04-01/hostedzone".to_string(),
                Some(m) => format!("/2013-04-01/hostedzone?marker={}", encode(m)),
            };
            let page: wire::ListHostedZonesResponse = self.call(Method::GET, &path, None).await?;
            zones.extend(page.hosted_zones.items);
            match page.next_marker.filter(|_| page.is_truncated) {
                Some(next) => marker = Some(next),
                None => return Ok(zones),
            }
        }
    }

    /// A zone's id from its id or its name.
    async fn zone_id(&self, zone: &str) -> Result<String, anyhow::Error> {
        if !zone.contains('.') {
            return Ok(bare_id(zone).to_string());
        }
        let name = crate::zone::absolute_lower(zone);
        self.zones()
            .await?
            .into_iter()
            .find(|z| crate::zone::absolute_lower(&plain_name(&z.name)) == name)
            .map(|z| bare_id(&z.id).to_string())
            .with_context(|| format!("no hosted zone named {name}"))
    }

    /// The id of the hosted zone that holds `name` (the longest matching origin).
    async fn zone_holding(&self, name: &str) -> anyhow::Result<String> {
        let name = crate::zone::absolute_lower(&plain_name(name));
        self.zones()
            .await?
            .into_iter()
            .map(|z| (crate::zone::absolute_lower(&plain_name(&z.name)), z.id))
            .filter(|(origin, _)| name == *origin || name.ends_with(&format!(".{origin}")))
            .max_by_key(|(origin, _)| origin.len())
            .map(|(_, id)| bare_id(&id).to_string())
            .with_context(|| format!("no hosted zone holds {name}; name one with --zone"))
    }
}

fn caller_reference(given: Option<String>) -> String {
    given.unwrap_or_else(|| format!("cli-{}", crate::control::store::new_id("")))
}

fn read_json<T: DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not the expected JSON", path.display()))
}

/// Prints rows as aligned columns under `header`, control characters escaped.
fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(crate::text::escape(cell).chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let out: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{:<w$}", crate::text::escape(c)))
            .collect();
        println!("{}", out.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row);
    }
}

/// A value for display, control characters escaped; `-` for none.
fn s(v: Option<&str>) -> String {
    v.map_or("-".into(), |v| crate::text::escape(v).into_owned())
}

/// Prints `reply` as JSON with `--json`, else as `render` lays it out.
fn show<T: Serialize>(args: &ApiArgs, reply: &T, render: impl FnOnce(&T)) {
    if args.json {
        print_json(reply);
    } else {
        render(reply);
    }
}

fn print_json<T: Serialize>(reply: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(&wire::to_json(reply)).expect("JSON serializes")
    );
}

const ZONE_HEADER: [&str; 4] = ["ID", "NAME", "RECORD SETS", "SOURCE"];

fn zone_rows(zones: &[wire::HostedZone]) -> Vec<Vec<String>> {
    zones
        .iter()
        .map(|z| {
            vec![
                s(Some(&z.id)),
                s(Some(&z.name)),
                z.resource_record_set_count.to_string(),
                z.imported_from
                    .as_deref()
                    .map_or("api".into(), |f| format!("import: {}", s(Some(f)))),
            ]
        })
        .collect()
}

const CHANGE_HEADER: [&str; 4] = ["ID", "STATUS", "SUBMITTED", "COMMENT"];

fn change_rows(change: &wire::ChangeInfo) -> Vec<Vec<String>> {
    vec![vec![
        s(Some(&change.id)),
        s(Some(&change.status)),
        s(Some(&change.submitted_at)),
        s(change.comment.as_deref()),
    ]]
}

/// A record set's routing in a few words.
fn routing(set: &wire::ResourceRecordSet) -> String {
    let mut parts = Vec::new();
    if let Some(w) = set.weight {
        parts.push(format!("weight {w}"));
    }
    if let Some(f) = &set.failover {
        parts.push(f.to_lowercase());
    }
    if let Some(r) = &set.region {
        parts.push(format!("latency {r}"));
    }
    if let Some(g) = &set.geo_location {
        parts.push(format!("geo {}", compact(g)));
    }
    if let Some(g) = &set.geo_proximity_location {
        parts.push(format!("geoproximity {}", compact(g)));
    }
    if set.multi_value_answer == Some(true) {
        parts.push("multivalue".into());
    }
    if let Some(c) = &set.cidr_routing_config {
        parts.push(format!("cidr {}", compact(c)));
    }
    if let Some(h) = &set.health_check_id {
        parts.push(format!("check {h}"));
    }
    if parts.is_empty() {
        "simple".into()
    } else {
        crate::text::escape(&parts.join(", ")).into_owned()
    }
}

/// Compact JSON of a routing member, for the ROUTING column.
fn compact<T: Serialize>(member: &T) -> String {
    serde_json::to_string(member).expect("serializes")
}

fn set_rows(sets: &[wire::ResourceRecordSet]) -> Vec<Vec<String>> {
    sets.iter()
        .map(|r| {
            let data = match &r.alias_target {
                Some(a) => format!(
                    "ALIAS {}{}",
                    s(Some(&a.dns_name)),
                    if a.evaluate_target_health {
                        " (evaluate health)"
                    } else {
                        ""
                    }
                ),
                None => r
                    .resource_records
                    .iter()
                    .flat_map(|v| &v.items)
                    .map(|v| s(Some(&v.value)))
                    .collect::<Vec<_>>()
                    .join(" | "),
            };
            vec![
                s(Some(&r.name)),
                s(Some(&r.rtype)),
                r.ttl.map_or("-".into(), |t| t.to_string()),
                s(r.set_identifier.as_deref()),
                routing(r),
                data,
            ]
        })
        .collect()
}

const KSK_HEADER: [&str; 6] = [
    "NAME",
    "STATUS",
    "FLAG",
    "ALGORITHM",
    "KEY TAG",
    "DS RECORD",
];

fn ksk_rows(keys: &[wire::KeySigningKey]) -> Vec<Vec<String>> {
    keys.iter()
        .map(|k| {
            vec![
                s(Some(&k.name)),
                s(Some(&k.status)),
                k.flag.to_string(),
                s(Some(&k.signing_algorithm_mnemonic)),
                k.key_tag.to_string(),
                s(Some(&k.ds_record)),
            ]
        })
        .collect()
}

pub async fn dnssec(args: &ApiArgs, command: DnssecCommand) -> anyhow::Result<()> {
    let client = Client::new(args)?;
    let change =
        |v: &wire::DnssecChangeResponse| table(&CHANGE_HEADER, change_rows(&v.change_info));
    match command {
        DnssecCommand::Get { zone } => {
            let id = client.zone_id(&zone).await?;
            let v: wire::GetDnssecResponse = client
                .call(
                    Method::GET,
                    &format!("/2013-04-01/hostedzone/{id}/dnssec"),
                    None,
                )
                .await?;
            show(args, &v, |v| {
                println!("signing: {}", s(Some(&v.status.serve_signature)));
                if let Some(m) = &v.status.status_message {
                    println!("status: {}", s(Some(m)));
                }
                table(&KSK_HEADER, ksk_rows(&v.key_signing_keys.items));
            });
        }
        DnssecCommand::Enable { ref zone } | DnssecCommand::Disable { ref zone } => {
            let verb = if matches!(command, DnssecCommand::Enable { .. }) {
                "enable-dnssec"
            } else {
                "disable-dnssec"
            };
            let id = client.zone_id(zone).await?;
            let v: wire::DnssecChangeResponse = client
                .call(
                    Method::POST,
                    &format!("/2013-04-01/hostedzone/{id}/{verb}"),
                    None,
                )
                .await?;
            show(args, &v, change);
        }
        DnssecCommand::CreateKsk {
            zone,
            name,
            kms_arn,
            status,
            caller_reference: reference,
        } => {
            let id = client.zone_id(&zone).await?;
            let body = wire::CreateKeySigningKeyRequest {
                xmlns: Xmlns,
                caller_reference: caller_reference(reference),
                hosted_zone_id: id,
                key_management_service_arn: kms_arn
                    .unwrap_or_else(|| format!("arn:dns-user:local:key/{name}")),
                name,
                status,
            };
            let v: wire::CreateKeySigningKeyResponse = client
                .call(
                    Method::POST,
                    "/2013-04-01/keysigningkey",
                    Some(wire::to_xml(&body)),
                )
                .await?;
            show(args, &v, |v| {
                table(
                    &KSK_HEADER,
                    ksk_rows(std::slice::from_ref(&v.key_signing_key)),
                );
                println!();
                table(&CHANGE_HEADER, change_rows(&v.change_info));
            });
        }
        DnssecCommand::ActivateKsk { ref zone, ref name }
        | DnssecCommand::DeactivateKsk { ref zone, ref name }
        | DnssecCommand::DeleteKsk { ref zone, ref name } => {
            let id = client.zone_id(zone).await?;
            let key = format!("/2013-04-01/keysigningkey/{id}/{}", encode(name));
            let (method, path) = match command {
                DnssecCommand::ActivateKsk { .. } => (Method::POST, format!("{key}/activate")),
                DnssecCommand::DeactivateKsk { .. } => (Method::POST, format!("{key}/deactivate")),
                _ => (Method::DELETE, key),
            };
            let v: wire::DnssecChangeResponse = client.call(method, &path, None).await?;
            show(args, &v, change);
        }
    }
    Ok(())
}

pub async fn zone(args: &ApiArgs, command: ZoneCommand) -> anyhow::Result<()> {
    let client = Client::new(args)?;
    match command {
        ZoneCommand::List => {
            let zones = client.zones().await?;
            if args.json {
                print_json(&wire::ListHostedZonesResponse {
                    xmlns: Xmlns,
                    max_items: zones.len() as u32,
                    hosted_zones: zones.into(),
                    marker: None,
                    is_truncated: false,
                    next_marker: None,
                });
            } else {
                table(&ZONE_HEADER, zone_rows(&zones));
            }
        }
        ZoneCommand::Get { zone } => {
            let id = client.zone_id(&zone).await?;
            let v: wire::GetHostedZoneResponse = client
                .call(Method::GET, &format!("/2013-04-01/hostedzone/{id}"), None)
                .await?;
            show(args, &v, |v| {
                table(
                    &ZONE_HEADER,
                    zone_rows(std::slice::from_ref(&v.hosted_zone)),
                );
                println!(
                    "name servers: {}",
                    s(Some(&v.delegation_set.name_servers.items.join(" ")))
                );
            });
        }
        ZoneCommand::Create {
            name,
            caller_reference: reference,
            comment,
        } => {
            let body = wire::CreateHostedZoneRequest {
                xmlns: Xmlns,
                name,
                vpc: None,
                caller_reference: caller_reference(reference),
                hosted_zone_config: comment.map(|c| wire::HostedZoneConfig {
                    comment: Some(c),
                    private_zone: None,
                }),
                delegation_set_id: None,
            };
            let v: wire::CreateHostedZoneResponse = client
                .call(
                    Method::POST,
                    "/2013-04-01/hostedzone",
                    Some(wire::to_xml(&body)),
                )
                .await?;
            show(args, &v, |v| {
                table(
                    &ZONE_HEADER,
                    zone_rows(std::slice::from_ref(&v.hosted_zone)),
                );
                println!();
                table(&CHANGE_HEADER, change_rows(&v.change_info));
            });
        }
        ZoneCommand::Delete { zone } => {
            let id = client.zone_id(&zone).await?;
            let v: wire::DeleteHostedZoneResponse = client
                .call(
                    Method::DELETE,
                    &format!("/2013-04-01/hostedzone/{id}"),
                    None,
                )
                .await?;
            show(args, &v, |v| {
                table(&CHANGE_HEADER, change_rows(&v.change_info));
            });
        }
        ZoneCommand::Records {
            zone,
            name,
            rtype,
            identifier,
            max_items,
        } => {
            let id = client.zone_id(&zone).await?;
            let mut start = (name, rtype, identifier);
            let mut all = Vec::new();
            let last = loop {
                let mut query = Vec::new();
                if let Some(n) = &start.0 {
                    query.push(format!("name={}", encode(n)));
                }
                if let Some(t) = &start.1 {
                    query.push(format!("type={}", encode(t)));
                }
                if let Some(i) = &start.2 {
                    query.push(format!("identifier={}", encode(i)));
                }
                if let Some(m) = max_items {
                    query.push(format!("maxitems={m}"));
                }
                let path = format!("/2013-04-01/hostedzone/{id}/rrset?{}", query.join("&"));
                let page: wire::ListResourceRecordSetsResponse =
                    client.call(Method::GET, &path, None).await?;
                all.extend(page.resource_record_sets.items.iter().cloned());
                start = (
                    page.next_record_name.clone(),
                    page.next_record_type.clone(),
                    page.next_record_identifier.clone(),
                );
                if !page.is_truncated || max_items.is_some() {
                    break page;
                }
            };
            if args.json {
                match max_items {
                    Some(_) => print_json(&last),
                    None => print_json(&wire::ListResourceRecordSetsResponse {
                        xmlns: Xmlns,
                        max_items: all.len() as u32,
                        resource_record_sets: all.into(),
                        is_truncated: false,
                        next_record_name: None,
                        next_record_type: None,
                        next_record_identifier: None,
                    }),
                }
            } else {
                table(
                    &["NAME", "TYPE", "TTL", "SET ID", "ROUTING", "DATA"],
                    set_rows(&all),
                );
                if last.is_truncated {
                    println!(
                        "(more: --name {} --type {})",
                        s(last.next_record_name.as_deref()),
                        s(last.next_record_type.as_deref())
                    );
                }
            }
        }
    }
    Ok(())
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A change batch file: aws-cli's `--change-batch` JSON, or `--cli-input-json`'s with the
/// zone's id beside it.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum BatchFile {
    Input {
        #[serde(rename = "HostedZoneId")]
        hosted_zone_id: Option<String>,
        #[serde(rename = "ChangeBatch")]
        change_batch: crate::zone::records::ChangeBatch,
    },
    Batch(crate::zone::records::ChangeBatch),
}

pub async fn change(args: &ApiArgs, command: ChangeCommand) -> anyhow::Result<()> {
    let client = Client::new(args)?;
    match command {
        ChangeCommand::Apply { file, zone, wait } => {
            let (named, batch) = match read_json::<BatchFile>(&file)? {
                BatchFile::Input {
                    hosted_zone_id,
                    change_batch,
                } => (hosted_zone_id, change_batch),
                BatchFile::Batch(batch) => (None, batch),
            };
            let id = match zone.or(named) {
                Some(zone) => client.zone_id(&zone).await?,
                None => {
                    let name = batch
                        .changes
                        .first()
                        .map(|c| c.resource_record_set.name.clone())
                        .context("no --zone, and the batch has no change")?;
                    client.zone_holding(&name).await?
                }
            };
            let body = wire::ChangeResourceRecordSetsRequest {
                xmlns: Xmlns,
                change_batch: batch.into(),
            };
            let v: wire::ChangeResourceRecordSetsResponse = client
                .call(
                    Method::POST,
                    &format!("/2013-04-01/hostedzone/{id}/rrset/"),
                    Some(wire::to_xml(&body)),
                )
                .await?;
            let mut change = v.change_info;
            if wait {
                let deadline = Instant::now() + Duration::from_secs(60);
                while change.status != "INSYNC" {
                    if Instant::now() > deadline {
                        anyhow::bail!("change {} not INSYNC after 60 s", s(Some(&change.id)));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let path = format!("/2013-04-01/change/{}", bare_id(&change.id));
                    let v: wire::GetChangeResponse = client.call(Method::GET, &path, None).await?;
                    change = v.change_info;
                }
            }
            let v = wire::GetChangeResponse {
                xmlns: Xmlns,
                change_info: change,
            };
            show(args, &v, |v| {
                table(&CHANGE_HEADER, change_rows(&v.change_info));
            });
        }
        ChangeCommand::Get { id } => {
            let v: wire::GetChangeResponse = client
                .call(
                    Method::GET,
                    &format!("/2013-04-01/change/{}", bare_id(&id)),
                    None,
                )
                .await?;
            show(args, &v, |v| {
                table(&CHANGE_HEADER, change_rows(&v.change_info));
            });
        }
    }
    Ok(())
}

const CHECK_HEADER: [&str; 4] = ["ID", "TYPE", "TARGET", "VERSION"];

fn check_rows(checks: &[wire::HealthCheck]) -> Vec<Vec<String>> {
    checks
        .iter()
        .map(|c| {
            let config = &c.health_check_config;
            let target = match (&config.ip_address, &config.fully_qualified_domain_name) {
                (Some(ip), _) => format!(
                    "{}:{}",
                    s(Some(ip)),
                    config.port.map_or("-".into(), |p| p.to_string())
                ),
                (None, Some(fqdn)) => s(Some(fqdn)),
                (None, None) => config.child_health_checks.as_ref().map_or("-".into(), |c| {
                    format!("children {}", s(Some(&c.items.join(","))))
                }),
            };
            vec![
                s(Some(&c.id)),
                s(config.check_type.as_deref()),
                target,
                c.health_check_version.to_string(),
            ]
        })
        .collect()
}

pub async fn health(args: &ApiArgs, command: CheckCommand) -> anyhow::Result<()> {
    let client = Client::new(args)?;
    let one = |v: &wire::HealthCheckResponse| check_rows(std::slice::from_ref(&v.health_check));
    match command {
        CheckCommand::List => {
            let mut checks = Vec::new();
            let mut marker: Option<String> = None;
            loop {
                let path = match &marker {
                    None => "/2013-04-01/healthcheck".to_string(),
                    Some(m) => format!("/2013-04-01/healthcheck?marker={}", encode(m)),
                };
                let page: wire::ListHealthChecksResponse =
                    client.call(Method::GET, &path, None).await?;
                checks.extend(page.health_checks.items);
                match page.next_marker.filter(|_| page.is_truncated) {
                    Some(next) => marker = Some(next),
                    None => break,
                }
            }
            if args.json {
                print_json(&wire::ListHealthChecksResponse {
                    xmlns: Xmlns,
                    max_items: checks.len() as u32,
                    health_checks: checks.into(),
                    marker: None,
                    is_truncated: false,
                    next_marker: None,
                });
            } else {
                table(&CHECK_HEADER, check_rows(&checks));
            }
        }
        CheckCommand::Get { id } => {
            let v: wire::HealthCheckResponse = client
                .call(Method::GET, &format!("/2013-04-01/healthcheck/{id}"), None)
                .await?;
            show(args, &v, |v| table(&CHECK_HEADER, one(v)));
        }
        CheckCommand::Create {
            file,
            caller_reference: reference,
        } => {
            let mut config: serde_json::Value = read_json(&file)?;
            if let Some(inner) = config.get_mut("HealthCheckConfig") {
                config = inner.take();
            }
            let config: wire::HealthCheckConfig =
                wire::from_json(config).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let body = wire::CreateHealthCheckRequest {
                xmlns: Xmlns,
                caller_reference: caller_reference(reference),
                health_check_config: config,
            };
            let v: wire::HealthCheckResponse = client
                .call(
                    Method::POST,
                    "/2013-04-01/healthcheck",
                    Some(wire::to_xml(&body)),
                )
                .await?;
            show(args, &v, |v| table(&CHECK_HEADER, one(v)));
        }
        CheckCommand::Update { id, file } => {
            let update: wire::UpdateHealthCheckRequest = wire::from_json(read_json(&file)?)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let v: wire::HealthCheckResponse = client
                .call(
                    Method::POST,
                    &format!("/2013-04-01/healthcheck/{id}"),
                    Some(wire::to_xml(&update)),
                )
                .await?;
            show(args, &v, |v| table(&CHECK_HEADER, one(v)));
        }
        CheckCommand::Delete { id } => {
            let v: wire::DeleteHealthCheckResponse = client
                .call(
                    Method::DELETE,
                    &format!("/2013-04-01/healthcheck/{id}"),
                    None,
                )
                .await?;
            show(args, &v, |_| {
                println!("deleted health check {}", s(Some(&id)))
            });
        }
        CheckCommand::Status { id, observations } => {
            let checks: Vec<crate::health::monitor::CheckStatus> = client.status_list().await?;
            let mut checks = checks;
            if let Some(id) = &id {
                checks.retain(|c| &c.id == id);
                if checks.is_empty() {
                    anyhow::bail!("no health check {id} is running");
                }
            }
            if args.json {
                println!("{}", serde_json::to_string_pretty(&checks)?);
                return Ok(());
            }
            print_status(&checks, observations);
        }
    }
    Ok(())
}

/// Prints health-check statuses with their last failure and recent observations.
pub fn print_status(checks: &[crate::health::monitor::CheckStatus], observations: usize) {
    if checks.is_empty() {
        println!("no health checks");
        return;
    }
    table(
        &["ID", "TYPE", "STATUS", "SINCE", "TARGET"],
        checks
            .iter()
            .map(|c| {
                let mut status = c.status.clone();
                if c.disabled {
                    status.push_str(" [disabled]");
                }
                if c.inverted {
                    status.push_str(" [inverted]");
                }
                vec![
                    c.id.clone(),
                    c.check_type.clone(),
                    status,
                    c.since.clone().unwrap_or_else(|| "start".into()),
                    c.target.clone(),
                ]
            })
            .collect(),
    );
    let e = crate::text::escape;
    for c in checks {
        println!();
        match &c.last_failure {
            Some(f) => println!("{}: last failure {}: {}", e(&c.id), e(&f.at), e(&f.detail)),
            None => println!("{}: last failure: none", e(&c.id)),
        }
        for o in c.observations.iter().take(observations) {
            println!("  {} {}", e(&o.at), e(&o.detail));
        }
    }
}

/// `dns-user test-answer`.
#[derive(Args, Debug)]
pub struct TestAnswerArgs {
    pub name: String,
    #[arg(default_value = "A")]
    pub rtype: String,
    /// The resolver's address (default 127.0.0.1).
    #[arg(long)]
    pub resolver_ip: Option<std::net::IpAddr>,
    /// EDNS Client Subnet, ADDR/LEN.
    #[arg(long, value_name = "ADDR/LEN")]
    pub ecs: Option<ipnet::IpNet>,
    /// Hosted zone id or name the name must be in.
    #[arg(long)]
    pub zone: Option<String>,
}

pub async fn test_answer(args: &ApiArgs, t: TestAnswerArgs) -> anyhow::Result<()> {
    let client = Client::new(args)?;
    let mut query = vec![
        format!("recordname={}", encode(&t.name)),
        format!("recordtype={}", encode(&t.rtype)),
    ];
    if let Some(ip) = t.resolver_ip {
        query.push(format!("resolverip={}", encode(&ip.to_string())));
    }
    if let Some(net) = t.ecs {
        query.push(format!(
            "edns0clientsubnetip={}",
            encode(&net.addr().to_string())
        ));
        query.push(format!("edns0clientsubnetmask={}", net.prefix_len()));
    }
    if let Some(zone) = &t.zone {
        query.push(format!("hostedzoneid={}", client.zone_id(zone).await?));
    }
    let v: wire::TestDnsAnswerResponse = client
        .call(
            Method::GET,
            &format!("/2013-04-01/testdnsanswer?{}", query.join("&")),
            None,
        )
        .await?;
    show(args, &v, |v| {
        println!(
            "{} {} -> {}",
            s(Some(&v.record_name)),
            s(Some(&v.record_type)),
            s(Some(&v.response_code))
        );
        for d in &v.record_data.items {
            println!("  {}", s(Some(d)));
        }
    });
    Ok(())
}
