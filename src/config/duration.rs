//! Human-friendly durations in config files and flags: `"30s"`, `"1m30s"`, `"250ms"`, `"1.5s"`,
//! or a bare number of seconds (`5`, `1.5`). [`Dur`] is the one duration type of every config
//! key and flag, and it enforces one bound, [`MAX_DURATION`].

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest duration any key or flag accepts: 365 days. Every instant stampede computes is
/// the run's start plus a handful of such durations (scenario length or stage total, grace
/// period, timeout, think time, export interval), so it stays within a few years of now — far
/// inside what `Instant + Duration` can represent on every platform (the tightest, macOS's
/// nanosecond tick counter, reaches about 584 years), so no accepted value can overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// A duration written as `"1m30s"`, `"250ms"` or a number of seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl Dur {
    /// Seconds, as a convenience for `Dur(Duration::from_secs(..))`.
    pub const fn secs(s: u64) -> Self {
        Dur(Duration::from_secs(s))
    }

    /// Milliseconds.
    pub const fn millis(ms: u64) -> Self {
        Dur(Duration::from_millis(ms))
    }

    /// The wrapped duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

/// Parses `"30s"`, `"1m30s"`, `"1.5s"`, `"250ms"`, `"0"`, `"2"` (seconds), within
/// [`MAX_DURATION`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = t.parse::<f64>() {
        return from_secs(secs, s);
    }
    // humantime has no fractional units: accept "1.5s" style ourselves.
    if let Some(num) = t.strip_suffix('s')
        && !num.ends_with('m')
        && !num.ends_with('n')
        && !num.ends_with('u')
        && !num.ends_with('µ')
        && let Ok(secs) = num.parse::<f64>()
    {
        return from_secs(secs, s);
    }
    match humantime::parse_duration(t) {
        Ok(d) => bounded(d, s),
        // "number is too large" from humantime is a duration past any bound, not a typo.
        Err(humantime::DurationError::NumberOverflow) => Err(too_long(s)),
        Err(e) => Err(format!(
            "invalid duration {s:?} ({e}); write e.g. 30s, 1m30s, 250ms or 1.5 (seconds)"
        )),
    }
}

fn from_secs(secs: f64, written: &str) -> Result<Duration, String> {
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!(
            "invalid duration {written:?}: must be a number of seconds >= 0, or e.g. 30s, 1m30s, 250ms"
        ));
    }
    if secs > MAX_DURATION.as_secs_f64() {
        return Err(too_long(written));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn bounded(d: Duration, written: &str) -> Result<Duration, String> {
    if d <= MAX_DURATION {
        Ok(d)
    } else {
        Err(too_long(written))
    }
}

fn too_long(written: &str) -> String {
    format!("duration {written:?} is too long: every duration is at most 365 days")
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a duration such as \"30s\", \"1m30s\", \"250ms\" or a number of seconds",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                parse_duration(v).map(Dur).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dur, E> {
                bounded(Duration::from_secs(v), &v.to_string())
                    .map(Dur)
                    .map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!(
                        "invalid duration {v}: must not be negative"
                    ))),
                }
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Dur, E> {
                from_secs(v, &v.to_string()).map(Dur).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn every_form_is_bounded_by_one_year() {
        let year = MAX_DURATION;
        assert_eq!(parse_duration("365d"), Ok(year));
        assert_eq!(parse_duration(&year.as_secs().to_string()), Ok(year));
        for huge in [
            "300000000000y",
            "366d",
            "31536001",
            "31536000.5",
            "1e12",
            "99999999999999999999999s",
        ] {
            let e = parse_duration(huge).expect_err(huge);
            assert!(e.contains("at most 365 days"), "{huge}: {e}");
        }
        let from_toml = |v: &str| -> Result<Dur, String> {
            #[derive(Deserialize)]
            struct T {
                d: Dur,
            }
            toml::from_str::<T>(&format!("d = {v}"))
                .map(|t| t.d)
                .map_err(|e| e.to_string())
        };
        assert_eq!(from_toml("31536000"), Ok(Dur(year)));
        assert!(from_toml("31536001").unwrap_err().contains("365 days"));
        assert!(
            from_toml("9223372036854775807")
                .unwrap_err()
                .contains("365 days")
        );
        assert!(from_toml("4e11").unwrap_err().contains("365 days"));
        assert!(from_toml("-1").unwrap_err().contains("negative"));
        assert!(
            from_toml("\"300000000000y\"")
                .unwrap_err()
                .contains("365 days")
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_duration("ten seconds").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }
}
