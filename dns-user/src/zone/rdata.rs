//! RDATA: one record's data read from its presentation form, type by type, and written back.
//!
//! Two callers give text: a zone file (whose front end in [`crate::zone`] has already split an
//! entry into tokens, parentheses and comments consumed) and a single value of a Route 53
//! record set or a `[[zone.record]]`. A value is tokenized here, strictly: no control
//! character (so no second line), no parenthesis or comment outside a quoted string, no
//! `$directive`, and exactly the fields its type has. Nothing here reads a file: a value can
//! never reach the zone-file parser or its `$INCLUDE`.
//!
//! Each type is parsed by its own RDATA parser (hickory-proto's `RData::try_from_str`, the
//! parsers below for TXT/SPF and RFC 3597 generic data, or [`super::rdata_dnssec`] for the
//! DNSSEC types); names in the data that are not
//! absolute are made absolute at the origin first, as a zone file reads them.

use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::BinEncodable;

use super::rdata_dnssec::is_dnssec_type;

/// RR type 99 (RFC 7208 section 3.1; TXT syntax). hickory has no variant for it.
pub const TYPE_SPF: u16 = 99;

/// Why a value is not valid data for its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RdataError {
    #[error("control character {0:?} in the value")]
    ControlCharacter(char),
    #[error("{0:?} outside a quoted string is not allowed in a value")]
    Syntax(char),
    #[error("directive {0} is not allowed in a value")]
    Directive(String),
    #[error("unterminated quoted string")]
    Unterminated,
    #[error("the value is empty")]
    Empty,
    #[error("{rtype} data has {expected} field(s), {found} given")]
    Fields {
        rtype: RecordType,
        expected: &'static str,
        found: usize,
    },
    #[error("type {0} has no text form here: use RFC 3597 syntax (\\# <length> <hex>)")]
    NoTextForm(u16),
    #[error("{0}")]
    Invalid(String),
}

/// Parses one value of a record set (a Route 53 `ResourceRecord` value or a config value).
pub fn parse_value(rtype: RecordType, value: &str, origin: &Name) -> Result<RData, RdataError> {
    let tokens = value_tokens(value)?;
    if let Some(t) = tokens.iter().find(|t| t.starts_with('$')) {
        return Err(RdataError::Directive((*t).to_string()));
    }
    parse_tokens(rtype, &tokens, origin)
}

/// Splits a value into tokens: bare words, and quoted strings (quotes and escapes kept) that
/// stand alone, as RFC 1035 character-strings do (`"a b"`, not `x"a b"` or `"a"b`).
fn value_tokens(value: &str) -> Result<Vec<&str>, RdataError> {
    if let Some(c) = value.chars().find(|&c| is_control(c)) {
        return Err(RdataError::ControlCharacter(c));
    }
    let bytes = value.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' => i += 1,
            c @ (b'(' | b')' | b';') => return Err(RdataError::Syntax(char::from(c))),
            b'"' => {
                let start = i;
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => return Err(RdataError::Unterminated),
                        Some(b'\\') => i += 2,
                        Some(b'"') => break,
                        Some(_) => i += 1,
                    }
                }
                i += 1;
                if bytes.get(i).is_some_and(|b| !matches!(b, b' ' | b'\t')) {
                    return Err(RdataError::Syntax('"'));
                }
                tokens.push(&value[start..i]);
            }
            _ => {
                let start = i;
                while i < bytes.len() && !matches!(bytes[i], b' ' | b'\t') {
                    match bytes[i] {
                        // The RDATA parsers split at white space, escaped or not.
                        b'\\' if matches!(bytes.get(i + 1), Some(b' ' | b'\t')) => {
                            return Err(RdataError::Invalid(
                                "an escaped space outside quotes: write it as \\032".into(),
                            ));
                        }
                        b'\\' => i += 1,
                        c @ (b'(' | b')' | b';' | b'"') => {
                            return Err(RdataError::Syntax(char::from(c)));
                        }
                        _ => {}
                    }
                    i += 1;
                }
                let token = &value[start..i.min(bytes.len())];
                if !token.is_ascii() {
                    return Err(RdataError::Invalid(format!(
                        "{token:?}: outside quotes a value is ASCII (an internationalized name as its xn-- A-labels)"
                    )));
                }
                tokens.push(token);
            }
        }
    }
    Ok(tokens)
}

/// C0 controls but tab, and DEL.
fn is_control(c: char) -> bool {
    (c.is_ascii_control() && c != '\t') || c == '\u{7f}'
}

/// How many fields a type's data has.
enum Arity {
    Exactly(usize, &'static str),
    AtLeast(usize, &'static str),
}

/// Fields of each type with a text form here, and which of them are domain names that must be
/// made absolute before hickory's parser reads them.
fn shape(rtype: RecordType) -> Option<(Arity, &'static [usize])> {
    use Arity::{AtLeast, Exactly};
    Some(match rtype {
        // Read by `parse_own`, which resolves their names itself.
        RecordType::A
        | RecordType::AAAA
        | RecordType::CNAME
        | RecordType::NS
        | RecordType::PTR
        | RecordType::ANAME => (Exactly(1, "1"), &[]),
        RecordType::MX => (Exactly(2, "2"), &[]),
        RecordType::SRV => (Exactly(4, "4"), &[]),
        RecordType::SOA => (Exactly(7, "7"), &[]),
        // Read by hickory: names at these positions are made absolute first.
        RecordType::CAA => (Exactly(3, "3"), &[]),
        RecordType::NAPTR => (Exactly(6, "6"), &[5]),
        // The fingerprint's hex may be split by white space (RFC 4255 section 3.2).
        RecordType::SSHFP => (AtLeast(3, "3 or more"), &[]),
        RecordType::HINFO => (Exactly(2, "2"), &[]),
        RecordType::TLSA => (AtLeast(4, "4 or more"), &[]),
        RecordType::SVCB | RecordType::HTTPS => (AtLeast(2, "2 or more"), &[1]),
        _ => return None,
    })
}

/// Parses one record's data from its tokens; relative names are made absolute at `origin`.
pub fn parse_tokens<S: AsRef<str>>(
    rtype: RecordType,
    tokens: &[S],
    origin: &Name,
) -> Result<RData, RdataError> {
    let tokens: Vec<&str> = tokens.iter().map(AsRef::as_ref).collect();
    if let Some(c) = tokens
        .iter()
        .flat_map(|t| t.chars())
        .find(|&c| is_control(c))
    {
        return Err(RdataError::ControlCharacter(c));
    }
    if tokens.is_empty() {
        return Err(RdataError::Empty);
    }
    if tokens[0] == "\\#" {
        return parse_generic(rtype, &tokens[1..]);
    }
    if rtype == RecordType::TXT || u16::from(rtype) == TYPE_SPF {
        let strings = parse_character_strings(&tokens.join(" ")).map_err(RdataError::Invalid)?;
        let txt =
            hickory_proto::rr::rdata::TXT::from_bytes(strings.iter().map(Vec::as_slice).collect());
        if rtype == RecordType::TXT {
            return Ok(RData::TXT(txt));
        }
        let bytes = RData::TXT(txt)
            .to_bytes()
            .map_err(|e| RdataError::Invalid(e.to_string()))?;
        return Ok(opaque(rtype, bytes));
    }
    if is_dnssec_type(rtype) {
        return Ok(opaque(
            rtype,
            super::rdata_dnssec::parse(rtype, &tokens, origin)?,
        ));
    }
    let Some((arity, names)) = shape(rtype) else {
        return Err(RdataError::NoTextForm(u16::from(rtype)));
    };
    // A CAA value is printable ASCII without escapes (RFC 8659 section 4.1.1); hickory's
    // writer would not escape a backslash back.
    if rtype == RecordType::CAA && tokens.get(2).is_some_and(|v| v.contains('\\')) {
        return Err(RdataError::Invalid("a CAA value has no escapes".into()));
    }
    // A CAA tag is 1 to 15 ASCII letters and digits (RFC 8659 section 4.1), never quoted.
    if rtype == RecordType::CAA
        && tokens.get(1).is_some_and(|t| {
            t.is_empty() || t.len() > 15 || !t.bytes().all(|b| b.is_ascii_alphanumeric())
        })
    {
        return Err(RdataError::Invalid(format!(
            "CAA tag {:?} is not 1 to 15 letters and digits",
            tokens[1]
        )));
    }
    match arity {
        Arity::Exactly(n, expected) | Arity::AtLeast(n, expected)
            if tokens.len() < n || (matches!(arity, Arity::Exactly(..)) && tokens.len() != n) =>
        {
            return Err(RdataError::Fields {
                rtype,
                expected,
                found: tokens.len(),
            });
        }
        _ => {}
    }
    if let Some(rdata) = parse_own(rtype, &tokens, origin)? {
        return Ok(rdata);
    }
    let fingerprint;
    let tokens = if rtype == RecordType::SSHFP && tokens.len() > 3 {
        fingerprint = tokens[2..].concat();
        vec![tokens[0], tokens[1], fingerprint.as_str()]
    } else {
        tokens
    };
    // The rest go through hickory's RDATA parsers, whose tokenizer knows no escapes outside
    // quotes: there are none to give it.
    if let Some(t) = tokens
        .iter()
        .find(|t| !t.starts_with('"') && t.contains('\\'))
    {
        return Err(RdataError::Invalid(format!(
            "{t:?}: {rtype} data has no escapes outside quotes"
        )));
    }
    let absolute: Vec<String> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if names.contains(&i) {
                absolute_name(t, origin)
            } else {
                (*t).to_string()
            }
        })
        .collect();
    RData::try_from_str(rtype, &absolute.join(" ")).map_err(|e| RdataError::Invalid(e.to_string()))
}

/// The types whose fields are addresses, numbers and names, read here (names by hickory's
/// name parser, which knows RFC 1035 escapes); `None` for the others.
fn parse_own(
    rtype: RecordType,
    tokens: &[&str],
    origin: &Name,
) -> Result<Option<RData>, RdataError> {
    use hickory_proto::rr::rdata::{A, AAAA, ANAME, CNAME, MX, NS, PTR, SOA, SRV};
    let invalid = |m: String| RdataError::Invalid(m);
    let name = |i: usize| -> Result<Name, RdataError> {
        let t = tokens[i];
        if t == "@" {
            return Ok(origin.clone());
        }
        Name::parse(t, Some(origin))
            .map_err(|e| invalid(format!("{t:?} is not a domain name: {e}")))
    };
    let number = |i: usize| -> Result<u16, RdataError> {
        tokens[i]
            .parse()
            .map_err(|_| invalid(format!("{:?} is not a number 0..65535", tokens[i])))
    };
    let ttl = |i: usize| -> Result<u32, RdataError> {
        hickory_proto::serialize::txt::parse_ttl(tokens[i])
            .map_err(|_| invalid(format!("{:?} is not a time value", tokens[i])))
    };
    let signed = |i: usize| -> Result<i32, RdataError> {
        i32::try_from(ttl(i)?).map_err(|_| invalid(format!("{:?} is over 2^31-1", tokens[i])))
    };
    Ok(Some(match rtype {
        RecordType::A => RData::A(A(tokens[0]
            .parse()
            .map_err(|_| invalid(format!("{:?} is not an IPv4 address", tokens[0])))?)),
        RecordType::AAAA => {
            RData::AAAA(AAAA(tokens[0].parse().map_err(|_| {
                invalid(format!("{:?} is not an IPv6 address", tokens[0]))
            })?))
        }
        RecordType::CNAME => RData::CNAME(CNAME(name(0)?)),
        RecordType::NS => RData::NS(NS(name(0)?)),
        RecordType::PTR => RData::PTR(PTR(name(0)?)),
        RecordType::ANAME => RData::ANAME(ANAME(name(0)?)),
        RecordType::MX => RData::MX(MX::new(number(0)?, name(1)?)),
        RecordType::SRV => RData::SRV(SRV::new(number(0)?, number(1)?, number(2)?, name(3)?)),
        RecordType::SOA => RData::SOA(SOA::new(
            name(0)?,
            name(1)?,
            ttl(2)?,
            signed(3)?,
            signed(4)?,
            signed(5)?,
            ttl(6)?,
        )),
        _ => return Ok(None),
    }))
}

/// A name token made absolute: `@` is the origin, a name without a final (unescaped) dot is
/// relative to it.
fn absolute_name(token: &str, origin: &Name) -> String {
    if token == "@" {
        return origin.to_ascii();
    }
    let escaped_dot = token.ends_with("\\.") && !token.ends_with("\\\\.");
    if token.ends_with('.') && !escaped_dot {
        return token.to_string();
    }
    if origin.is_root() {
        format!("{token}.")
    } else {
        let origin = origin.to_ascii();
        let origin = origin.strip_suffix('.').unwrap_or(&origin);
        format!("{token}.{origin}.")
    }
}

fn opaque(rtype: RecordType, bytes: Vec<u8>) -> RData {
    RData::Unknown {
        code: rtype,
        rdata: hickory_proto::rr::rdata::NULL::with(bytes),
    }
}

/// RDATA in RFC 3597 section 5 generic form: `\# <length> <hex>...` (the `\#` already read).
fn parse_generic(rtype: RecordType, tokens: &[&str]) -> Result<RData, RdataError> {
    use hickory_proto::serialize::binary::{BinDecoder, Restrict};
    let invalid = |m: String| RdataError::Invalid(m);
    let len: u16 = tokens
        .first()
        .ok_or_else(|| invalid("\\# needs a length".into()))?
        .parse()
        .map_err(|e| invalid(format!("bad \\# length: {e}")))?;
    let bytes = hex(&tokens[1..].concat()).map_err(invalid)?;
    if bytes.len() != usize::from(len) {
        return Err(invalid(format!(
            "\\# length {len} but {} bytes of data",
            bytes.len()
        )));
    }
    if bytes.is_empty() {
        return Err(invalid("empty RDATA is not supported".into()));
    }
    if is_dnssec_type(rtype) {
        // Kept as wire bytes, as their text form is (see `rdata_dnssec`).
        if super::rdata_dnssec::present(rtype, &bytes).is_none() {
            return Err(invalid(format!("malformed {rtype} RDATA")));
        }
        return Ok(opaque(rtype, bytes));
    }
    let mut decoder = BinDecoder::new(&bytes);
    let rdata =
        RData::read(&mut decoder, rtype, Restrict::new(len)).map_err(|e| invalid(e.to_string()))?;
    if !decoder.is_empty() {
        return Err(invalid("trailing bytes after the RDATA".into()));
    }
    Ok(rdata)
}

fn hex(text: &str) -> Result<Vec<u8>, String> {
    if !text.len().is_multiple_of(2) {
        return Err("odd number of hex digits".into());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("bad hex digits in {text:?}"))
        })
        .collect()
}

/// RFC 1035 section 5.1 <character-string>s: quoted or bare, with `\X` and `\DDD` escapes,
/// each at most 255 bytes.
fn parse_character_strings(text: &str) -> Result<Vec<Vec<u8>>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let quoted = bytes[i] == b'"';
        if quoted {
            i += 1;
        }
        let mut s = Vec::new();
        loop {
            let Some(&b) = bytes.get(i) else {
                if quoted {
                    return Err("unterminated quoted string".into());
                }
                break;
            };
            if quoted && b == b'"' {
                i += 1;
                break;
            }
            if !quoted && b.is_ascii_whitespace() {
                break;
            }
            if b == b'\\' {
                let digits = bytes
                    .get(i + 1..i + 4)
                    .filter(|d| d.iter().all(u8::is_ascii_digit));
                if let Some(d) = digits {
                    let value = d
                        .iter()
                        .fold(0u16, |v, digit| v * 10 + u16::from(digit - b'0'));
                    s.push(
                        u8::try_from(value).map_err(|_| format!("escape \\{value} is over 255"))?,
                    );
                    i += 4;
                } else {
                    s.push(*bytes.get(i + 1).ok_or("escape at the end of the data")?);
                    i += 2;
                }
                continue;
            }
            s.push(b);
            i += 1;
        }
        if s.len() > 255 {
            return Err(format!(
                "a character-string is {} bytes (at most 255)",
                s.len()
            ));
        }
        out.push(s);
    }
    if out.is_empty() {
        return Err("no character-strings".into());
    }
    Ok(out)
}

/// `TYPE RDATA` in zone-file syntax, which [`parse_tokens`] reads back to the same data.
pub fn presentation(rtype: RecordType, rdata: &RData) -> String {
    match rdata {
        RData::Unknown { rdata, .. } => {
            let bytes = &rdata.anything;
            let hex = |b: &[u8]| -> String { b.iter().map(|b| format!("{b:02X}")).collect() };
            let dnssec = is_dnssec_type(rtype)
                .then(|| super::rdata_dnssec::present(rtype, bytes))
                .flatten();
            match u16::from(rtype) {
                _ if dnssec.is_some() => dnssec.unwrap_or_default(),
                TYPE_SPF => format!("SPF \\# {} {}", bytes.len(), hex(bytes)),
                code => format!("TYPE{code} \\# {} {}", bytes.len(), hex(bytes)),
            }
        }
        RData::TXT(txt) => {
            let strings: Vec<String> = txt
                .txt_data
                .iter()
                .map(|s| {
                    let mut q = String::from("\"");
                    for &b in s.iter() {
                        match b {
                            b'"' | b'\\' => {
                                q.push('\\');
                                q.push(char::from(b));
                            }
                            0x20..=0x7e => q.push(char::from(b)),
                            _ => q.push_str(&format!("\\{b:03}")),
                        }
                    }
                    q.push('"');
                    q
                })
                .collect();
            format!("TXT {}", strings.join(" "))
        }
        RData::CNAME(n) => format!("CNAME {}", n.0.to_ascii()),
        RData::NS(n) => format!("NS {}", n.0.to_ascii()),
        RData::PTR(n) => format!("PTR {}", n.0.to_ascii()),
        RData::ANAME(n) => format!("ANAME {}", n.0.to_ascii()),
        RData::MX(mx) => format!("MX {} {}", mx.preference, mx.exchange.to_ascii()),
        RData::SRV(srv) => format!(
            "SRV {} {} {} {}",
            srv.priority,
            srv.weight,
            srv.port,
            srv.target.to_ascii()
        ),
        RData::SOA(soa) => format!(
            "SOA {} {} {} {} {} {} {}",
            soa.mname.to_ascii(),
            soa.rname.to_ascii(),
            soa.serial,
            soa.refresh,
            soa.retry,
            soa.expire,
            soa.minimum
        ),
        other => match other.to_bytes() {
            // Types whose Display is not zone-file syntax fall back to the generic form.
            Ok(bytes) if !display_round_trips(rtype) => {
                let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
                format!("TYPE{} \\# {} {hex}", u16::from(rtype), bytes.len())
            }
            _ => format!("{rtype} {other}"),
        },
    }
}

/// Whether this module both reads and writes `rtype`'s text form (the rest go through
/// hickory-proto's parsers and writers).
pub fn own_text_form(rtype: RecordType) -> bool {
    matches!(
        rtype,
        RecordType::A
            | RecordType::AAAA
            | RecordType::CNAME
            | RecordType::NS
            | RecordType::PTR
            | RecordType::ANAME
            | RecordType::MX
            | RecordType::SRV
            | RecordType::SOA
            | RecordType::TXT
            | RecordType::Unknown(_)
    ) || u16::from(rtype) == TYPE_SPF
        || is_dnssec_type(rtype)
}

/// Types whose hickory Display output is accepted back by [`parse_tokens`] unchanged.
fn display_round_trips(rtype: RecordType) -> bool {
    matches!(
        rtype,
        RecordType::A
            | RecordType::AAAA
            | RecordType::NS
            | RecordType::CNAME
            | RecordType::PTR
            | RecordType::MX
            | RecordType::SOA
            | RecordType::SRV
            | RecordType::CAA
            | RecordType::NAPTR
            | RecordType::SSHFP
            | RecordType::TLSA
            | RecordType::SVCB
            | RecordType::HTTPS
    )
}

/// An RR type from its mnemonic, RFC 3597's `TYPEnnn`, or `SPF`.
pub fn parse_type(token: &str) -> Option<RecordType> {
    let upper = token.to_ascii_uppercase();
    if let Some(code) = upper
        .strip_prefix("TYPE")
        .and_then(|n| n.parse::<u16>().ok())
    {
        return Some(RecordType::from(code));
    }
    if upper == "SPF" {
        return Some(RecordType::from(TYPE_SPF));
    }
    upper.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Name {
        Name::from_ascii("example.com.").unwrap()
    }

    fn value(rtype: RecordType, text: &str) -> Result<String, RdataError> {
        parse_value(rtype, text, &origin()).map(|r| r.to_string())
    }

    #[test]
    fn values_never_carry_a_second_line_a_directive_or_trailing_data() {
        let refused = [
            (RecordType::A, "192.0.2.1\n$INCLUDE /etc/passwd"),
            (RecordType::A, "192.0.2.1\r\n192.0.2.2"),
            (RecordType::A, "192.0.2.1\n192.0.2.2"),
            (RecordType::A, "192.0.2.1 garbage trailing"),
            (RecordType::A, "192.0.2.1 ; comment"),
            (RecordType::A, "( 192.0.2.1 )"),
            (RecordType::CAA, "0 issue [\"ca.example\""),
            (RecordType::TXT, "\"a\"b"),
            (RecordType::NS, "4\\ .84"),
            (RecordType::MX, "0 bücher.example."),
            (RecordType::CAA, "0 \" issue\" \"ca.example\""),
            (RecordType::A, "$INCLUDE /etc/passwd"),
            (RecordType::TXT, "\"a\" $INCLUDE /etc/passwd"),
            (RecordType::TXT, "\"a\"\n$INCLUDE x"),
            (RecordType::TXT, "\"unterminated"),
            (RecordType::TXT, "\"nul\u{0}\""),
            (RecordType::MX, "10 mail.example.com. extra"),
            (RecordType::CNAME, "a.example.com. b.example.com."),
            (RecordType::SOA, "ns1 hostmaster 1 2 3 4 5 6"),
            (RecordType::A, ""),
            (RecordType::from(65280), "abc"),
        ];
        for (rtype, text) in refused {
            assert!(value(rtype, text).is_err(), "{rtype} {text:?} was accepted");
        }
    }

    #[test]
    fn each_type_reads_its_fields_and_names_are_made_absolute() {
        let accepted = [
            (RecordType::A, "192.0.2.1", "192.0.2.1"),
            (RecordType::AAAA, "2001:db8::1", "2001:db8::1"),
            (RecordType::CNAME, "www", "www.example.com."),
            (RecordType::CNAME, "@", "example.com."),
            (RecordType::MX, "10 mail", "10 mail.example.com."),
            (RecordType::MX, "10 mail.other.net.", "10 mail.other.net."),
            (RecordType::SRV, "0 5 5060 sip", "0 5 5060 sip.example.com."),
            (
                RecordType::TXT,
                "\"semi;colon (paren) $dollar\" two",
                "semi;colon (paren) $dollartwo",
            ),
            (
                RecordType::CAA,
                "0 issue \"letsencrypt.org\"",
                "0 issue \"letsencrypt.org\"",
            ),
        ];
        for (rtype, text, want) in accepted {
            let got = value(rtype, text).unwrap_or_else(|e| panic!("{rtype} {text:?}: {e}"));
            assert_eq!(got, want, "{rtype} {text:?}");
        }
        let ds = parse_value(RecordType::DS, "60485 5 1 2BB183AF5F2250 8A6A6B", &origin());
        assert!(ds.is_ok(), "{ds:?}");
        let generic = parse_value(RecordType::from(65280), "\\# 4 0A000001", &origin());
        assert!(generic.is_ok(), "{generic:?}");
    }

    #[test]
    fn presentation_reads_back_to_the_same_data() {
        let cases = [
            (RecordType::TXT, "\"a\\\"b\" \"\\200\""),
            (RecordType::SOA, "ns1 hostmaster 1 7200 900 1209600 86400"),
            (RecordType::NAPTR, "100 10 \"S\" \"SIP+D2U\" \"\" _sip._udp"),
            (RecordType::HTTPS, "1 . alpn=h2"),
        ];
        for (rtype, text) in cases {
            let rdata = parse_value(rtype, text, &origin()).unwrap();
            let shown = presentation(rtype, &rdata);
            let fields: Vec<&str> = shown.splitn(2, ' ').collect();
            let again = parse_value(rtype, fields[1], &origin()).unwrap();
            assert_eq!(rdata, again, "{shown}");
        }
    }
}
