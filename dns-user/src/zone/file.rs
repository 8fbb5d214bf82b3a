//! The RFC 1035 zone-file reader.

use std::borrow::Cow;

use super::build::SourcedSet;
use super::records::{self, ResourceRecordSet};
use super::*;

/// Deepest `$INCLUDE` nesting accepted.
const MAX_INCLUDE_DEPTH: usize = 8;
/// Parses zone-file text (RFC 1035 section 5) into records, each with its file and line
/// (`path` names it in errors). `$INCLUDE` is refused: only [`read_zone_file`] reads files.
pub fn parse_zone_text(
    origin: &Name,
    text: &str,
    path: &Path,
) -> Result<Vec<(Record, Where)>, Problem> {
    parse_zone(origin, text, path, false)
}

/// Reads and parses the zone file at `path`, which the operator's config names: a regular
/// file of at most [`crate::files::MAX_ZONE_FILE`] bytes, its `$INCLUDE`s resolved relative
/// A zone file's records in the one record-set form: one set per name and type, in the
/// order first seen, with the lowest TTL of its records; each set at the file and line of its
/// first record.
pub fn record_sets(records: Vec<(Record, Where)>) -> Vec<SourcedSet<'static>> {
    let mut out: Vec<SourcedSet<'static>> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    for (record, place) in records {
        // "TYPE rdata": the type as the zone-file parser reads it, then the data.
        let text = rdata::presentation(record.record_type(), &record.data);
        let (rtype, value) = text.split_once(' ').unwrap_or((&text, ""));
        let key = (
            record.name.to_ascii().to_ascii_lowercase(),
            rtype.to_string(),
        );
        let value = records::ValueJson {
            value: value.to_string(),
        };
        let ttl = i64::from(record.ttl);
        match index.get(&key) {
            Some(&i) => {
                // One TTL per RRset: the lowest of its records (RFC 2181 section 5.2).
                let set = out[i].set.to_mut();
                set.ttl = Some(set.ttl.map_or(ttl, |t| t.min(ttl)));
                set.resource_records.get_or_insert_default().push(value);
            }
            None => {
                index.insert(key.clone(), out.len());
                out.push(SourcedSet {
                    set: Cow::Owned(ResourceRecordSet::records(key.0, key.1, ttl, vec![value])),
                    place,
                    record: None,
                    checked: None,
                });
            }
        }
    }
    out
}

/// to the including file and read the same way.
pub fn read_zone_file(origin: &Name, path: &Path) -> Result<Vec<(Record, Where)>, Problem> {
    let text = crate::files::read_text(path, crate::files::MAX_ZONE_FILE)
        .map_err(|e| Where::file(path).error(format!("cannot read zone file: {e}")))?;
    parse_zone(origin, &text, path, true)
}

fn parse_zone(
    origin: &Name,
    text: &str,
    path: &Path,
    includes: bool,
) -> Result<Vec<(Record, Where)>, Problem> {
    let mut state = FileState {
        origin: fqdn(origin.clone()),
        default_ttl: None,
        last_ttl: None,
        last_owner: None,
        includes,
    };
    let mut out = Vec::new();
    parse_into(&mut state, text, path, 0, &mut out)?;
    Ok(out)
}

struct FileState {
    origin: Name,
    default_ttl: Option<u32>,
    last_ttl: Option<u32>,
    last_owner: Option<Name>,
    /// Whether `$INCLUDE` may read files (a zone file named by the config).
    includes: bool,
}

fn parse_into(
    state: &mut FileState,
    text: &str,
    path: &Path,
    depth: usize,
    out: &mut Vec<(Record, Where)>,
) -> Result<(), Problem> {
    let shared_path: Arc<Path> = Arc::from(path);
    let progress =
        crate::progress::Progress::new(format!("zone file {}: records read", path.display()), None);
    for entry in entries(text).map_err(|(line, message)| Problem {
        at: Where::File {
            path: shared_path.clone(),
            line,
        },
        message,
    })? {
        progress.update(out.len());
        let place = Where::File {
            path: shared_path.clone(),
            line: entry.line,
        };
        let tokens = &entry.tokens;
        let Some(first) = tokens.first() else {
            continue;
        };
        if !entry.leading_blank && first.starts_with('$') {
            match first.to_ascii_uppercase().as_str() {
                "$ORIGIN" => {
                    let name = tokens
                        .get(1)
                        .ok_or_else(|| place.error("$ORIGIN needs a name"))?;
                    state.origin = parse_name(name, &state.origin, &place)?;
                }
                "$TTL" => {
                    let ttl = tokens
                        .get(1)
                        .ok_or_else(|| place.error("$TTL needs a value"))?;
                    state.default_ttl = Some(parse_ttl(ttl, &place)?);
                }
                "$INCLUDE" => {
                    if !state.includes {
                        return Err(place
                            .error("$INCLUDE is read only in zone files that the config names"));
                    }
                    if depth >= MAX_INCLUDE_DEPTH {
                        return Err(place.error("$INCLUDE nested too deeply"));
                    }
                    let file = tokens
                        .get(1)
                        .ok_or_else(|| place.error("$INCLUDE needs a file"))?;
                    let file = path.parent().unwrap_or(Path::new(".")).join(file);
                    let included = crate::files::read_text(&file, crate::files::MAX_ZONE_FILE)
                        .map_err(|e| place.error(format!("cannot read $INCLUDE: {e}")))?;
                    // The included file may change its origin; the parent's is restored after
                    // (RFC 1035 section 5.1).
                    let saved_origin = state.origin.clone();
                    if let Some(o) = tokens.get(2) {
                        state.origin = parse_name(o, &state.origin, &place)?;
                    }
                    parse_into(state, &included, &file, depth + 1, out)?;
                    state.origin = saved_origin;
                }
                other => return Err(place.error(format!("unknown directive {other}"))),
            }
            continue;
        }

        let mut rest = tokens.as_slice();
        let owner = if entry.leading_blank {
            state
                .last_owner
                .clone()
                .ok_or_else(|| place.error("record without an owner name"))?
        } else {
            let name = parse_name(&rest[0], &state.origin, &place)?;
            rest = &rest[1..];
            name
        };
        state.last_owner = Some(owner.clone());

        let mut ttl = None;
        let mut class = None;
        let rtype = loop {
            let token = rest
                .first()
                .ok_or_else(|| place.error("record has no type"))?;
            rest = &rest[1..];
            if ttl.is_none() && token.starts_with(|c: char| c.is_ascii_digit()) {
                ttl = Some(parse_ttl(token, &place)?);
            } else if class.is_none() && token.eq_ignore_ascii_case("IN") {
                class = Some(DNSClass::IN);
            } else if class.is_none()
                && ["CH", "HS", "CS"]
                    .iter()
                    .any(|c| token.eq_ignore_ascii_case(c))
            {
                return Err(place.error(format!("class {token} is not served")));
            } else {
                break parse_type(token)
                    .ok_or_else(|| place.error(format!("unknown type {token}")))?;
            }
        };
        // An omitted TTL is $TTL's (RFC 2308 section 4), else the last one stated (RFC 1035).
        if ttl.is_some() {
            state.last_ttl = ttl;
        }
        let ttl = ttl
            .or(state.default_ttl)
            .or(state.last_ttl)
            .ok_or_else(|| place.error("no TTL given and no $TTL in effect"))?;
        if rest.is_empty() {
            return Err(place.error(format!("{rtype} record has no data")));
        }
        let data = rdata::parse_tokens(rtype, rest, &state.origin)
            .map_err(|e| place.error(format!("bad {rtype} record: {e}")))?;
        out.push((Record::from_rdata(owner, ttl, data), place));
    }
    progress.finish(out.len());
    Ok(())
}

pub(super) fn parse_name(text: &str, origin: &Name, place: &Where) -> Result<Name, Problem> {
    if text == "@" {
        return Ok(origin.clone());
    }
    Name::parse(text, Some(origin)).map_err(|e| place.error(format!("bad name {text}: {e}")))
}

fn parse_ttl(text: &str, place: &Where) -> Result<u32, Problem> {
    hickory_proto::serialize::txt::parse_ttl(text)
        .map_err(|e| place.error(format!("bad TTL {text}: {e}")))
}

/// One logical entry of a zone file: the tokens of one line, or of several joined by
/// parentheses, with the line it starts on.
struct Entry {
    line: usize,
    leading_blank: bool,
    tokens: Vec<String>,
}

/// Splits zone text into logical entries. Quotes and backslash escapes are kept in the tokens
/// (hickory's RDATA parser reads them); comments are dropped.
fn entries(text: &str) -> Result<Vec<Entry>, (usize, String)> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    let mut current: Option<Entry> = None;
    let mut token = String::new();
    let mut depth = 0usize;
    let mut paren_line = 0;
    let mut at_line_start = true;

    fn flush(token: &mut String, entry: &mut Option<Entry>, line: usize, leading_blank: bool) {
        if !token.is_empty() {
            entry
                .get_or_insert_with(|| Entry {
                    line,
                    leading_blank,
                    tokens: Vec::new(),
                })
                .tokens
                .push(std::mem::take(token));
        }
    }

    let mut leading_blank = false;
    while let Some(c) = chars.next() {
        if at_line_start && depth == 0 {
            leading_blank = c == ' ' || c == '\t';
            at_line_start = false;
        }
        match c {
            '\n' => {
                flush(&mut token, &mut current, line, leading_blank);
                line += 1;
                if depth == 0 {
                    if let Some(e) = current.take() {
                        out.push(e);
                    }
                    at_line_start = true;
                }
            }
            ';' => {
                // A comment runs to the end of the line, which the '\n' arm then ends.
                while chars.next_if(|&n| n != '\n').is_some() {}
                flush(&mut token, &mut current, line, leading_blank);
            }
            ' ' | '\t' | '\r' => flush(&mut token, &mut current, line, leading_blank),
            '(' => {
                flush(&mut token, &mut current, line, leading_blank);
                if depth == 0 {
                    paren_line = line;
                }
                depth += 1;
            }
            ')' => {
                flush(&mut token, &mut current, line, leading_blank);
                if depth == 0 {
                    return Err((line, "unbalanced ')'".into()));
                }
                depth -= 1;
            }
            '"' => {
                token.push('"');
                let start = line;
                loop {
                    match chars.next() {
                        None => return Err((start, "unterminated quoted string".into())),
                        Some('\\') => {
                            token.push('\\');
                            if let Some(n) = chars.next() {
                                token.push(n);
                            }
                        }
                        Some('"') => {
                            token.push('"');
                            break;
                        }
                        Some('\n') => return Err((start, "newline inside a quoted string".into())),
                        Some(o) => token.push(o),
                    }
                }
            }
            '\\' => {
                token.push('\\');
                if let Some(n) = chars.next() {
                    token.push(n);
                }
            }
            other => {
                if current.is_none() && token.is_empty() {
                    // Remember where the entry starts.
                    current = Some(Entry {
                        line,
                        leading_blank,
                        tokens: Vec::new(),
                    });
                }
                token.push(other);
            }
        }
    }
    if depth > 0 {
        return Err((paren_line, "unbalanced '(' (no closing parenthesis)".into()));
    }
    flush(&mut token, &mut current, line, leading_blank);
    if let Some(e) = current.take() {
        out.push(e);
    }
    Ok(out)
}
