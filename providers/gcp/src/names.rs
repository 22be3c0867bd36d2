//! Names and values under Google Cloud's rules: label values, instance names, request ids
//! and RFC 3339 timestamps.

/// A label value: lowercase letters, digits, `-` and `_`, at most 63 characters.
pub fn label_value(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' { c } else { '-' })
        .collect();
    out.truncate(63);
    out
}

/// FNV-1a, for short stable suffixes.
fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Squeezes `s` into `[a-z]([-a-z0-9]{0,61}[a-z0-9])?` with room for `reserve` more characters;
/// a name cut short gets a hash of the whole so two long names stay distinct.
fn resource_name(s: &str, reserve: usize) -> String {
    let mut out = String::new();
    for c in s.chars().map(|c| c.to_ascii_lowercase()) {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() { c } else { '-' };
        if !(c == '-' && (out.is_empty() || out.ends_with('-'))) {
            out.push(c);
        }
    }
    if !out.starts_with(|c: char| c.is_ascii_lowercase()) {
        out.insert_str(0, "i-");
    }
    let max = 63 - reserve;
    if out.len() > max {
        out.truncate(max - 9);
        out = format!("{}-{:08x}", out.trim_end_matches('-'), hash(s) as u32);
    }
    out.trim_end_matches('-').to_string()
}

/// The instance name of `pool[index]` in `region`, the same on every run, so a repeated insert
/// meets the first one instead of making a second instance.
pub fn instance_name(project: &str, region: &str, pool: &str, index: i64) -> String {
    resource_name(&format!("{project}-{region}-{pool}-{index}"), 0)
}

/// The name a replacement takes while the instance it replaces still exists.
pub fn replacement_name(base: &str, token: &str) -> String {
    let suffix: String = token.chars().filter(char::is_ascii_alphanumeric).take(6).collect::<String>().to_lowercase();
    format!("{}-r{suffix}", resource_name(base, suffix.len() + 2))
}

/// An idempotency token as the UUID Compute Engine's `requestId` must be.
pub fn request_id(token: &str) -> String {
    let hex: String = if token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()) {
        token.to_ascii_lowercase()
    } else {
        drplan_core::provider::idempotency_token(token, "requestId")
    };
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// The `requestId` of inserting `name` for the change whose token is `token`: each insert a
/// change makes (a replacement makes one under another name) needs its own, since Compute
/// Engine answers a reused id with the first request's operation.
pub fn insert_request_id(token: &str, name: &str) -> String {
    request_id(&drplan_core::provider::idempotency_token(token, name))
}

/// Seconds since the Unix epoch of an RFC 3339 timestamp (`2026-11-27T13:00:00.123Z`,
/// `...-00:00`, `...+02:00`).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<i64>().ok());
    let (y, mo, d, h, mi, sec) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    let rest = s.get(19..)?;
    let rest = rest.strip_prefix('.').map(|r| r.trim_start_matches(|c: char| c.is_ascii_digit())).unwrap_or(rest);
    let offset = match rest {
        "Z" | "z" | "" => 0,
        _ => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let oh = rest.get(1..3)?.parse::<i64>().ok()?;
            let om = rest.get(4..6)?.parse::<i64>().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(name: &str) -> bool {
        let b = name.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b[0].is_ascii_lowercase()
            && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && !name.ends_with('-')
    }

    #[test]
    fn instance_names_follow_gce_rules() {
        assert_eq!(
            instance_name("bot-core", "asia-pacific-1", "full-stack", 2),
            "bot-core-asia-pacific-1-full-stack-2"
        );
        assert_eq!(instance_name("Bot_Core", "9x", "web", 0), "bot-core-9x-web-0");
        let long = instance_name(&"p".repeat(80), "r", "web", 1);
        assert!(valid(&long) && long.len() <= 63, "{long}");
        assert_ne!(long, instance_name(&"p".repeat(80), "r", "web", 2));
        assert!(valid(&instance_name("1", "_", "-", 0)));
        let r = replacement_name(&long, "0123456789abcdef0123456789abcdef");
        assert!(valid(&r) && r.ends_with("-r012345"), "{r}");
        assert_eq!(label_value("US-East_1.a"), "us-east_1-a");
    }

    #[test]
    fn request_ids_are_uuids() {
        assert_eq!(request_id("0123456789abcdef0123456789ABCDEF"), "01234567-89ab-cdef-0123-456789abcdef");
        assert_eq!(request_id("short").len(), 36);
    }

    #[test]
    fn timestamps_parse() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2026-11-27T13:00:00.000-00:00"), Some(1_795_784_400));
        assert_eq!(parse_rfc3339("2026-11-27T15:00:00+02:00"), Some(1_795_784_400));
        assert_eq!(parse_rfc3339("nonsense"), None);
    }
}
