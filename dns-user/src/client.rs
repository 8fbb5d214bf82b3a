//! The CLI's side of the control API: `dns-user zone|change|health|test-answer` call the
//! running server over HTTP (reqwest) and print readable tables, or the JSON with `--json`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

/// Where the API is and how to authenticate.
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
    /// Bearer token (or the DNS_USER_API_TOKEN environment variable).
    #[arg(
        long,
        env = "DNS_USER_API_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub token: Option<String>,
    /// Print the API's JSON instead of a table.
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
}

/// A client of one server's API.
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    pub fn new(args: &ApiArgs) -> anyhow::Result<Client> {
        Ok(Client {
            base: args.url.trim_end_matches('/').to_string(),
            token: args.token.clone(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
        })
    }

    /// Calls `path` (under the API root) and returns the JSON body of a success.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let http = |source| ClientError::Http {
            url: url.clone(),
            source,
        };
        let mut request = self.http.request(method, &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(http)?;
        let status = response.status();
        let value: Value = response.json().await.map_err(http)?;
        if status.is_success() {
            return Ok(value);
        }
        let error = &value["Error"];
        let mut message = error["Message"].as_str().unwrap_or("").to_string();
        if message.is_empty() {
            message = value.to_string();
        }
        // Printed to the operator's terminal: nothing in it may be a control sequence.
        Err(ClientError::Api {
            status: status.as_u16(),
            code: crate::text::escape(error["Code"].as_str().unwrap_or("Error")).into_owned(),
            message: crate::text::escape(&message).into_owned(),
        })
    }

    /// A zone's id from its id or its name.
    async fn zone_id(&self, zone: &str) -> Result<String, anyhow::Error> {
        if !zone.contains('.') {
            return Ok(zone.to_string());
        }
        let name = crate::zone::absolute_lower(zone);
        let zones = self
            .call(Method::GET, "/2013-04-01/hostedzone", None)
            .await?;
        zones["HostedZones"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|z| z["Name"].as_str() == Some(name.as_str()))
            .and_then(|z| z["Id"].as_str().map(String::from))
            .with_context(|| format!("no hosted zone named {name}"))
    }
}

impl Client {
    /// The id of the hosted zone that holds `name` (the longest matching origin).
    async fn zone_holding(&self, name: &str) -> anyhow::Result<String> {
        let name = crate::zone::absolute_lower(name);
        let zones = self
            .call(Method::GET, "/2013-04-01/hostedzone", None)
            .await?;
        zones["HostedZones"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|z| Some((z["Name"].as_str()?, z["Id"].as_str()?)))
            .filter(|(origin, _)| name == *origin || name.ends_with(&format!(".{origin}")))
            .max_by_key(|(origin, _)| origin.len())
            .map(|(_, id)| id.to_string())
            .with_context(|| format!("no hosted zone holds {name}; name one with --zone"))
    }
}

fn caller_reference(given: Option<String>) -> String {
    given.unwrap_or_else(|| format!("cli-{}", crate::control::store::new_id("")))
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))
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

/// A value for display, control characters escaped.
fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => crate::text::escape(s).into_owned(),
        other => other.to_string(),
    }
}

/// Prints `v` as the API sent it with `--json`, else as `render` lays it out.
/// GETs a list at `path` and prints its `key` array as a table (or the reply as JSON).
async fn list(
    args: &ApiArgs,
    client: &Client,
    path: &str,
    key: &str,
    header: &[&str],
    rows: fn(&[Value]) -> Vec<Vec<String>>,
) -> anyhow::Result<()> {
    let v = client.call(Method::GET, path, None).await?;
    show(args, &v, |v| {
        let items = v[key].as_array().cloned().unwrap_or_default();
        table(header, rows(&items));
    });
    Ok(())
}

fn show(args: &ApiArgs, v: &Value, render: impl FnOnce(&Value)) {
    if args.json {
        print_json(v);
    } else {
        render(v);
    }
}

fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("JSON serializes")
    );
}

fn zone_rows(zones: &[Value]) -> Vec<Vec<String>> {
    zones
        .iter()
        .map(|z| {
            vec![
                s(&z["Id"]),
                s(&z["Name"]),
                s(&z["ResourceRecordSetCount"]),
                z["ImportedFrom"]
                    .as_str()
                    .map_or("api".into(), |f| format!("import: {f}")),
            ]
        })
        .collect()
}

fn change_rows(change: &Value) -> Vec<Vec<String>> {
    vec![vec![
        s(&change["Id"]),
        s(&change["Status"]),
        s(&change["SubmittedAt"]),
        s(&change["Comment"]),
    ]]
}

const CHANGE_HEADER: [&str; 4] = ["ID", "STATUS", "SUBMITTED", "COMMENT"];

/// A record set's routing in a few words.
fn routing(set: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(w) = set.get("Weight") {
        parts.push(format!("weight {w}"));
    }
    if let Some(f) = set["Failover"].as_str() {
        parts.push(f.to_lowercase());
    }
    if let Some(r) = set["Region"].as_str() {
        parts.push(format!("latency {r}"));
    }
    if let Some(g) = set.get("GeoLocation") {
        parts.push(format!("geo {}", g));
    }
    if let Some(g) = set.get("GeoProximityLocation") {
        parts.push(format!("geoproximity {}", g));
    }
    if set["MultiValueAnswer"].as_bool() == Some(true) {
        parts.push("multivalue".into());
    }
    if let Some(c) = set.get("CidrRoutingConfig") {
        parts.push(format!("cidr {}", c));
    }
    if let Some(h) = set["HealthCheckId"].as_str() {
        parts.push(format!("check {h}"));
    }
    if parts.is_empty() {
        "simple".into()
    } else {
        parts.join(", ")
    }
}

fn set_rows(sets: &[Value]) -> Vec<Vec<String>> {
    sets.iter()
        .map(|r| {
            let data = match r.get("AliasTarget") {
                Some(a) => format!(
                    "ALIAS {}{}",
                    s(&a["DNSName"]),
                    if a["EvaluateTargetHealth"].as_bool() == Some(true) {
                        " (evaluate health)"
                    } else {
                        ""
                    }
                ),
                None => r["ResourceRecords"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| s(&v["Value"]))
                    .collect::<Vec<_>>()
                    .join(" | "),
            };
            vec![
                s(&r["Name"]),
                s(&r["Type"]),
                r.get("TTL").map_or("-".into(), s),
                r.get("SetIdentifier").map_or("-".into(), s),
                routing(r),
                data,
            ]
        })
        .collect()
}

pub async fn zone(args: &ApiArgs, command: ZoneCommand) -> anyhow::Result<()> {
    let client = Client::new(args)?;
    let zones_header = ["ID", "NAME", "RECORD SETS", "SOURCE"];
    match command {
        ZoneCommand::List => {
            let path = "/2013-04-01/hostedzone";
            list(args, &client, path, "HostedZones", &zones_header, zone_rows).await?;
        }
        ZoneCommand::Get { zone } => {
            let id = client.zone_id(&zone).await?;
            let v = client
                .call(Method::GET, &format!("/2013-04-01/hostedzone/{id}"), None)
                .await?;
            show(args, &v, |v| {
                table(&zones_header, zone_rows(&[v["HostedZone"].clone()]));
            });
        }
        ZoneCommand::Create {
            name,
            caller_reference: reference,
            comment,
        } => {
            let mut body = json!({"Name": name, "CallerReference": caller_reference(reference)});
            if let Some(c) = comment {
                body["HostedZoneConfig"] = json!({"Comment": c});
            }
            let v = client
                .call(Method::POST, "/2013-04-01/hostedzone", Some(body))
                .await?;
            show(args, &v, |v| {
                table(&zones_header, zone_rows(&[v["HostedZone"].clone()]));
                println!();
                table(&CHANGE_HEADER, change_rows(&v["ChangeInfo"]));
            });
        }
        ZoneCommand::Delete { zone } => {
            let id = client.zone_id(&zone).await?;
            let v = client
                .call(
                    Method::DELETE,
                    &format!("/2013-04-01/hostedzone/{id}"),
                    None,
                )
                .await?;
            show(args, &v, |v| {
                table(&CHANGE_HEADER, change_rows(&v["ChangeInfo"]));
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
            let mut pages = Vec::new();
            loop {
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
                let v = client.call(Method::GET, &path, None).await?;
                all.extend(
                    v["ResourceRecordSets"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                );
                let more = v["IsTruncated"].as_bool() == Some(true);
                start = (
                    v["NextRecordName"].as_str().map(String::from),
                    v["NextRecordType"].as_str().map(String::from),
                    v["NextRecordIdentifier"].as_str().map(String::from),
                );
                pages.push(v);
                if !more || max_items.is_some() {
                    break;
                }
            }
            if args.json {
                match max_items {
                    Some(_) => print_json(&pages[0]),
                    None => print_json(&json!({"ResourceRecordSets": all})),
                }
            } else {
                table(
                    &["NAME", "TYPE", "TTL", "SET ID", "ROUTING", "DATA"],
                    set_rows(&all),
                );
                if let Some(next) = pages.last().filter(|p| p["IsTruncated"] == true) {
                    println!(
                        "(more: --name {} --type {})",
                        s(&next["NextRecordName"]),
                        s(&next["NextRecordType"])
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

pub async fn change(args: &ApiArgs, command: ChangeCommand) -> anyhow::Result<()> {
    let client = Client::new(args)?;
    match command {
        ChangeCommand::Apply { file, zone, wait } => {
            let mut batch = read_json(&file)?;
            let named = batch
                .as_object_mut()
                .and_then(|o| o.remove("HostedZoneId"))
                .and_then(|v| v.as_str().map(String::from));
            let body = if batch.get("ChangeBatch").is_some() {
                batch
            } else {
                json!({ "ChangeBatch": batch })
            };
            let id = match zone.or(named) {
                Some(zone) => client.zone_id(&zone).await?,
                None => {
                    let name = body["ChangeBatch"]["Changes"][0]["ResourceRecordSet"]["Name"]
                        .as_str()
                        .context("no --zone, and the batch's first change has no Name")?;
                    client.zone_holding(name).await?
                }
            };
            let mut v = client
                .call(
                    Method::POST,
                    &format!("/2013-04-01/hostedzone/{id}/rrset"),
                    Some(body),
                )
                .await?;
            if wait {
                let change = s(&v["ChangeInfo"]["Id"]);
                let deadline = Instant::now() + Duration::from_secs(60);
                while v["ChangeInfo"]["Status"] != "INSYNC" {
                    if Instant::now() > deadline {
                        anyhow::bail!("change {change} not INSYNC after 60 s");
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    v = client
                        .call(Method::GET, &format!("/2013-04-01/change/{change}"), None)
                        .await?;
                }
            }
            show(args, &v, |v| {
                table(&CHANGE_HEADER, change_rows(&v["ChangeInfo"]));
            });
        }
        ChangeCommand::Get { id } => {
            let v = client
                .call(Method::GET, &format!("/2013-04-01/change/{id}"), None)
                .await?;
            show(args, &v, |v| {
                table(&CHANGE_HEADER, change_rows(&v["ChangeInfo"]));
            });
        }
    }
    Ok(())
}

fn check_rows(checks: &[Value]) -> Vec<Vec<String>> {
    checks
        .iter()
        .map(|c| {
            let config = &c["HealthCheckConfig"];
            let target = match (
                config.get("IPAddress"),
                config.get("FullyQualifiedDomainName"),
            ) {
                (Some(ip), _) => format!("{}:{}", s(ip), config.get("Port").map_or("-".into(), s)),
                (None, Some(fqdn)) => s(fqdn),
                (None, None) => config
                    .get("ChildHealthChecks")
                    .map_or("-".into(), |c| format!("children {c}")),
            };
            vec![
                s(&c["Id"]),
                s(&config["Type"]),
                target,
                s(&c["HealthCheckVersion"]),
            ]
        })
        .collect()
}

const CHECK_HEADER: [&str; 4] = ["ID", "TYPE", "TARGET", "VERSION"];

pub async fn health(args: &ApiArgs, command: CheckCommand) -> anyhow::Result<()> {
    let client = Client::new(args)?;
    let one = |v: &Value| check_rows(&[v["HealthCheck"].clone()]);
    match command {
        CheckCommand::List => {
            let path = "/2013-04-01/healthcheck";
            list(
                args,
                &client,
                path,
                "HealthChecks",
                &CHECK_HEADER,
                check_rows,
            )
            .await?;
        }
        CheckCommand::Get { id } => {
            let v = client
                .call(Method::GET, &format!("/2013-04-01/healthcheck/{id}"), None)
                .await?;
            show(args, &v, |v| {
                table(&CHECK_HEADER, one(v));
            });
        }
        CheckCommand::Create {
            file,
            caller_reference: reference,
        } => {
            let config = read_json(&file)?;
            let config = config.get("HealthCheckConfig").cloned().unwrap_or(config);
            let body = json!({"CallerReference": caller_reference(reference), "HealthCheckConfig": config});
            let v = client
                .call(Method::POST, "/2013-04-01/healthcheck", Some(body))
                .await?;
            show(args, &v, |v| {
                table(&CHECK_HEADER, one(v));
            });
        }
        CheckCommand::Update { id, file } => {
            let patch = read_json(&file)?;
            let v = client
                .call(
                    Method::POST,
                    &format!("/2013-04-01/healthcheck/{id}"),
                    Some(patch),
                )
                .await?;
            show(args, &v, |v| {
                table(&CHECK_HEADER, one(v));
            });
        }
        CheckCommand::Delete { id } => {
            let v = client
                .call(
                    Method::DELETE,
                    &format!("/2013-04-01/healthcheck/{id}"),
                    None,
                )
                .await?;
            show(args, &v, |_| println!("deleted health check {id}"));
        }
        CheckCommand::Status { id, observations } => {
            let v = client.call(Method::GET, "/health-checks", None).await?;
            let mut checks: Vec<crate::health::monitor::CheckStatus> =
                serde_json::from_value(v.clone())
                    .context("the server's /health-checks is not a status list")?;
            if let Some(id) = &id {
                checks.retain(|c| &c.id == id);
                if checks.is_empty() {
                    anyhow::bail!("no health check {id} is running");
                }
            }
            if args.json {
                print_json(&serde_json::to_value(&checks)?);
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
    let v = client
        .call(
            Method::GET,
            &format!("/2013-04-01/testdnsanswer?{}", query.join("&")),
            None,
        )
        .await?;
    show(args, &v, |v| {
        println!(
            "{} {} -> {}",
            s(&v["RecordName"]),
            s(&v["RecordType"]),
            s(&v["ResponseCode"])
        );
        for d in v["RecordData"].as_array().into_iter().flatten() {
            println!("  {}", s(d));
        }
    });
    Ok(())
}
