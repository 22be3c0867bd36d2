//! Five-field cron expressions (the dialect of Kubernetes CronJobs) and the longest gap
//! between two runs, which the RPO rule compares against `objectives.rpo`.

use std::ops::Range;

/// A validated cron schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    source: String,
    minutes: u64,
    hours: u32,
    days_of_month: u32,
    months: u16,
    days_of_week: u8,
    dom_restricted: bool,
    dow_restricted: bool,
}

/// Why an expression is not a valid schedule, with the byte range (within the expression)
/// of the offending field when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronError {
    pub message: String,
    pub range: Option<Range<usize>>,
}

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const FIELDS: [(&str, u32, u32); 5] =
    [("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7)];

impl Cron {
    pub fn parse(input: &str) -> Result<Cron, CronError> {
        let expanded = match input.trim() {
            "@yearly" | "@annually" => Some("0 0 1 1 *"),
            "@monthly" => Some("0 0 1 * *"),
            "@weekly" => Some("0 0 * * 0"),
            "@daily" | "@midnight" => Some("0 0 * * *"),
            "@hourly" => Some("0 * * * *"),
            other if other.starts_with('@') => {
                return Err(CronError {
                    message: format!(
                        "`{other}` is not a schedule macro (use @hourly, @daily, @weekly, @monthly or @yearly)"
                    ),
                    range: None,
                });
            }
            _ => None,
        };
        let text = expanded.unwrap_or(input);
        let fields: Vec<(usize, &str)> = split_fields(text);
        if fields.len() != 5 {
            return Err(CronError {
                message: format!(
                    "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
                    fields.len()
                ),
                range: None,
            });
        }
        let mut sets = [0u64; 5];
        for (i, (offset, field)) in fields.iter().enumerate() {
            let (name, lo, hi) = FIELDS[i];
            let names: &[&str] = match i {
                3 => &MONTHS,
                4 => &DAYS,
                _ => &[],
            };
            let name_base = if i == 3 { 1 } else { 0 };
            sets[i] = parse_field(field, lo, hi, names, name_base).map_err(|message| CronError {
                message: format!("{name} field `{field}`: {message}"),
                range: if expanded.is_some() { None } else { Some(*offset..offset + field.len()) },
            })?;
        }
        // Sunday may be written 0 or 7.
        let mut dow = sets[4];
        if dow & (1 << 7) != 0 {
            dow = (dow | 1) & 0x7f;
        }
        let cron = Cron {
            source: input.to_string(),
            minutes: sets[0],
            hours: sets[1] as u32,
            days_of_month: sets[2] as u32,
            months: sets[3] as u16,
            days_of_week: dow as u8,
            dom_restricted: !fields[2].1.starts_with('*'),
            dow_restricted: !fields[4].1.starts_with('*'),
        };
        if cron.max_gap_minutes().is_none() {
            return Err(CronError { message: "the schedule never runs (no such date)".into(), range: None });
        }
        Ok(cron)
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The longest time between two consecutive runs, in minutes, over a whole 28-year
    /// calendar cycle (after which weekdays and leap years repeat). `None` if it never runs.
    pub fn max_gap_minutes(&self) -> Option<u64> {
        let day_minutes: Vec<u64> = (0..24u64)
            .filter(|h| self.hours & (1 << h) != 0)
            .flat_map(|h| (0..60u64).filter(|m| self.minutes & (1 << m) != 0).map(move |m| h * 60 + m))
            .collect();
        let (first, last) = (*day_minutes.first()?, *day_minutes.last()?);
        let within_day = day_minutes.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);

        const CYCLE_DAYS: u64 = 10_227; // 28 years starting 2001-01-01, a Monday
        let mut first_day: Option<u64> = None;
        let mut prev_day: Option<u64> = None;
        let mut max_gap = within_day;
        let (mut year, mut month, mut day) = (2001u32, 1u32, 1u32);
        for index in 0..CYCLE_DAYS {
            let weekday = ((index + 1) % 7) as u32; // 0 = Sunday; day 0 is a Monday
            if self.runs_on(month, day, weekday) {
                if let Some(prev) = prev_day {
                    max_gap = max_gap.max((index - prev) * 1_440 + first - last);
                }
                first_day.get_or_insert(index);
                prev_day = Some(index);
            }
            day += 1;
            if day > days_in_month(year, month) {
                day = 1;
                month += 1;
                if month > 12 {
                    month = 1;
                    year += 1;
                }
            }
        }
        let (first_day, last_day) = (first_day?, prev_day?);
        // The cycle wraps: the last run of the cycle is followed by the first of the next.
        max_gap = max_gap.max((first_day + CYCLE_DAYS - last_day) * 1_440 + first - last);
        Some(max_gap)
    }

    fn runs_on(&self, month: u32, day: u32, weekday: u32) -> bool {
        if self.months & (1 << month) == 0 {
            return false;
        }
        let dom = self.days_of_month & (1 << day) != 0;
        let dow = self.days_of_week & (1 << weekday) != 0;
        // Vixie cron: when both day fields are restricted, either one matching is enough.
        match (self.dom_restricted, self.dow_restricted) {
            (true, true) => dom || dow,
            (true, false) => dom,
            (false, true) => dow,
            (false, false) => true,
        }
    }
}

fn split_fields(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                out.push((s, &text[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &text[s..]));
    }
    out
}

fn parse_field(field: &str, lo: u32, hi: u32, names: &[&str], name_base: u32) -> Result<u64, String> {
    let mut set = 0u64;
    for part in field.split(',') {
        if part.is_empty() {
            return Err("empty list element".into());
        }
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| format!("step `{s}` is not a number"))?;
                if step == 0 {
                    return Err("a step of 0 never advances".into());
                }
                (r, step)
            }
            None => (part, 1),
        };
        let (start, end) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(a, lo, hi, names, name_base)?, value(b, lo, hi, names, name_base)?);
            if a > b {
                return Err(format!("range `{range}` goes backwards"));
            }
            (a, b)
        } else {
            let v = value(range, lo, hi, names, name_base)?;
            // `5/15` means "from 5 to the end, every 15", as in Vixie cron.
            (v, if part.contains('/') { hi } else { v })
        };
        let mut v = start;
        while v <= end {
            set |= 1 << v;
            v += step;
        }
    }
    Ok(set)
}

fn value(text: &str, lo: u32, hi: u32, names: &[&str], name_base: u32) -> Result<u32, String> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        return Ok(i as u32 + name_base);
    }
    let v: u32 = text.parse().map_err(|_| format!("`{text}` is not a number"))?;
    if v < lo || v > hi {
        return Err(format!("{v} is out of range {lo}-{hi}"));
    }
    Ok(v)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::Cron;

    fn gap(expr: &str) -> u64 {
        Cron::parse(expr).unwrap().max_gap_minutes().unwrap()
    }

    #[test]
    fn gaps_of_common_schedules() {
        assert_eq!(gap("0 */1 * * *"), 60);
        assert_eq!(gap("* * * * *"), 1);
        assert_eq!(gap("*/15 * * * *"), 15);
        assert_eq!(gap("0 */6 * * *"), 360);
        assert_eq!(gap("30 2 * * *"), 1_440);
        assert_eq!(gap("0 0 * * 0"), 10_080);
        assert_eq!(gap("@weekly"), 10_080);
        assert_eq!(gap("0 9-17 * * mon-fri"), 3_840); // Friday 17:00 → Monday 09:00
        assert_eq!(gap("0 0 1 * *"), 31 * 1_440);
        assert_eq!(gap("0 0 29 2 *"), (366 + 365 * 3) * 1_440); // leap days only
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "* * * *",
            "0 0 * * * *",
            "61 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 8",
            "*/0 * * * *",
            "5-1 * * * *",
            "a * * * *",
            "0 0 30 2 *",
            "@often",
            "1,,2 * * * *",
        ] {
            assert!(Cron::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn error_points_at_the_field() {
        let err = Cron::parse("0 25 * * *").unwrap_err();
        assert_eq!(err.range, Some(2..4));
        assert!(err.message.contains("hour"), "{}", err.message);
    }

    #[test]
    fn sunday_is_zero_or_seven() {
        assert_eq!(
            Cron::parse("0 0 * * 7").unwrap(),
            Cron { source: "0 0 * * 7".into(), ..Cron::parse("0 0 * * 0").unwrap() }
        );
    }
}
