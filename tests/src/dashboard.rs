//! The Grafana dashboard (`docs/grafana-dashboard.json`) against what `/metrics` exports:
//! every metric its queries name, and every label they select, group or match on, must be
//! on the page of a running daemon.

use std::collections::{BTreeMap, BTreeSet};

/// The dashboard's panel queries: (panel title, PromQL expression).
pub fn queries() -> Vec<(String, String)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/grafana-dashboard.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let board: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for panel in board["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().expect("a panel title").to_string();
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("a PromQL expr");
            out.push((title.clone(), expr.to_string()));
        }
    }
    out
}

/// Metric name -> label names, from a Prometheus text page.
pub fn exported(page: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in page
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = out.entry(line[..end].to_string()).or_default();
        if line[end..].starts_with('{') {
            // name="value",...: values may hold escaped quotes and commas.
            let (mut in_value, mut escaped, mut name) = (false, false, String::new());
            for c in line[end + 1..].chars() {
                match (in_value, c) {
                    (true, '\\') if !escaped => escaped = true,
                    (true, '"') if !escaped => in_value = false,
                    (true, _) => escaped = false,
                    (false, '"') => {
                        in_value = true;
                        labels.insert(std::mem::take(&mut name));
                    }
                    (false, '}') => break,
                    (false, '=' | ',') => {}
                    (false, c) => name.push(c),
                }
            }
        }
    }
    out
}

/// The metric names (`dns_...`) of an expression, and the label names it uses in selectors
/// and in `by`/`without`/`on`/`ignoring` clauses.
pub fn names(expr: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let (mut metrics, mut labels) = (BTreeSet::new(), BTreeSet::new());
    let mut rest = expr;
    while let Some(start) = rest.find(|c: char| word(c) || c == '{' || c == '"') {
        rest = &rest[start..];
        if let Some(quoted) = rest.strip_prefix('"') {
            // A label value or string: skipped.
            let end = quoted.find('"').map_or(quoted.len(), |e| e + 1);
            rest = &quoted[end..];
        } else if let Some(inner) = rest.strip_prefix('{') {
            // label op "value", ...: a value may hold '}', ',' and escaped quotes.
            let (mut in_value, mut escaped, mut name, mut end) =
                (false, false, String::new(), None);
            for (i, c) in inner.char_indices() {
                match (in_value, c) {
                    (true, '\\') if !escaped => escaped = true,
                    (true, '"') if !escaped => in_value = false,
                    (true, _) => escaped = false,
                    (false, '"') => in_value = true,
                    (false, '}') => {
                        end = Some(i);
                        break;
                    }
                    (false, '=' | '!' | '~') if !name.trim().is_empty() => {
                        labels.insert(std::mem::take(&mut name).trim().to_string());
                    }
                    (false, ',' | '=' | '!' | '~') => name.clear(),
                    (false, c) => name.push(c),
                }
            }
            rest = &inner[end.expect("a closed selector") + 1..];
        } else {
            let end = rest.find(|c: char| !word(c)).unwrap_or(rest.len());
            let token = &rest[..end];
            rest = &rest[end..];
            if token.starts_with("dns_") {
                metrics.insert(token.to_string());
            } else if ["by", "without", "on", "ignoring"].contains(&token) {
                let open = rest.find('(').expect("a label list");
                let close = rest.find(')').expect("a closed label list");
                for label in rest[open + 1..close].split(',') {
                    labels.insert(label.trim().to_string());
                }
                rest = &rest[close + 1..];
            }
        }
    }
    (metrics, labels)
}

/// What the dashboard asks for that `page` does not have, one line each.
pub fn mismatches(page: &str) -> Vec<String> {
    let have = exported(page);
    let mut out = Vec::new();
    for (title, expr) in queries() {
        let (metrics, labels) = names(&expr);
        if metrics.is_empty() {
            out.push(format!("{title}: {expr:?} names no dns_ metric"));
        }
        let mut available = BTreeSet::new();
        for m in &metrics {
            match have.get(m) {
                Some(l) => available.extend(l.iter().cloned()),
                None => out.push(format!("{title}: metric {m} is not exported")),
            }
        }
        for l in labels.difference(&available) {
            out.push(format!("{title}: label {l:?} is on none of {metrics:?}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_yield_their_metrics_and_labels() {
        let (m, l) = names(
            r#"sum by (path, rcode) (rate(dns_responses_total{path="x,y}", zone!~"a"}[$__rate_interval])) / on (map) dns_x"#,
        );
        assert_eq!(m, ["dns_responses_total", "dns_x"].map(String::from).into());
        assert_eq!(l, ["map", "path", "rcode", "zone"].map(String::from).into());
    }

    #[test]
    fn pages_yield_names_and_labels() {
        let page = "# HELP x\nup 1\ndns_a{k=\"v,\\\"w\",j=\"\"} 2\ndns_b 3\n";
        let e = exported(page);
        assert_eq!(e["dns_a"], ["j", "k"].map(String::from).into());
        assert!(e["dns_b"].is_empty() && e.contains_key("up"));
    }

    #[test]
    fn a_wrong_dashboard_query_is_caught() {
        // What the checker reports for names the page lacks (the real page is checked by
        // the failover test, against a daemon with XDP and health checks).
        let page = "dns_responses_total{path=\"xdp\",rcode=\"NOERROR\"} 1\n";
        let all = mismatches(page);
        assert!(
            all.iter()
                .any(|m| m.contains("dns_health_check_healthy is not exported")),
            "{all:?}"
        );
        assert!(
            !all.iter()
                .any(|m| m.starts_with("Responses per second, by answer path")),
            "{all:?}"
        );
    }
}
