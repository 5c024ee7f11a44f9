//! Go-style durations (`8760h`, `1h30m`, `8760h0m0s`, `30m`) plus days (`30d`): parsing and
//! display in Go's canonical form, or in days when given in days. Owns no policy about which
//! durations make sense.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A non-negative duration with whole-second precision, as written on the command line.
/// Two durations are equal when their spans are, however they were written.
#[derive(Clone, Copy, Debug)]
pub struct Duration {
    seconds: u64,
    /// Written as whole days (`400d`): shown that way again.
    in_days: bool,
}

impl PartialEq for Duration {
    fn eq(&self, other: &Duration) -> bool {
        self.seconds == other.seconds
    }
}

impl Eq for Duration {}

impl PartialOrd for Duration {
    fn partial_cmp(&self, other: &Duration) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Duration {
    fn cmp(&self, other: &Duration) -> Ordering {
        self.seconds.cmp(&other.seconds)
    }
}

impl Duration {
    /// The longest duration parsed: Go's longest `time.Duration` (2562047h47m16.854775807s) in
    /// whole seconds. kubeadm refuses longer ones, and now plus this is still a date.
    pub const MAX: Duration = Duration::from_secs(9_223_372_036);

    /// A duration of `seconds` seconds.
    pub const fn from_secs(seconds: u64) -> Duration {
        Duration {
            seconds,
            in_days: false,
        }
    }

    /// A duration of `hours` hours.
    pub const fn from_hours(hours: u64) -> Duration {
        Duration::from_secs(hours * 3600)
    }

    /// Whole seconds.
    pub fn as_secs(self) -> u64 {
        self.seconds
    }

    /// Go's `time.Duration.String()` of it, whatever it was written as (`400d` is
    /// `9600h0m0s`): what Go programs such as kubeadm read.
    pub fn go(self) -> String {
        Duration::from_secs(self.seconds).to_string()
    }

    /// The same span as a `time::Duration`, for date arithmetic.
    pub fn to_time(self) -> time::Duration {
        time::Duration::seconds(i64::try_from(self.seconds).unwrap_or(i64::MAX))
    }
}

/// Seconds per unit, longest unit name first where one is a prefix of another.
const UNITS: &[(&str, f64)] = &[
    ("ms", 0.001),
    ("d", 86_400.0),
    ("h", 3_600.0),
    ("m", 60.0),
    ("s", 1.0),
];

impl FromStr for Duration {
    type Err = String;

    fn from_str(text: &str) -> Result<Duration, String> {
        let invalid = || format!("invalid duration {text:?} (expected e.g. 8760h, 1h30m, 30d)");
        if text == "0" {
            return Ok(Duration::from_secs(0));
        }
        let mut rest = text;
        let mut total = 0f64;
        if rest.is_empty() {
            return Err(invalid());
        }
        while !rest.is_empty() {
            let number_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(invalid)?;
            let number: f64 = rest[..number_len].parse().map_err(|_| invalid())?;
            rest = &rest[number_len..];
            let (unit, seconds) = UNITS
                .iter()
                .find(|(unit, _)| rest.starts_with(unit))
                .ok_or_else(invalid)?;
            total += number * seconds;
            rest = &rest[unit.len()..];
        }
        if !total.is_finite() || total.round() > Duration::MAX.seconds as f64 {
            return Err(format!(
                "duration {text:?} is too long (the longest is {}, as in kubeadm)",
                Duration::MAX
            ));
        }
        let whole_days = text
            .strip_suffix('d')
            .is_some_and(|days| !days.is_empty() && days.bytes().all(|b| b.is_ascii_digit()));
        Ok(Duration {
            seconds: total.round() as u64,
            in_days: whole_days,
        })
    }
}

impl fmt::Display for Duration {
    /// As written in days (`400d`), else Go's `time.Duration.String()` for whole seconds:
    /// `8760h0m0s`, `30m0s`, `45s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.in_days {
            return write!(f, "{}d", self.seconds / 86_400);
        }
        let (hours, minutes, seconds) = (
            self.seconds / 3600,
            self.seconds / 60 % 60,
            self.seconds % 60,
        );
        if hours > 0 {
            write!(f, "{hours}h{minutes}m{seconds}s")
        } else if minutes > 0 {
            write!(f, "{minutes}m{seconds}s")
        } else {
            write!(f, "{seconds}s")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_go_forms_and_days() {
        let secs = |s: &str| s.parse::<Duration>().map(Duration::as_secs);
        assert_eq!(secs("8760h"), Ok(8760 * 3600));
        assert_eq!(secs("8760h0m0s"), Ok(8760 * 3600));
        assert_eq!(secs("1h30m"), Ok(5400));
        assert_eq!(secs("30d"), Ok(30 * 86_400));
        assert_eq!(secs("1.5h"), Ok(5400));
        assert_eq!(secs("0"), Ok(0));
        assert_eq!(secs("2562047h47m16s"), Ok(9_223_372_036));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "h",
            "10",
            "10x",
            "1h-5m",
            "abc",
            "1e400h",
            "99999999999999999999h",
            "2562048h",
            "100000000h",
        ] {
            assert!(bad.parse::<Duration>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn displays_like_go() {
        assert_eq!(Duration::from_hours(8760).to_string(), "8760h0m0s");
        assert_eq!(Duration::from_secs(1800).to_string(), "30m0s");
        assert_eq!(Duration::from_secs(5).to_string(), "5s");
    }

    #[test]
    fn days_are_shown_as_given() {
        let days: Duration = "400d".parse().expect("a duration");
        assert_eq!(days.to_string(), "400d");
        assert_eq!(days.go(), "9600h0m0s");
        assert_eq!(days, "9600h".parse().expect("a duration"));
        assert_eq!(
            "1d12h".parse::<Duration>().map(|d| d.to_string()),
            Ok("36h0m0s".into())
        );
        assert_eq!(
            "0d".parse::<Duration>().map(|d| d.to_string()),
            Ok("0d".into())
        );
    }

    #[test]
    fn gos_longest_duration_is_the_limit() {
        assert_eq!(Duration::MAX.to_string(), "2562047h47m16s");
        assert_eq!("2562047h47m16s".parse(), Ok(Duration::MAX));
        assert!("2562047h47m17s".parse::<Duration>().is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn any_text_parses_or_errs_within_the_limit(text in any::<String>()) {
            check_parse(&text)?;
        }

        #[test]
        fn duration_like_text_parses_or_errs_within_the_limit(
            text in "([0-9]{0,25}(\\.[0-9]{0,12})?(ms|d|h|m|s|x|)){1,4}",
        ) {
            check_parse(&text)?;
        }

        #[test]
        fn display_parses_back(seconds in 0..=Duration::MAX.as_secs()) {
            let duration = Duration::from_secs(seconds);
            prop_assert_eq!(duration.to_string().parse(), Ok(duration));
        }

        #[test]
        fn days_display_parses_back(days in 0..=Duration::MAX.as_secs() / 86_400) {
            let text = format!("{days}d");
            let duration: Duration = text.parse().map_err(TestCaseError::fail)?;
            prop_assert_eq!(duration.to_string(), text);
        }

        #[test]
        fn units_add_up(days in 0..1000u64, hours in 0..100u64, minutes in 0..100u64, seconds in 0..100u64) {
            let text = format!("{days}d{hours}h{minutes}m{seconds}s");
            let expected = days * 86_400 + hours * 3600 + minutes * 60 + seconds;
            prop_assert_eq!(text.parse::<Duration>().map(Duration::as_secs), Ok(expected));
        }
    }

    /// Parsing `text` gives a duration no longer than Go's, or a one-line error quoting it.
    fn check_parse(text: &str) -> Result<(), TestCaseError> {
        match text.parse::<Duration>() {
            Ok(duration) => prop_assert!(duration <= Duration::MAX),
            Err(message) => {
                prop_assert!(crate::testgen::one_line(&message), "{}", message);
                prop_assert!(message.contains(&format!("{text:?}")), "{}", message);
            }
        }
        Ok(())
    }
}
