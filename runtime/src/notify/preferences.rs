//! What each learner lets penpal send: per category and channel (security notices always go;
//! marketing only to those who opt in), quiet hours in their own time zone, and the hour their
//! digests and reminders arrive. The outbox's worker reads them at delivery, so a change
//! applies to messages already waiting. One-click unsubscribe links (RFC 8058) are signed
//! here, and work without signing in.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;
use utoipa::ToSchema;

use crate::store::outbox::{Category, Routing};
use crate::store::{Db, StoreResult};

/// The local hour digests and reminders arrive at, unless the learner picks another.
pub const DEFAULT_HOUR: u8 = 18;

/// A learner's choices, with the defaults filled in.
#[derive(Debug, Clone)]
pub struct Preferences {
    /// Their IANA time zone (`UTC` until they say).
    pub time_zone: String,
    /// The local hour (0–23) for digests and reminders.
    pub hour: u8,
    /// The weekday of the weekly digest.
    pub digest_day: Weekday,
    /// Quiet hours, as minutes after local midnight: from, to (may wrap past midnight).
    pub quiet: Option<(u16, u16)>,
    /// Explicit choices: category → channel → on.
    chosen: BTreeMap<String, BTreeMap<String, bool>>,
}

#[derive(Debug, Default, Deserialize)]
struct Stored {
    #[serde(default)]
    channels: BTreeMap<String, BTreeMap<String, bool>>,
    #[serde(default)]
    quiet_start: Option<u16>,
    #[serde(default)]
    quiet_end: Option<u16>,
    #[serde(default)]
    hour: Option<u8>,
    #[serde(default)]
    digest_day: Option<u8>,
}

impl Preferences {
    /// What a learner in `time_zone` who chose nothing gets.
    pub fn defaults(time_zone: &str) -> Preferences {
        Preferences {
            time_zone: time_zone.to_string(),
            hour: DEFAULT_HOUR,
            digest_day: Weekday::Monday,
            quiet: None,
            chosen: BTreeMap::new(),
        }
    }

    /// `user`'s preferences (the defaults when they chose nothing).
    pub async fn load(db: &Db, user: &str) -> StoreResult<Preferences> {
        let stored: Option<Stored> = db
            .one(
                "SELECT * FROM type::record('notify_pref', $u)",
                json!({"u": user}),
            )
            .await?;
        let time_zone: Option<Option<String>> = db
            .one(
                "SELECT VALUE time_zone FROM type::record('user', $u)",
                json!({"u": user}),
            )
            .await?;
        let stored = stored.unwrap_or_default();
        Ok(Preferences {
            time_zone: time_zone.flatten().unwrap_or_else(|| "UTC".into()),
            hour: stored.hour.unwrap_or(DEFAULT_HOUR).min(23),
            digest_day: stored
                .digest_day
                .and_then(Weekday::from_index)
                .unwrap_or(Weekday::Monday),
            quiet: stored.quiet_start.zip(stored.quiet_end),
            chosen: stored.channels,
        })
    }

    /// Whether `category` may go out on `channel`.
    pub fn allows(&self, category: Category, channel: &str) -> bool {
        if !category.optional() {
            return true;
        }
        self.chosen
            .get(category.as_str())
            .and_then(|c| c.get(channel))
            .copied()
            .unwrap_or(category.on_by_default())
    }

    /// The time zone (UTC if the stored name is no longer known).
    pub fn tz(&self) -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::get(&self.time_zone).unwrap_or(jiff::tz::TimeZone::UTC)
    }

    /// When the quiet hours around `now` (ms) end, if `now` is inside them.
    pub fn quiet_until(&self, now: i64) -> Option<i64> {
        let (start, end) = self.quiet?;
        let now = jiff::Timestamp::from_millisecond(now)
            .ok()?
            .to_zoned(self.tz());
        let minute = now.hour() as u16 * 60 + now.minute() as u16;
        let inside = if start < end {
            (start..end).contains(&minute)
        } else {
            minute >= start || minute < end
        };
        if !inside {
            return None;
        }
        let time = jiff::civil::time((end / 60) as i8, (end % 60) as i8, 0, 0);
        let mut at = now.date().to_datetime(time).to_zoned(self.tz()).ok()?;
        if at <= now {
            at = at.checked_add(jiff::Span::new().days(1)).ok()?;
        }
        Some(at.timestamp().as_millisecond())
    }

    /// The settings as the learner sees them, for the channels `routing` offers.
    pub fn view(&self, routing: &Routing) -> Settings {
        Settings {
            time_zone: self.time_zone.clone(),
            hour: self.hour,
            digest_day: self.digest_day,
            quiet_hours: self.quiet.map(|(s, e)| QuietHours {
                start: clock(s),
                end: clock(e),
            }),
            categories: Category::ALL
                .into_iter()
                .map(|category| CategorySettings {
                    category,
                    required: !category.optional(),
                    channels: routing
                        .channels(category)
                        .iter()
                        .map(|channel| ChannelSetting {
                            channel: channel.clone(),
                            enabled: self.allows(category, channel),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// The statement storing these choices for `user` (the time zone is the account's).
    pub fn store(&self, user: &str, now: i64) -> (&'static str, serde_json::Value) {
        (
            "UPSERT type::record('notify_pref', $np_user) CONTENT { channels: $np_channels, quiet_start: $np_qs, quiet_end: $np_qe, hour: $np_hour, digest_day: $np_day, updated_at: $np_now };",
            json!({
                "np_user": user,
                "np_channels": self.chosen,
                "np_qs": self.quiet.map(|q| q.0),
                "np_qe": self.quiet.map(|q| q.1),
                "np_hour": self.hour,
                "np_day": self.digest_day as u8,
                "np_now": now,
            }),
        )
    }

    /// Records a choice.
    pub fn set(&mut self, category: Category, channel: &str, enabled: bool) {
        self.chosen
            .entry(category.as_str().to_string())
            .or_default()
            .insert(channel.to_string(), enabled);
    }
}

fn clock(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// `HH:MM` (24-hour) as minutes after midnight.
pub fn parse_clock(text: &str) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Weekday {
    Monday = 0,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    const ALL: [Weekday; 7] = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];

    /// Monday = 0 … Sunday = 6.
    pub fn from_index(i: u8) -> Option<Weekday> {
        Weekday::ALL.get(usize::from(i)).copied()
    }

    /// The weekday of a date.
    pub fn of(date: jiff::civil::Date) -> Weekday {
        Weekday::ALL[date.weekday().to_monday_zero_offset() as usize]
    }
}

/// A learner's notification settings.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Settings {
    /// Their IANA time zone, such as `Europe/Paris`: quiet hours and the hour below are in it.
    pub time_zone: String,
    /// The local hour (0–23) weekly digests and streak reminders arrive at.
    #[schema(minimum = 0, maximum = 23)]
    pub hour: u8,
    /// The day the weekly digest arrives.
    pub digest_day: Weekday,
    /// No progress, school or marketing messages between these times (security and account
    /// messages still arrive); none when off.
    pub quiet_hours: Option<QuietHours>,
    /// Every category, with the channels the server offers for it.
    pub categories: Vec<CategorySettings>,
}

/// From `start` to `end`, local time; may wrap past midnight (`22:00`–`07:30`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    /// `HH:MM`, 24-hour.
    #[schema(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub start: String,
    /// `HH:MM`, 24-hour; not the same as `start`.
    #[schema(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub end: String,
}

/// One category's channels.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CategorySettings {
    /// `security`, `account`, `progress`, `school` or `marketing`.
    pub category: Category,
    /// True for security notices, which cannot be turned off.
    pub required: bool,
    /// The channels carrying it, each on or off.
    pub channels: Vec<ChannelSetting>,
}

/// One channel of a category.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChannelSetting {
    /// `email`, or another channel the server offers.
    pub channel: String,
    /// Whether this category goes out on it.
    pub enabled: bool,
}

/// A change to the settings: fields left out stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    /// An IANA time zone, such as `Europe/Paris` or `America/New_York`.
    #[schema(min_length = 1, max_length = 64)]
    pub time_zone: Option<String>,
    /// The local hour (0–23) for digests and reminders. (Read as a number, so that `14.0`,
    /// which JSON Schema calls an integer, is 14.)
    #[schema(value_type = Option<u8>, minimum = 0, maximum = 23)]
    pub hour: Option<f64>,
    /// The day the weekly digest arrives.
    pub digest_day: Option<Weekday>,
    /// Quiet hours, or `null` to turn them off.
    #[serde(default, deserialize_with = "crate::http::present")]
    #[schema(value_type = Option<QuietHours>, nullable)]
    pub quiet_hours: Option<Option<QuietHours>>,
    /// Channels to turn on or off.
    #[schema(max_items = 50)]
    pub channels: Option<Vec<ChannelChoice>>,
}

/// Turns one category on or off on one channel.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelChoice {
    /// The category (`security` cannot be turned off).
    pub category: Category,
    /// A channel offered for it.
    pub channel: String,
    /// On or off.
    pub enabled: bool,
}

/// Signs and checks one-click unsubscribe links: who, which category, which channel.
#[derive(Clone)]
pub struct Signer {
    key: [u8; 32],
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

type HmacSha256 = Hmac<Sha256>;

fn keyed(key: &[u8]) -> HmacSha256 {
    <HmacSha256 as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"))
}

impl Signer {
    /// A signer whose key is derived from the server's secret (so it needs no setting of its
    /// own, and a link signed on one node works on every node).
    pub fn new(secret: &[u8]) -> Signer {
        let mut mac = keyed(secret);
        mac.update(b"penpal unsubscribe links v1");
        Signer {
            key: mac.finalize().into_bytes().into(),
        }
    }

    /// The token unsubscribing `user` from `category` on `channel`.
    pub fn token(&self, user: &str, category: Category, channel: &str) -> String {
        let payload = URL_SAFE_NO_PAD.encode(format!("{user}:{}:{channel}", category.as_str()));
        let mut mac = keyed(&self.key);
        mac.update(payload.as_bytes());
        format!(
            "{payload}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    /// Who, what and where a token unsubscribes, if this server signed it.
    pub fn check(&self, token: &str) -> Option<(String, Category, String)> {
        let (payload, sig) = token.split_once('.')?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        let mut mac = keyed(&self.key);
        mac.update(payload.as_bytes());
        mac.verify_slice(&sig).ok()?;
        let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let mut parts = payload.splitn(3, ':');
        let user = parts.next()?.to_string();
        let category = Category::parse(parts.next()?)?;
        let channel = parts.next()?.to_string();
        Some((user, category, channel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefs(tz: &str, quiet: Option<(u16, u16)>) -> Preferences {
        Preferences {
            quiet,
            ..Preferences::defaults(tz)
        }
    }

    fn at(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn quiet_hours_are_local_and_may_wrap_past_midnight() {
        // 22:00–07:30 in Paris (UTC+1 in January).
        let p = prefs("Europe/Paris", Some((22 * 60, 7 * 60 + 30)));
        assert_eq!(
            p.quiet_until(at("2027-01-10T22:30:00Z")),
            Some(at("2027-01-11T06:30:00Z")),
            "23:30 in Paris waits for 07:30 the next morning"
        );
        assert_eq!(
            p.quiet_until(at("2027-01-11T05:00:00Z")),
            Some(at("2027-01-11T06:30:00Z")),
            "06:00 waits for 07:30 the same morning"
        );
        assert_eq!(p.quiet_until(at("2027-01-11T12:00:00Z")), None);
        let day = prefs("UTC", Some((9 * 60, 17 * 60)));
        assert_eq!(
            day.quiet_until(at("2027-01-11T10:00:00Z")),
            Some(at("2027-01-11T17:00:00Z"))
        );
        assert_eq!(day.quiet_until(at("2027-01-11T17:00:00Z")), None);
    }

    #[test]
    fn marketing_is_opt_in_and_security_cannot_be_turned_off() {
        let mut p = prefs("UTC", None);
        assert!(!p.allows(Category::Marketing, "email"));
        assert!(p.allows(Category::Progress, "email"));
        p.set(Category::Progress, "email", false);
        p.set(Category::Security, "email", false);
        p.set(Category::Marketing, "email", true);
        assert!(!p.allows(Category::Progress, "email"));
        assert!(p.allows(Category::Progress, "chat"));
        assert!(p.allows(Category::Security, "email"));
        assert!(p.allows(Category::Marketing, "email"));
    }

    #[test]
    fn unsubscribe_tokens_are_checked_and_cannot_be_altered() {
        let s = Signer::new(b"server secret");
        let t = s.token("u123", Category::Progress, "email");
        assert_eq!(
            s.check(&t),
            Some(("u123".into(), Category::Progress, "email".into()))
        );
        let (payload, sig) = t.split_once('.').unwrap();
        let other = URL_SAFE_NO_PAD.encode("u999:progress:email");
        assert_eq!(s.check(&format!("{other}.{sig}")), None);
        assert_eq!(Signer::new(b"another secret").check(&t), None);
        assert_eq!(s.check(payload), None);
    }

    #[test]
    fn clocks_parse_strictly() {
        assert_eq!(parse_clock("07:30"), Some(450));
        assert_eq!(parse_clock("23:59"), Some(1439));
        for bad in ["24:00", "7:30", "07:60", "0730", "ab:cd", ""] {
            assert_eq!(parse_clock(bad), None, "{bad}");
        }
    }
}
