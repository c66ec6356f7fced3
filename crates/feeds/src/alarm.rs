//! The alarms feeds with openwhisk-package-alarms' parameters and semantics: the CREATE and
//! UPDATE parameters of `alarm` (`cron` of 5 fields, or 6 with seconds first; `startDate`,
//! `stopDate`, `maxTriggers`), `once` (`date`, `deleteAfterFire`) and `interval` (`minutes`,
//! `startDate` — 30 s from now when absent —, `stopDate`), each with `trigger_payload`; and
//! the schedule: [`next_fire`], the first scheduled time after a moment, which is all a
//! provider needs after a restart (missed times are not replayed, as upstream).
//!
//! A cron alarm runs in UTC unless its `timezone` names an IANA time zone (upstream's `timezone`
//! parameter, e.g. `America/New_York`): its cron fields are then read in that zone's local time,
//! daylight saving included; an unknown zone is refused with upstream's "Invalid timezone.".

use crate::{Feed, FeedError};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use serde_json::{json, Map, Value};

/// Parameters that are the protocol's, never the feed's configuration.
const PROTOCOL: [&str; 3] = ["lifecycleEvent", "triggerName", "authKey"];

/// Parses a cron pattern: 5 fields (minute granularity) or 6 with seconds first.
pub fn parse_cron(pattern: &str) -> Result<Cron, FeedError> {
    let fields = pattern.split_whitespace().count();
    if !(5..=6).contains(&fields) {
        return Err(FeedError::bad(format!(
            "cron pattern '{pattern}' is not valid"
        )));
    }
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(pattern)
        .map_err(|_| FeedError::bad(format!("cron pattern '{pattern}' is not valid")))
}

/// A date parameter as JavaScript's `new Date(x)` would mostly read it: epoch milliseconds,
/// RFC 3339, or an ISO date-time or date without zone (taken as UTC).
pub fn parse_date(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(d) = DateTime::parse_from_rfc3339(s) {
                return Some(d.timestamp_millis());
            }
            for f in [
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y-%m-%dT%H:%M",
            ] {
                if let Ok(d) = NaiveDateTime::parse_from_str(s, f) {
                    return Some(d.and_utc().timestamp_millis());
                }
            }
            if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                return d
                    .and_hms_opt(0, 0, 0)
                    .map(|d| d.and_utc().timestamp_millis());
            }
            s.parse::<i64>().ok()
        }
        _ => None,
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Checks date parameter `name` (`v`): valid, in the future, after `start` when given.
fn check_date(name: &str, v: &Value, now: i64, start: Option<&Value>) -> Result<i64, FeedError> {
    let Some(ms) = parse_date(v) else {
        return Err(FeedError::bad(format!(
            "{name} parameter '{}' is not a valid Date",
            shown(v)
        )));
    };
    if ms <= now {
        return Err(FeedError::bad(format!(
            "{name} parameter '{}' must be in the future",
            shown(v)
        )));
    }
    if let Some(s) = start {
        if parse_date(s).is_some_and(|s| ms <= s) {
            return Err(FeedError::bad(format!(
                "{name} parameter '{}' must be greater than the startDate parameter '{}'",
                shown(v),
                shown(s)
            )));
        }
    }
    Ok(ms)
}

/// `trigger_payload` as the payload fired: an object as is, a string as `{payload}`.
fn payload(v: Option<&Value>) -> Value {
    match v {
        None | Some(Value::Null) => json!({}),
        Some(Value::String(s)) if s.is_empty() => json!({}),
        Some(Value::String(s)) => json!({ "payload": s }),
        Some(other) => other.clone(),
    }
}

/// The `timezone` parameter: `None` when absent or empty (UTC), the zone otherwise.
fn timezone(params: &Map<String, Value>) -> Result<Option<Tz>, FeedError> {
    match params.get("timezone") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(tz)) if tz.trim().is_empty() => Ok(None),
        Some(Value::String(tz)) => tz
            .trim()
            .parse::<Tz>()
            .map(Some)
            .map_err(|_| FeedError::bad("Invalid timezone.")),
        Some(_) => Err(FeedError::bad("Invalid timezone.")),
    }
}

fn minutes(v: &Value) -> Result<u64, FeedError> {
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if n.fract() == 0.0 && n > 0.0 && n < 1e12 => Ok(n as u64),
        Some(n) if n.fract() == 0.0 => Err(FeedError::bad(
            "the minutes parameter must be an integer greater than zero",
        )),
        _ => Err(FeedError::bad("the minutes parameter must be an integer")),
    }
}

fn delete_after_fire(v: &Value) -> Result<String, FeedError> {
    let s = shown(v).trim().to_lowercase();
    if ["false", "true", "rules"].contains(&s.as_str()) {
        Ok(s)
    } else {
        Err(FeedError::bad(
            "deleteAfterFire parameter must be one of [false, true, rules].",
        ))
    }
}

/// The configuration a CREATE of `feed` with `params` registers, checked as upstream does.
pub fn create(
    feed: Feed,
    params: &Map<String, Value>,
    now: i64,
) -> Result<Map<String, Value>, FeedError> {
    let mut c = Map::new();
    c.insert("payload".into(), payload(params.get("trigger_payload")));
    match feed {
        Feed::Once => {
            let Some(date) = params.get("date") else {
                return Err(FeedError::bad(
                    "alarms once trigger feed is missing the date parameter",
                ));
            };
            check_date("date", date, now, None)?;
            c.insert("date".into(), date.clone());
            if let Some(d) = params.get("deleteAfterFire") {
                c.insert("deleteAfterFire".into(), json!(delete_after_fire(d)?));
            }
            return Ok(c);
        }
        Feed::Interval => {
            let Some(m) = params.get("minutes") else {
                return Err(FeedError::bad(
                    "interval trigger feed is missing the minutes parameter",
                ));
            };
            c.insert("minutes".into(), json!(minutes(m)?));
        }
        Feed::Alarm => {
            let Some(cron) = params.get("cron") else {
                return Err(FeedError::bad(
                    "alarms trigger feed is missing the cron parameter",
                ));
            };
            let cron = shown(cron);
            parse_cron(&cron)?;
            c.insert("cron".into(), json!(cron));
            if let Some(tz) = timezone(params)? {
                c.insert("timezone".into(), json!(tz.name()));
            }
            if let Some(m) = params.get("maxTriggers") {
                let n = m.as_i64().or_else(|| shown(m).trim().parse().ok());
                match n {
                    Some(n) if n == -1 || n > 0 => {
                        c.insert("maxTriggers".into(), json!(n));
                    }
                    _ => {
                        return Err(FeedError::bad(
                            "maxTriggers must be -1 or a positive integer",
                        ))
                    }
                }
            }
        }
        Feed::Kafka => return Err(FeedError::bad("not an alarms feed")),
    }
    match params.get("startDate") {
        Some(s) => {
            check_date("startDate", s, now, None)?;
            c.insert("startDate".into(), s.clone());
        }
        // Upstream: an interval without a start begins 30 s from now.
        None if feed == Feed::Interval => {
            c.insert("startDate".into(), json!(now + 30_000));
        }
        None => {}
    }
    if params.contains_key("maxTriggers") && params.contains_key("stopDate") {
        return Err(FeedError::bad(if feed == Feed::Interval {
            "maxTriggers is not supported for the interval trigger feed"
        } else {
            "maxTriggers is not allowed when the stopDate parameter is specified"
        }));
    }
    if let Some(stop) = params.get("stopDate") {
        check_date("stopDate", stop, now, c.get("startDate"))?;
        c.insert("stopDate".into(), stop.clone());
        if next_fire(feed, &c, now).is_none() {
            return Err(FeedError::bad(
                "the first scheduled trigger fire is not until after the stop date",
            ));
        }
    }
    Ok(c)
}

/// Applies an UPDATE's `params` to `config` (upstream: the payload, and the schedule's own
/// parameters); refuses an update that names nothing updatable.
pub fn update(
    feed: Feed,
    config: &mut Map<String, Value>,
    params: &Map<String, Value>,
    now: i64,
) -> Result<(), FeedError> {
    let mut next = config.clone();
    let mut changed = false;
    if let Some(p) = params.get("trigger_payload") {
        next.insert("payload".into(), payload(Some(p)));
        changed = true;
    }
    match feed {
        Feed::Once => {
            if let Some(d) = params.get("date") {
                check_date("date", d, now, None)?;
                next.insert("date".into(), d.clone());
                changed = true;
            }
            if let Some(d) = params.get("deleteAfterFire") {
                next.insert("deleteAfterFire".into(), json!(delete_after_fire(d)?));
                changed = true;
            }
        }
        Feed::Interval | Feed::Alarm => {
            if feed == Feed::Interval {
                if let Some(m) = params.get("minutes") {
                    next.insert("minutes".into(), json!(minutes(m)?));
                    changed = true;
                }
            } else {
                if let Some(cron) = params.get("cron") {
                    let cron = shown(cron);
                    parse_cron(&cron)?;
                    next.insert("cron".into(), json!(cron));
                    changed = true;
                }
                if params.contains_key("timezone") {
                    match timezone(params)? {
                        Some(tz) => next.insert("timezone".into(), json!(tz.name())),
                        None => next.remove("timezone"),
                    };
                    changed = true;
                }
            }
            if let Some(s) = params.get("startDate") {
                check_date("startDate", s, now, None)?;
                next.insert("startDate".into(), s.clone());
                changed = true;
            }
            if let Some(stop) = params.get("stopDate") {
                check_date("stopDate", stop, now, next.get("startDate"))?;
                next.insert("stopDate".into(), stop.clone());
                changed = true;
            } else if let (Some(s), Some(stop)) = (params.get("startDate"), config.get("stopDate"))
            {
                if parse_date(s) >= parse_date(stop) {
                    return Err(FeedError::bad(format!(
                        "startDate parameter '{}' must be less than the stopDate parameter '{}'",
                        shown(s),
                        shown(stop)
                    )));
                }
            }
        }
        Feed::Kafka => return Err(FeedError::bad("not an alarms feed")),
    }
    if !changed {
        return Err(FeedError::bad("no updatable parameters were specified"));
    }
    *config = next;
    Ok(())
}

fn at(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

/// The first scheduled time of `feed` with `config` strictly after `after` (epoch ms), or
/// `None` when there is none (the date passed, the stop date comes first, a bad document).
pub fn next_fire(feed: Feed, config: &Map<String, Value>, after: i64) -> Option<i64> {
    let start = config.get("startDate").and_then(parse_date);
    let stop = config.get("stopDate").and_then(parse_date);
    let next = match feed {
        Feed::Once => config
            .get("date")
            .and_then(parse_date)
            .filter(|d| *d > after)?,
        Feed::Interval => {
            let period = config.get("minutes")?.as_i64()?.checked_mul(60_000)?;
            let start = start?;
            if after < start {
                start
            } else {
                start + ((after - start) / period + 1) * period
            }
        }
        Feed::Alarm => {
            let cron = parse_cron(config.get("cron")?.as_str()?).ok()?;
            // The first time the schedule may fire: after `after`, not before the start.
            let from = match start {
                Some(s) if s > after => at(s - 1)?,
                _ => at(after)?,
            };
            match config.get("timezone").and_then(|v| v.as_str()) {
                Some(tz) => {
                    let tz: Tz = tz.parse().ok()?;
                    cron.find_next_occurrence(&from.with_timezone(&tz), false)
                        .ok()?
                        .timestamp_millis()
                }
                None => cron
                    .find_next_occurrence(&from, false)
                    .ok()?
                    .timestamp_millis(),
            }
        }
        Feed::Kafka => return None,
    };
    match stop {
        Some(stop) if next > stop => None,
        _ => Some(next),
    }
}

/// The configuration keys a READ shows (the payload and the schedule), with the protocol's
/// parameters never among them.
pub fn is_protocol_param(key: &str) -> bool {
    PROTOCOL.contains(&key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    const NOW: i64 = 1_800_000_000_000; // 2027-01-15T08:00:00Z

    #[test]
    fn cron_with_five_or_six_fields() {
        let c = create(Feed::Alarm, &params(json!({"cron": "*/1 * * * *"})), NOW).unwrap();
        let n = next_fire(Feed::Alarm, &c, NOW).unwrap();
        assert_eq!(n, NOW + 60_000);
        let c = create(Feed::Alarm, &params(json!({"cron": "* * * * * *"})), NOW).unwrap();
        assert_eq!(next_fire(Feed::Alarm, &c, NOW), Some(NOW + 1000));
        assert_eq!(next_fire(Feed::Alarm, &c, NOW + 400), Some(NOW + 1000));
        for bad in ["* * *", "61 * * * *", "nonsense x y z w", "* * * * * * * *"] {
            let e = create(Feed::Alarm, &params(json!({"cron": bad})), NOW).unwrap_err();
            assert_eq!(e.to_string(), format!("cron pattern '{bad}' is not valid"));
        }
        let e = create(Feed::Alarm, &params(json!({})), NOW).unwrap_err();
        assert_eq!(
            e.to_string(),
            "alarms trigger feed is missing the cron parameter"
        );
        let e = create(
            Feed::Alarm,
            &params(json!({"cron": "* * * * *", "timezone": "Mars/Olympus_Mons"})),
            NOW,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "Invalid timezone.");
    }

    #[test]
    fn a_cron_alarm_runs_in_its_time_zone_daylight_saving_included() {
        let date = |s: &str| parse_date(&json!(s)).unwrap();
        // 09:00 every day in New York: 14:00 UTC in winter (EST), 13:00 UTC in summer (EDT).
        let c = create(
            Feed::Alarm,
            &params(json!({"cron": "0 9 * * *", "timezone": "America/New_York"})),
            NOW,
        )
        .unwrap();
        assert_eq!(c["timezone"], "America/New_York");
        let winter = date("2027-01-15T12:00:00Z");
        assert_eq!(
            next_fire(Feed::Alarm, &c, winter),
            Some(date("2027-01-15T14:00:00Z"))
        );
        let summer = date("2027-07-15T12:00:00Z");
        assert_eq!(
            next_fire(Feed::Alarm, &c, summer),
            Some(date("2027-07-15T13:00:00Z"))
        );
        // Without a zone (or with UTC) the same cron is 09:00 UTC.
        let utc = create(Feed::Alarm, &params(json!({"cron": "0 9 * * *"})), NOW).unwrap();
        assert_eq!(
            next_fire(Feed::Alarm, &utc, winter),
            Some(date("2027-01-16T09:00:00Z"))
        );
        // An UPDATE may change the zone alone; an empty one goes back to UTC.
        let mut u = c.clone();
        update(
            Feed::Alarm,
            &mut u,
            &params(json!({"timezone": "Asia/Tokyo"})),
            NOW,
        )
        .unwrap();
        assert_eq!(
            next_fire(Feed::Alarm, &u, winter),
            Some(date("2027-01-16T00:00:00Z"))
        );
        update(Feed::Alarm, &mut u, &params(json!({"timezone": ""})), NOW).unwrap();
        assert!(!u.contains_key("timezone"));
        assert!(update(
            Feed::Alarm,
            &mut u,
            &params(json!({"timezone": "Nowhere/X"})),
            NOW
        )
        .is_err());
    }

    #[test]
    fn start_and_stop_dates_bound_the_schedule() {
        let start = "2027-01-15T09:00:00Z";
        let stop = "2027-01-15T09:02:30Z";
        let c = create(
            Feed::Alarm,
            &params(json!({"cron": "* * * * *", "startDate": start, "stopDate": stop})),
            NOW,
        )
        .unwrap();
        let s = parse_date(&json!(start)).unwrap();
        assert_eq!(next_fire(Feed::Alarm, &c, NOW), Some(s));
        assert_eq!(next_fire(Feed::Alarm, &c, s), Some(s + 60_000));
        assert_eq!(next_fire(Feed::Alarm, &c, s + 120_000), None);
        let past = create(
            Feed::Alarm,
            &params(json!({"cron": "* * * * *", "stopDate": "2020-01-01"})),
            NOW,
        );
        assert_eq!(
            past.unwrap_err().to_string(),
            "stopDate parameter '2020-01-01' must be in the future"
        );
        let e = create(
            Feed::Alarm,
            &params(json!({"cron": "* * * * *", "startDate": stop, "stopDate": start})),
            NOW,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("must be greater than the startDate"),
            "{e}"
        );
        assert!(create(
            Feed::Alarm,
            &params(json!({"cron": "* * * * *", "stopDate": "x"})),
            NOW
        )
        .is_err());
    }

    #[test]
    fn interval_starts_thirty_seconds_out_and_steps_by_minutes() {
        let c = create(Feed::Interval, &params(json!({"minutes": 2})), NOW).unwrap();
        let first = NOW + 30_000;
        assert_eq!(next_fire(Feed::Interval, &c, NOW), Some(first));
        assert_eq!(next_fire(Feed::Interval, &c, first), Some(first + 120_000));
        assert_eq!(
            next_fire(Feed::Interval, &c, first + 1),
            Some(first + 120_000)
        );
        for (m, msg) in [
            (
                json!(0),
                "the minutes parameter must be an integer greater than zero",
            ),
            (json!("1.5"), "the minutes parameter must be an integer"),
            (json!("x"), "the minutes parameter must be an integer"),
        ] {
            let e = create(Feed::Interval, &params(json!({"minutes": m})), NOW).unwrap_err();
            assert_eq!(e.to_string(), msg);
        }
    }

    #[test]
    fn once_fires_at_its_date_only() {
        let date = NOW + 5_000;
        let c = create(
            Feed::Once,
            &params(json!({"date": date, "deleteAfterFire": "Rules"})),
            NOW,
        )
        .unwrap();
        assert_eq!(c["deleteAfterFire"], "rules");
        assert_eq!(next_fire(Feed::Once, &c, NOW), Some(date));
        assert_eq!(next_fire(Feed::Once, &c, date), None);
        assert!(create(Feed::Once, &params(json!({})), NOW).is_err());
        assert!(create(Feed::Once, &params(json!({"date": NOW - 1})), NOW).is_err());
        assert!(create(
            Feed::Once,
            &params(json!({"date": date, "deleteAfterFire": "x"})),
            NOW
        )
        .is_err());
    }

    #[test]
    fn payloads_and_updates() {
        let mut c = create(
            Feed::Alarm,
            &params(json!({"cron": "* * * * *", "trigger_payload": "hi"})),
            NOW,
        )
        .unwrap();
        assert_eq!(c["payload"], json!({"payload": "hi"}));
        update(
            Feed::Alarm,
            &mut c,
            &params(json!({"cron": "*/2 * * * * *", "trigger_payload": {"a": 1}})),
            NOW,
        )
        .unwrap();
        assert_eq!(c["cron"], "*/2 * * * * *");
        assert_eq!(c["payload"], json!({"a": 1}));
        let e = update(Feed::Alarm, &mut c, &params(json!({})), NOW).unwrap_err();
        assert_eq!(e.to_string(), "no updatable parameters were specified");
        assert!(update(Feed::Alarm, &mut c, &params(json!({"cron": "bad"})), NOW).is_err());
        assert_eq!(
            c["cron"], "*/2 * * * * *",
            "a refused update changes nothing"
        );
    }
}
