//! The cluster's key space in etcd, under its prefix:
//!
//! ```text
//! PREFIX/head                   the last shared write (its mod revision guards the next)
//! PREFIX/data/TABLE/KEY         one store row (JSON), as the node's own store keeps it
//! PREFIX/nodes/NODE             a live node: what it serves (leased: gone when it is)
//! PREFIX/obs/CHECK/NODE          the node's status of a check it probes (leased)
//! ```
//!
//! A shared write is one transaction: its rows and `head`, on condition that `head` has not
//! moved since the writer last saw it. So every node applies the same writes in the same
//! order, and a write's revision names it.

use serde::{Deserialize, Serialize};

use crate::control::store::{Object, Row, Table};

/// A key of the cluster, read.
#[derive(Debug, PartialEq)]
pub enum Key<'a> {
    Head,
    Row(Table, &'a str),
    Node(&'a str),
    /// (check id, node id).
    Observation(&'a str, &'a str),
}

/// The keys of one cluster (its prefix).
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// `prefix`: without a final `/`.
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.trim_end_matches('/').to_string(),
        }
    }

    /// What every key of the cluster starts with.
    pub fn all(&self) -> String {
        format!("{}/", self.prefix)
    }

    pub fn head(&self) -> String {
        format!("{}/head", self.prefix)
    }

    pub fn row(&self, table: Table, key: &str) -> String {
        format!("{}/data/{}/{key}", self.prefix, table.name())
    }

    pub fn node(&self, id: &str) -> String {
        format!("{}/nodes/{id}", self.prefix)
    }

    pub fn observation(&self, check: &str, node: &str) -> String {
        format!("{}/obs/{check}/{node}", self.prefix)
    }

    /// What `key` is (`None`: not one of the cluster's).
    pub fn parse<'a>(&self, key: &'a [u8]) -> Option<Key<'a>> {
        let key = std::str::from_utf8(key).ok()?;
        let rest = key.strip_prefix(&self.prefix)?.strip_prefix('/')?;
        if rest == "head" {
            return Some(Key::Head);
        }
        if let Some(node) = rest.strip_prefix("nodes/") {
            return Some(Key::Node(node));
        }
        if let Some(seen) = rest.strip_prefix("obs/") {
            // A node id has no '/'; a check id may.
            let (check, node) = seen.rsplit_once('/')?;
            return Some(Key::Observation(check, node));
        }
        let (table, key) = rest.strip_prefix("data/")?.split_once('/')?;
        Some(Key::Row(Table::named(table)?, key))
    }

    /// The row an event of `key` makes: `value` put (`Some`) or the key deleted (`None`).
    pub fn row_of(
        &self,
        table: Table,
        key: &str,
        value: Option<&[u8]>,
    ) -> Result<Row, serde_json::Error> {
        let object = value.map(|v| Object::from_json(table, v)).transpose()?;
        Ok(Row {
            table,
            key: key.to_string(),
            object,
        })
    }
}

/// What a node publishes about itself under `nodes/NODE`, bound to its lease.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeRecord {
    /// Every change up to this sequence is served by both of the node's answer paths.
    pub applied: u64,
    /// The revision of the last shared write the node holds.
    pub head: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// When the node's session began (RFC 3339).
    pub since: String,
}

/// Changes up to the returned sequence are served by every node in `nodes` (each one's
/// applied sequence; this node's is `own`).
pub fn served_by_all<'a>(nodes: impl Iterator<Item = (&'a str, u64)>, me: &str, own: u64) -> u64 {
    nodes
        .filter(|(id, _)| *id != me)
        .map(|(_, applied)| applied)
        .fold(own, u64::min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back_as_what_they_name() {
        let keys = Keys::new("/dns/v1/");
        assert_eq!(keys.all(), "/dns/v1/");
        assert_eq!(keys.parse(keys.head().as_bytes()), Some(Key::Head));
        assert_eq!(keys.parse(b"/dns/v1/nodes/a-1"), Some(Key::Node("a-1")));
        assert_eq!(
            keys.parse(keys.observation("web/1", "a-1").as_bytes()),
            Some(Key::Observation("web/1", "a-1"))
        );
        let row = keys.row(Table::RrSets, "Z1\x1forg.example\x1fA\x1f");
        assert_eq!(row, "/dns/v1/data/rrsets/Z1\x1forg.example\x1fA\x1f");
        assert_eq!(
            keys.parse(row.as_bytes()),
            Some(Key::Row(Table::RrSets, "Z1\x1forg.example\x1fA\x1f"))
        );
        assert_eq!(
            keys.parse(keys.row(Table::Checks, "abc/def").as_bytes()),
            Some(Key::Row(Table::Checks, "abc/def"))
        );
        for other in [
            &b"/dns/v2/head"[..],
            b"/dns/v1/data/nope/x",
            b"/dns/v1headx",
            b"\xff",
        ] {
            assert_eq!(keys.parse(other), None, "{other:?}");
        }
    }

    #[test]
    fn a_row_survives_the_round_trip_through_its_value() {
        let keys = Keys::new("/p");
        let zone = serde_json::json!({"Id": "Z1", "Name": "a.test.", "CallerReference": "r",
            "CreatedAt": "t", "Version": 3});
        let bytes = serde_json::to_vec(&zone).unwrap();
        let row = keys.row_of(Table::Zones, "Z1", Some(&bytes)).unwrap();
        let Some(Object::Zone(z)) = &row.object else {
            panic!("{row:?}")
        };
        assert_eq!((z.name.as_str(), z.version), ("a.test.", 3));
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&row.object.unwrap().to_json()).unwrap(),
            zone
        );
        assert!(
            keys.row_of(Table::Zones, "Z1", None)
                .unwrap()
                .object
                .is_none()
        );
        assert!(keys.row_of(Table::Zones, "Z1", Some(b"{}")).is_err());
    }

    #[test]
    fn a_change_is_served_by_all_when_the_slowest_live_node_serves_it() {
        let nodes = [("a", 7), ("b", 5), ("c", 9)];
        assert_eq!(served_by_all(nodes.iter().copied(), "a", 8), 5);
        // This node counts with what it serves now, not with its last published record.
        assert_eq!(served_by_all(nodes.iter().copied(), "b", 8), 7);
        assert_eq!(served_by_all(std::iter::empty(), "a", 4), 4);
    }
}
