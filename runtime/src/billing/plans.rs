//! Plans and their price books, from the operator's `[billing]` section: what each plan
//! unlocks (tutor turns a day, personalities, modes) and what it costs in each currency, in
//! integer minor units (cents), never floats. Without a `[billing]` section billing is off and
//! every account may do everything — a self-hosted penpal owes nobody anything.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::config::{BillingSection, PlanSection};
use crate::tutoring::conversations::ChatMode;

/// How often a paid plan renews.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    /// Every month.
    Month,
    /// Every year.
    Year,
}

/// One plan.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Plan {
    /// Its id, such as `premium-monthly`.
    pub id: String,
    /// What learners see, by interface language (`en` always present).
    #[schema(value_type = Object)]
    pub names: BTreeMap<String, String>,
    /// How often it renews; none for the free plan.
    pub interval: Option<Interval>,
    /// Its price in each currency (ISO 4217), in minor units; empty for the free plan.
    #[schema(value_type = Object)]
    pub prices: BTreeMap<String, i64>,
    /// Free days before the first charge.
    pub trial_days: u32,
    /// Tutor turns a day (UTC); none for no limit.
    pub turns_per_day: Option<u32>,
    /// The personalities it may use; none for all.
    pub personalities: Option<Vec<String>>,
    /// The chat modes it may use; none for all.
    pub modes: Option<Vec<ChatMode>>,
}

impl Plan {
    /// Its name in `lang` (English when it has none there).
    pub fn name(&self, lang: &str) -> &str {
        self.names
            .get(lang)
            .or_else(|| self.names.get("en"))
            .map_or(self.id.as_str(), String::as_str)
    }

    /// Whether it may run `mode` with `personality`.
    pub fn allows(&self, mode: ChatMode, personality: &str) -> Result<(), Limit> {
        if let Some(modes) = &self.modes
            && !modes.contains(&mode)
        {
            return Err(Limit::Mode(mode));
        }
        if let Some(list) = &self.personalities
            && !list.iter().any(|p| p == personality)
        {
            return Err(Limit::Personality(personality.to_string()));
        }
        Ok(())
    }
}

/// Why a plan does not allow something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Limit {
    /// The mode is not in the plan.
    Mode(ChatMode),
    /// The personality is not in the plan.
    Personality(String),
    /// The day's turns are used up.
    Turns(u32),
}

impl Limit {
    /// What the learner reads, with what to do.
    pub fn explain(&self, plan: &Plan) -> String {
        match self {
            Limit::Mode(mode) => format!(
                "{} conversations are not part of the {} plan: upgrade to use them (see /pricing)",
                match mode {
                    ChatMode::Tutor => "Tutor",
                    ChatMode::Conversation => "Free",
                    ChatMode::RolePlay => "Role-play",
                },
                plan.name("en")
            ),
            Limit::Personality(p) => format!(
                "the `{p}` personality is not part of the {} plan: upgrade to talk with it (see /pricing)",
                plan.name("en")
            ),
            Limit::Turns(n) => format!(
                "you have used today's {n} messages of the {} plan: more come at midnight UTC, or upgrade for no limit (see /pricing)",
                plan.name("en")
            ),
        }
    }
}

/// The operator's plans, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Plans {
    plans: Vec<Plan>,
    free: String,
}

impl Plans {
    /// The plans of `section`, or the built-in set when it names none. Errors say which
    /// plan and field is wrong.
    pub fn from_config(section: &BillingSection) -> anyhow::Result<Plans> {
        if section.plans.is_empty() {
            return Ok(Plans::defaults());
        }
        let mut plans = Vec::new();
        for (id, p) in &section.plans {
            plans.push(plan(id, p)?);
        }
        let free: Vec<&Plan> = plans.iter().filter(|p| p.interval.is_none()).collect();
        let [free] = free.as_slice() else {
            anyhow::bail!(
                "[billing.plans] needs exactly one free plan (one without `interval`); it has {}",
                free.len()
            );
        };
        let free = free.id.clone();
        Ok(Plans { plans, free })
    }

    /// Free (20 tutor turns a day with Camille and Léo, no role-play), premium monthly
    /// (20 € / 22 $ / 18 £) and yearly (200 € / 220 $ / 180 £), each with a 30-day trial.
    pub fn defaults() -> Plans {
        let names = |en: &str, fr: &str| {
            BTreeMap::from([
                ("en".to_string(), en.to_string()),
                ("fr".to_string(), fr.to_string()),
            ])
        };
        let prices = |eur: i64, usd: i64, gbp: i64| {
            BTreeMap::from([
                ("EUR".to_string(), eur),
                ("USD".to_string(), usd),
                ("GBP".to_string(), gbp),
            ])
        };
        Plans {
            free: "free".into(),
            plans: vec![
                Plan {
                    id: "free".into(),
                    names: names("Free", "Gratuit"),
                    interval: None,
                    prices: BTreeMap::new(),
                    trial_days: 0,
                    turns_per_day: Some(20),
                    personalities: Some(vec!["tutor".into(), "partner".into()]),
                    modes: Some(vec![ChatMode::Tutor, ChatMode::Conversation]),
                },
                Plan {
                    id: "premium-monthly".into(),
                    names: names("Premium (monthly)", "Premium (mensuel)"),
                    interval: Some(Interval::Month),
                    prices: prices(2000, 2200, 1800),
                    trial_days: 30,
                    turns_per_day: None,
                    personalities: None,
                    modes: None,
                },
                Plan {
                    id: "premium-yearly".into(),
                    names: names("Premium (yearly)", "Premium (annuel)"),
                    interval: Some(Interval::Year),
                    prices: prices(20000, 22000, 18000),
                    trial_days: 30,
                    turns_per_day: None,
                    personalities: None,
                    modes: None,
                },
            ],
        }
    }

    /// Every plan, free first.
    pub fn all(&self) -> impl Iterator<Item = &Plan> {
        let free = self.free();
        std::iter::once(free).chain(self.plans.iter().filter(move |p| p.id != free.id))
    }

    /// The plan called `id`.
    pub fn get(&self, id: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.id == id)
    }

    /// The plan of accounts that pay nothing.
    pub fn free(&self) -> &Plan {
        self.get(&self.free)
            .unwrap_or_else(|| unreachable!("the free plan was checked at start"))
    }
}

fn plan(id: &str, p: &PlanSection) -> anyhow::Result<Plan> {
    let at = |field: &str| format!("[billing.plans.{id}] {field}");
    if id.is_empty()
        || id.len() > 40
        || !id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        anyhow::bail!("[billing.plans.{id}]: a plan id is 1 to 40 of a-z, 0-9 and -");
    }
    let interval = match p.interval.as_deref() {
        None => None,
        Some("month") => Some(Interval::Month),
        Some("year") => Some(Interval::Year),
        Some(other) => anyhow::bail!("{}: `{other}` is not `month` or `year`", at("interval")),
    };
    for (currency, amount) in &p.prices {
        if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
            anyhow::bail!(
                "{}: `{currency}` is not an ISO 4217 code such as EUR",
                at("prices")
            );
        }
        if *amount <= 0 {
            anyhow::bail!(
                "{}: {currency} must be a positive amount in minor units (2000 for 20.00)",
                at("prices")
            );
        }
    }
    if interval.is_some() && p.prices.is_empty() {
        anyhow::bail!(
            "{}: a paid plan needs a price in at least one currency",
            at("prices")
        );
    }
    if interval.is_none() && !p.prices.is_empty() {
        anyhow::bail!(
            "{}: a free plan has no prices (or give it an `interval`)",
            at("prices")
        );
    }
    let modes = match &p.modes {
        None => None,
        Some(list) => Some(
            list.iter()
                .map(|m| match m.as_str() {
                    "tutor" => Ok(ChatMode::Tutor),
                    "conversation" => Ok(ChatMode::Conversation),
                    "role-play" => Ok(ChatMode::RolePlay),
                    other => Err(anyhow::anyhow!(
                        "{}: `{other}` is not tutor, conversation or role-play",
                        at("modes")
                    )),
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
        ),
    };
    let mut names = p.names.clone();
    names.entry("en".into()).or_insert_with(|| id.to_string());
    Ok(Plan {
        id: id.to_string(),
        names,
        interval,
        prices: p.prices.clone(),
        trial_days: p.trial_days.unwrap_or(0),
        turns_per_day: p.turns_per_day,
        personalities: p.personalities.clone(),
        modes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(toml_text: &str) -> BillingSection {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn the_built_in_plans_are_free_and_premium_monthly_and_yearly() {
        let plans = Plans::from_config(&BillingSection::default()).unwrap();
        let ids: Vec<&str> = plans.all().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["free", "premium-monthly", "premium-yearly"]);
        assert_eq!(plans.get("premium-monthly").unwrap().prices["EUR"], 2000);
        assert_eq!(plans.get("premium-yearly").unwrap().prices["EUR"], 20000);
        let free = plans.free();
        assert_eq!(
            free.allows(ChatMode::RolePlay, "roleplay"),
            Err(Limit::Mode(ChatMode::RolePlay))
        );
        assert_eq!(free.allows(ChatMode::Tutor, "tutor"), Ok(()));
        assert_eq!(
            free.allows(ChatMode::Tutor, "socrates"),
            Err(Limit::Personality("socrates".into()))
        );
        assert_eq!(
            plans
                .get("premium-monthly")
                .unwrap()
                .allows(ChatMode::RolePlay, "roleplay"),
            Ok(())
        );
    }

    #[test]
    fn an_operators_plans_are_checked_field_by_field() {
        let ok = section(
            r#"
            [plans.basic]
            turns_per_day = 5
            [plans.pro]
            interval = "month"
            prices = { EUR = 999, USD = 1099 }
            names = { en = "Pro", fr = "Pro" }
            "#,
        );
        let plans = Plans::from_config(&ok).unwrap();
        assert_eq!(plans.free().id, "basic");
        assert_eq!(plans.get("pro").unwrap().name("de"), "Pro");
        for (text, says) in [
            ("[plans.a]\n[plans.b]\n", "exactly one free plan"),
            (
                "[plans.a]\n[plans.b]\ninterval = \"week\"\nprices = { EUR = 1 }\n",
                "`week`",
            ),
            (
                "[plans.a]\n[plans.b]\ninterval = \"month\"\n",
                "needs a price",
            ),
            (
                "[plans.a]\n[plans.b]\ninterval = \"month\"\nprices = { eur = 100 }\n",
                "ISO 4217",
            ),
            (
                "[plans.a]\n[plans.b]\ninterval = \"month\"\nprices = { EUR = 0 }\n",
                "positive",
            ),
            ("[plans.a]\nmodes = [\"karaoke\"]\n", "`karaoke`"),
            ("[plans.A]\n", "a plan id"),
        ] {
            let err = Plans::from_config(&section(text)).unwrap_err().to_string();
            assert!(err.contains(says), "{text} → {err}");
        }
    }
}
