//! The text forms of DNSSEC records a zone signed elsewhere holds (RFC 4034, RFC 5155, RFC
//! 7344): DNSKEY and CDNSKEY, RRSIG, NSEC, NSEC3, NSEC3PARAM, DS and CDS. Each is read into
//! its wire RDATA and kept as it is (any algorithm, any digest): the server serves these
//! records, it does not interpret keys or check signatures. [`present`] writes a wire RDATA
//! back in the form [`parse`] reads.

use data_encoding::{BASE32HEX_NOPAD, BASE64, HEXUPPER_PERMISSIVE};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable};

use super::rdata::{RdataError, parse_type};

/// True for the types read here.
pub fn is_dnssec_type(rtype: RecordType) -> bool {
    matches!(
        rtype,
        RecordType::DNSKEY
            | RecordType::CDNSKEY
            | RecordType::RRSIG
            | RecordType::NSEC
            | RecordType::NSEC3
            | RecordType::NSEC3PARAM
            | RecordType::DS
            | RecordType::CDS
    )
}

fn invalid(message: impl Into<String>) -> RdataError {
    RdataError::Invalid(message.into())
}

/// The fields of a presentation form, in order.
struct Fields<'a> {
    rtype: RecordType,
    tokens: &'a [&'a str],
    at: usize,
}

impl<'a> Fields<'a> {
    fn next(&mut self, what: &str) -> Result<&'a str, RdataError> {
        let token = self
            .tokens
            .get(self.at)
            .copied()
            .ok_or_else(|| invalid(format!("{} needs a {what}", self.rtype)))?;
        self.at += 1;
        Ok(token)
    }

    fn number<T: std::str::FromStr>(&mut self, what: &str) -> Result<T, RdataError>
    where
        T::Err: std::fmt::Display,
    {
        let token = self.next(what)?;
        token
            .parse()
            .map_err(|e| invalid(format!("{} {what} {token:?}: {e}", self.rtype)))
    }

    /// Every token left, joined (base64 and hex may be split by white space).
    fn rest(&mut self) -> String {
        let rest = self.tokens.get(self.at..).unwrap_or_default().concat();
        self.at = self.tokens.len();
        rest
    }

    fn done(&self) -> Result<(), RdataError> {
        match self.tokens.len() - self.at.min(self.tokens.len()) {
            0 => Ok(()),
            n => Err(invalid(format!("{}: {n} field(s) too many", self.rtype))),
        }
    }
}

/// Reads `rtype`'s presentation form (`tokens`, names relative to `origin`) into wire RDATA.
pub fn parse(rtype: RecordType, tokens: &[&str], origin: &Name) -> Result<Vec<u8>, RdataError> {
    let mut f = Fields {
        rtype,
        tokens,
        at: 0,
    };
    let mut out = Vec::new();
    match rtype {
        RecordType::DNSKEY | RecordType::CDNSKEY => {
            // RFC 4034 section 2.2: flags, protocol, algorithm, public key in base64.
            out.extend(f.number::<u16>("flags")?.to_be_bytes());
            out.push(f.number::<u8>("protocol")?);
            out.push(f.number::<u8>("algorithm")?);
            out.extend(base64(rtype, &f.rest(), "public key")?);
        }
        RecordType::DS | RecordType::CDS => {
            // RFC 4034 section 5.3: key tag, algorithm, digest type, digest in hex.
            out.extend(f.number::<u16>("key tag")?.to_be_bytes());
            out.push(f.number::<u8>("algorithm")?);
            out.push(f.number::<u8>("digest type")?);
            let digest = f.rest();
            if digest.is_empty() {
                return Err(invalid(format!("{rtype} needs a digest")));
            }
            out.extend(hex(rtype, &digest, "digest")?);
        }
        RecordType::RRSIG => {
            // RFC 4034 section 3.2.
            let covered = f.next("type covered")?;
            let covered = parse_type(covered)
                .ok_or_else(|| invalid(format!("RRSIG type covered {covered:?}: no such type")))?;
            out.extend(u16::from(covered).to_be_bytes());
            out.push(f.number::<u8>("algorithm")?);
            out.push(f.number::<u8>("labels")?);
            out.extend(f.number::<u32>("original TTL")?.to_be_bytes());
            out.extend(time(f.next("expiration")?)?.to_be_bytes());
            out.extend(time(f.next("inception")?)?.to_be_bytes());
            out.extend(f.number::<u16>("key tag")?.to_be_bytes());
            out.extend(name(f.next("signer's name")?, origin)?);
            out.extend(base64(rtype, &f.rest(), "signature")?);
        }
        RecordType::NSEC => {
            // RFC 4034 section 4.2: next domain name, type list.
            out.extend(name(f.next("next domain name")?, origin)?);
            out.extend(type_bitmaps(&f.tokens[f.at..])?);
            f.at = f.tokens.len();
        }
        RecordType::NSEC3 | RecordType::NSEC3PARAM => {
            // RFC 5155 sections 3.3 and 4.3: hash algorithm, flags, iterations, salt (hex,
            // `-` for none); NSEC3 adds the next hashed owner (base32hex) and the type list.
            out.push(f.number::<u8>("hash algorithm")?);
            out.push(f.number::<u8>("flags")?);
            out.extend(f.number::<u16>("iterations")?.to_be_bytes());
            let salt = match f.next("salt")? {
                "-" => Vec::new(),
                s => hex(rtype, s, "salt")?,
            };
            out.push(u8::try_from(salt.len()).map_err(|_| invalid("NSEC3 salt too long"))?);
            out.extend(salt);
            if rtype == RecordType::NSEC3 {
                let next = f.next("next hashed owner name")?.to_ascii_uppercase();
                let hash = BASE32HEX_NOPAD
                    .decode(next.as_bytes())
                    .map_err(|e| invalid(format!("NSEC3 next hashed owner name: {e}")))?;
                out.push(u8::try_from(hash.len()).map_err(|_| invalid("NSEC3 hash too long"))?);
                out.extend(hash);
                out.extend(type_bitmaps(&f.tokens[f.at..])?);
                f.at = f.tokens.len();
            }
        }
        other => return Err(RdataError::NoTextForm(u16::from(other))),
    }
    f.done()?;
    if out.len() > usize::from(u16::MAX) {
        return Err(invalid(format!("{rtype} RDATA longer than 65535 bytes")));
    }
    Ok(out)
}

fn base64(rtype: RecordType, text: &str, what: &str) -> Result<Vec<u8>, RdataError> {
    if text.is_empty() {
        return Err(invalid(format!("{rtype} needs a {what}")));
    }
    BASE64
        .decode(text.as_bytes())
        .map_err(|e| invalid(format!("{rtype} {what}: {e}")))
}

fn hex(rtype: RecordType, text: &str, what: &str) -> Result<Vec<u8>, RdataError> {
    HEXUPPER_PERMISSIVE
        .decode(text.as_bytes())
        .map_err(|e| invalid(format!("{rtype} {what}: {e}")))
}

/// An absolute name's uncompressed wire form (RFC 4034 keeps names in these RDATAs
/// uncompressed and as written).
fn name(token: &str, origin: &Name) -> Result<Vec<u8>, RdataError> {
    let relative = Name::from_ascii(token).map_err(|e| invalid(format!("{token:?}: {e}")))?;
    let absolute = if relative.is_fqdn() {
        relative
    } else {
        relative
            .append_domain(origin)
            .map_err(|e| invalid(format!("{token:?}: {e}")))?
    };
    absolute
        .to_bytes()
        .map_err(|e| invalid(format!("{token:?}: {e}")))
}

/// An RRSIG time: `YYYYMMDDHHmmSS` (UTC), or seconds since the epoch (RFC 4034 section 3.2);
/// kept modulo 2^32 (serial number arithmetic, RFC 4034 section 3.1.5).
fn time(token: &str) -> Result<u32, RdataError> {
    let bad = || {
        invalid(format!(
            "RRSIG time {token:?}: not YYYYMMDDHHmmSS or seconds"
        ))
    };
    if token.len() == 14 && token.bytes().all(|b| b.is_ascii_digit()) {
        let n = |a: usize, b: usize| token[a..b].parse::<i64>().map_err(|_| bad());
        let (year, month, day) = (n(0, 4)?, n(4, 6)?, n(6, 8)?);
        let (hour, minute, second) = (n(8, 10)?, n(10, 12)?, n(12, 14)?);
        if !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return Err(bad());
        }
        let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60;
        return Ok((seconds + second).rem_euclid(1 << 32) as u32);
    }
    token.parse::<u32>().map_err(|_| bad())
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of `days` since 1970-01-01 (the inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// RFC 4034 section 4.1.2: the types, in windows of 256 with a bitmap of up to 32 bytes each.
fn type_bitmaps(tokens: &[&str]) -> Result<Vec<u8>, RdataError> {
    let mut codes = Vec::new();
    for t in tokens {
        let rtype = parse_type(t).ok_or_else(|| invalid(format!("type {t:?}: no such type")))?;
        codes.push(u16::from(rtype));
    }
    codes.sort_unstable();
    codes.dedup();
    let mut out = Vec::new();
    let mut i = 0;
    while i < codes.len() {
        let window = codes[i] >> 8;
        let mut bitmap = [0u8; 32];
        let mut len = 0;
        while i < codes.len() && codes[i] >> 8 == window {
            let low = usize::from(codes[i] & 0xff);
            bitmap[low / 8] |= 0x80 >> (low % 8);
            len = low / 8 + 1;
            i += 1;
        }
        out.push(window as u8);
        out.push(len as u8);
        out.extend_from_slice(&bitmap[..len]);
    }
    Ok(out)
}

/// The types of a type bitmap field, or `None` if it is malformed.
pub fn bitmap_types(mut bytes: &[u8]) -> Option<Vec<RecordType>> {
    let mut out = Vec::new();
    while let [window, len, rest @ ..] = bytes {
        let len = usize::from(*len);
        if len == 0 || len > 32 || rest.len() < len {
            return None;
        }
        for (i, byte) in rest[..len].iter().enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    let code = (u16::from(*window) << 8) | (i * 8 + bit) as u16;
                    out.push(RecordType::from(code));
                }
            }
        }
        bytes = &rest[len..];
    }
    Some(out)
}

/// A name at the start of `bytes`, and the bytes after it.
fn read_name(bytes: &[u8]) -> Option<(Name, &[u8])> {
    let mut decoder = BinDecoder::new(bytes);
    let name = Name::read(&mut decoder).ok()?;
    let used = bytes.len() - decoder.len();
    Some((name, &bytes[used..]))
}

fn types_text(types: &[RecordType]) -> String {
    types
        .iter()
        .map(|t| match t {
            RecordType::Unknown(code) => format!("TYPE{code}"),
            t => t.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `TYPE RDATA` in the presentation form [`parse`] reads; `None` if `bytes` is not a
/// well-formed RDATA of `rtype` (the caller writes the generic form then).
pub fn present(rtype: RecordType, bytes: &[u8]) -> Option<String> {
    let u16_at = |i: usize| Some(u16::from_be_bytes([*bytes.get(i)?, *bytes.get(i + 1)?]));
    let u32_at = |i: usize| {
        Some(u32::from_be_bytes([
            *bytes.get(i)?,
            *bytes.get(i + 1)?,
            *bytes.get(i + 2)?,
            *bytes.get(i + 3)?,
        ]))
    };
    let text = match rtype {
        RecordType::DNSKEY | RecordType::CDNSKEY if bytes.len() > 4 => format!(
            "{rtype} {} {} {} {}",
            u16_at(0)?,
            bytes[2],
            bytes[3],
            BASE64.encode(&bytes[4..])
        ),
        RecordType::DS | RecordType::CDS if bytes.len() > 4 => format!(
            "{rtype} {} {} {} {}",
            u16_at(0)?,
            bytes[2],
            bytes[3],
            data_encoding::HEXUPPER.encode(&bytes[4..])
        ),
        RecordType::RRSIG if bytes.len() > 18 => {
            let covered = RecordType::from(u16_at(0)?);
            let (signer, signature) = read_name(&bytes[18..])?;
            if signature.is_empty() {
                return None;
            }
            format!(
                "RRSIG {} {} {} {} {} {} {} {} {}",
                types_text(&[covered]),
                bytes[2],
                bytes[3],
                u32_at(4)?,
                time_text(u32_at(8)?),
                time_text(u32_at(12)?),
                u16_at(16)?,
                signer.to_ascii(),
                BASE64.encode(signature)
            )
        }
        RecordType::NSEC => {
            let (next, bitmap) = read_name(bytes)?;
            format!(
                "NSEC {} {}",
                next.to_ascii(),
                types_text(&bitmap_types(bitmap)?)
            )
            .trim_end()
            .to_string()
        }
        RecordType::NSEC3 | RecordType::NSEC3PARAM if bytes.len() >= 5 => {
            let salt_len = usize::from(bytes[4]);
            let salt = bytes.get(5..5 + salt_len)?;
            let salt = if salt.is_empty() {
                "-".to_string()
            } else {
                data_encoding::HEXUPPER.encode(salt)
            };
            let head = format!("{rtype} {} {} {} {salt}", bytes[0], bytes[1], u16_at(2)?);
            let rest = &bytes[5 + salt_len..];
            if rtype == RecordType::NSEC3PARAM {
                if !rest.is_empty() {
                    return None;
                }
                head
            } else {
                let hash_len = usize::from(*rest.first()?);
                let hash = rest.get(1..1 + hash_len)?;
                let types = bitmap_types(&rest[1 + hash_len..])?;
                format!(
                    "{head} {} {}",
                    BASE32HEX_NOPAD.encode(hash),
                    types_text(&types)
                )
                .trim_end()
                .to_string()
            }
        }
        _ => return None,
    };
    Some(text)
}

/// An RRSIG time as `YYYYMMDDHHmmSS`, in the 136 years around now that serial number
/// arithmetic gives it (RFC 4034 section 3.1.5); seconds if it falls outside 4-digit years.
fn time_text(seconds: u32) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    // The value nearest to now that is congruent to `seconds` modulo 2^32.
    let base = now - i64::from(now as u32);
    let mut t = base + i64::from(seconds);
    if t - now > 1 << 31 {
        t -= 1 << 32;
    } else if now - t > 1 << 31 {
        t += 1 << 32;
    }
    let (year, month, day) = civil_from_days(t.div_euclid(86_400));
    if !(1000..=9999).contains(&year) {
        return seconds.to_string();
    }
    let s = t.rem_euclid(86_400);
    format!(
        "{year:04}{month:02}{day:02}{:02}{:02}{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// The type an RRSIG covers, from its RDATA as [`parse`] keeps it; `None` for other data.
pub fn rrsig_covers(rdata: &RData) -> Option<RecordType> {
    match rdata {
        RData::Unknown { code, rdata } if *code == RecordType::RRSIG => {
            let bytes = &rdata.anything;
            Some(RecordType::from(u16::from_be_bytes([
                *bytes.first()?,
                *bytes.get(1)?,
            ])))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Name {
        Name::from_ascii("signed.test.").unwrap()
    }

    fn round_trip(rtype: RecordType, text: &str) -> String {
        let tokens: Vec<&str> = text.split_whitespace().collect();
        let wire = parse(rtype, &tokens, &origin()).unwrap_or_else(|e| panic!("{text}: {e}"));
        let shown = present(rtype, &wire).unwrap();
        let again: Vec<&str> = shown.split_whitespace().skip(1).collect();
        assert_eq!(parse(rtype, &again, &origin()).unwrap(), wire, "{shown}");
        shown
    }

    #[test]
    fn signed_zone_records_read_and_write_back() {
        assert_eq!(
            round_trip(
                RecordType::DNSKEY,
                "257 3 13 v3OwxeHugMI5DahP4RB8CcCzaCGTXzSoTj/C bJZCG36xc5s8AbY8nTRjh90vuab8i3ctJvTn 723/4hZ5WSwMpA=="
            ),
            "DNSKEY 257 3 13 v3OwxeHugMI5DahP4RB8CcCzaCGTXzSoTj/CbJZCG36xc5s8AbY8nTRjh90vuab8i3ctJvTn723/4hZ5WSwMpA=="
        );
        assert_eq!(
            round_trip(
                RecordType::RRSIG,
                "SOA 13 2 300 20270106033502 20261207033502 62856 signed.test. 6fydVi2a7Utab6rCtuciRFXd0xmvTUKU6svO X2JPUG8c1iOH82cBK1z6C1VhNvH3PbXuEWpf sRBg/CYxCMBDbg=="
            ),
            "RRSIG SOA 13 2 300 20270106033502 20261207033502 62856 signed.test. 6fydVi2a7Utab6rCtuciRFXd0xmvTUKU6svOX2JPUG8c1iOH82cBK1z6C1VhNvH3PbXuEWpfsRBg/CYxCMBDbg=="
        );
        assert_eq!(
            round_trip(RecordType::NSEC, "alias NS SOA RRSIG NSEC DNSKEY TYPE1234"),
            "NSEC alias.signed.test. NS SOA RRSIG NSEC DNSKEY TYPE1234"
        );
        assert_eq!(
            round_trip(
                RecordType::NSEC3,
                "1 1 0 - 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR A RRSIG"
            ),
            "NSEC3 1 1 0 - 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR A RRSIG"
        );
        assert_eq!(
            round_trip(RecordType::NSEC3PARAM, "1 0 10 AABBCCDD"),
            "NSEC3PARAM 1 0 10 AABBCCDD"
        );
        assert_eq!(
            round_trip(
                RecordType::CDS,
                "60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118"
            ),
            "CDS 60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118"
        );
        // RFC 4034 section 3.3's example times, as seconds too.
        let wire = parse(
            RecordType::RRSIG,
            &["A", "5", "3", "86400", "1081539377", "1078944977", "2642", "example.", "oJB1W6WNGv+ldvQ3WDG0MQkg5IEhjRip8WTrPYGv07h108dUKGMeDPKijVCHX3DDKdfb+v6oB9wfuh3DTJXUAfI/M0zmO/zz8bW0Rznl8O3tGNazPwQKkRN20XPXV6nwwfoXmJQbsLNrLfkGJ5D6fwFm8nN+6pBzeDQfsS3Ap3o="],
            &origin(),
        )
        .unwrap();
        assert!(
            present(RecordType::RRSIG, &wire)
                .unwrap()
                .contains(" 20040409193617 20040310185617 ")
        );
        let rdata = RData::Unknown {
            code: RecordType::RRSIG,
            rdata: hickory_proto::rr::rdata::NULL::with(wire),
        };
        assert_eq!(rrsig_covers(&rdata), Some(RecordType::A));
    }

    #[test]
    fn malformed_dnssec_data_is_refused() {
        for (rtype, text) in [
            (RecordType::DNSKEY, "257 3 13"),
            (RecordType::DNSKEY, "257 3 13 not*base64"),
            (
                RecordType::RRSIG,
                "NOSUCHTYPE 13 2 300 20270106033502 20261207033502 1 x. AAAA",
            ),
            (
                RecordType::RRSIG,
                "A 13 2 300 20271306033502 20261207033502 1 x. AAAA",
            ),
            (RecordType::NSEC, "next. A BOGUS"),
            (RecordType::NSEC3, "1 0 0 - not-base32 A"),
            (RecordType::NSEC3PARAM, "1 0 0 - extra"),
            (RecordType::DS, "1 13 2"),
        ] {
            let tokens: Vec<&str> = text.split_whitespace().collect();
            assert!(parse(rtype, &tokens, &origin()).is_err(), "{rtype} {text}");
        }
    }
}
