//! Durations as written in configurations: `30s`, `15m`, `2h`, `30d`, or sums like `1h30m`.

use std::fmt;

/// A length of time in whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(u64);

impl Duration {
    pub const fn from_secs(secs: u64) -> Duration {
        Duration(secs)
    }

    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// Parses the configuration syntax. The error text explains what was expected.
    pub fn parse(input: &str) -> Result<Duration, String> {
        if input.is_empty() {
            return Err("the duration is empty".into());
        }
        let mut total: u64 = 0;
        let mut rest = input;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(format!("expected a number at `{rest}`"));
            }
            let (number, tail) = rest.split_at(digits);
            let unit_len = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
            if unit_len == 0 {
                return Err(format!("`{number}` has no unit"));
            }
            let (unit, tail) = tail.split_at(unit_len);
            let scale = match unit {
                "s" => 1,
                "m" => 60,
                "h" => 3_600,
                "d" => 86_400,
                "w" => 604_800,
                other => return Err(format!("`{other}` is not a unit")),
            };
            let n: u64 = number.parse().map_err(|_| format!("`{number}` is too large"))?;
            total = n
                .checked_mul(scale)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| "the duration is too large".to_string())?;
            rest = tail;
        }
        if total == 0 {
            return Err("the duration must be longer than zero".into());
        }
        Ok(Duration(total))
    }
}

impl fmt::Display for Duration {
    /// The shortest exact rendering in the configuration syntax (`90m` → `1h30m`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.0;
        for (unit, scale) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
            if rest >= scale {
                write!(f, "{}{unit}", rest / scale)?;
                rest %= scale;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Duration;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!(Duration::parse("30s").unwrap().as_secs(), 30);
        assert_eq!(Duration::parse("15m").unwrap().as_secs(), 900);
        assert_eq!(Duration::parse("2h").unwrap().as_secs(), 7_200);
        assert_eq!(Duration::parse("30d").unwrap().as_secs(), 2_592_000);
        assert_eq!(Duration::parse("1h30m").unwrap().as_secs(), 5_400);
        assert_eq!(Duration::parse("1w").unwrap().as_secs(), 604_800);
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["", "30", "30 days", "h", "3x", "0s", "-1h", "1.5h", "99999999999999999999d"] {
            assert!(Duration::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn displays_canonically() {
        assert_eq!(Duration::parse("90m").unwrap().to_string(), "1h30m");
        assert_eq!(Duration::parse("30d").unwrap().to_string(), "30d");
        assert_eq!(Duration::parse("3600s").unwrap().to_string(), "1h");
    }
}
