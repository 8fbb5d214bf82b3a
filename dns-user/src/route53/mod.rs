//! Route 53's wire protocol, as aws-cli, boto3, octoDNS and Terraform speak it: REST-XML under
//! `/2013-04-01/` ([`shapes`]), names in Route 53's escaped form ([`api_name`],
//! [`plain_name`]), ids with and without their `/hostedzone/`-style prefixes ([`bare_id`]),
//! and AWS Signature Version 4 ([`sigv4`]). The server (`control::api`) and the CLI
//! (`client`) both speak it through these types.

pub mod shapes;
pub mod sigv4;

/// `name` as Route 53 writes it in responses: every byte outside `a-z0-9-_.` as a three-digit
/// octal escape (a wildcard `*` is `\052`), so clients that compare names as Route 53 returns
/// them (Terraform, octoDNS) see the same text.
pub fn api_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.') {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\{b:03o}"));
        }
    }
    out
}

/// `name` as a client may send it, raw (`*.example.com`) or escaped (`\052.example.com`): the
/// octal escapes of printable characters decoded (`\.` and `\\` stay escaped: they are not
/// label text).
pub fn plain_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let escape = &rest[at..];
        let code = escape
            .get(1..4)
            .filter(|d| d.bytes().all(|c| (b'0'..=b'7').contains(&c)))
            .and_then(|d| u32::from_str_radix(d, 8).ok());
        match code {
            Some(code @ 0x21..=0x7e) => {
                let c = code as u8 as char;
                if matches!(c, '.' | '\\') {
                    out.push('\\');
                }
                out.push(c);
                rest = &escape[4..];
            }
            _ => {
                out.push('\\');
                rest = &escape[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// An id without the prefix Route 53 returns it with (`/hostedzone/Z1` → `Z1`, `/change/C1`
/// → `C1`): clients send both.
pub fn bare_id(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

/// A random UUID (version 4 layout): request ids, health check ids.
pub fn uuid() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("the system's random source works");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_between_raw_and_route53_forms() {
        assert_eq!(api_name("*.example.com."), "\\052.example.com.");
        assert_eq!(api_name("a_b-1.example.com."), "a_b-1.example.com.");
        assert_eq!(plain_name("\\052.example.com."), "*.example.com.");
        assert_eq!(plain_name("*.example.com"), "*.example.com");
        assert_eq!(plain_name(&api_name("x!~.example.")), "x!~.example.");
        assert_eq!(
            plain_name("a\\056b.example."),
            "a\\.b.example.",
            "a dot in a label"
        );
        assert_eq!(plain_name("a\\9"), "a\\9", "not an escape");
        assert_eq!(plain_name("bücher.\\052"), "bücher.*", "UTF-8 kept");
    }

    #[test]
    fn ids_lose_their_prefix() {
        assert_eq!(bare_id("/hostedzone/Z0ABC"), "Z0ABC");
        assert_eq!(bare_id("Z0ABC"), "Z0ABC");
        assert_eq!(bare_id("/change/C1"), "C1");
    }
}
