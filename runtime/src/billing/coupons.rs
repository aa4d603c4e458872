//! Coupons and promotion codes: a percentage or a fixed amount per currency, for one period,
//! several months or for good, with limits — total redemptions, per account, a window of
//! dates, first subscriptions only, a minimum price, the plans they apply to. Penpal checks a
//! code and redeems it (one conditional write, so fifty learners racing for the last of ten
//! uses get ten) before the checkout; the provider applies the discount under the same code.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::store::{Batch, Db, StoreError, StoreResult, now_ms};

/// How long a discount lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Duration {
    /// The first period.
    Once,
    /// `months` months.
    Repeating,
    /// Every period.
    Forever,
}

/// A coupon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Coupon {
    /// What learners type: 3 to 40 of A-Z, 0-9, - and _ (kept upper case).
    #[schema(min_length = 3, max_length = 40, pattern = "^[A-Za-z0-9_-]{3,40}$")]
    pub code: String,
    /// Percent off, 1 to 100; or give `amount_off`.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    pub percent_off: Option<u8>,
    /// Amount off per currency, in minor units: `{"EUR": 500}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub amount_off: Option<BTreeMap<String, i64>>,
    /// How long it lasts.
    pub duration: Duration,
    /// For `repeating`: how many months (1 to 36).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 36)]
    pub months: Option<u8>,
    /// Uses in all; none for no limit.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub max_redemptions: Option<u32>,
    /// Uses per account (1 by default).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub per_account: Option<u32>,
    /// Not before (ms).
    #[serde(default)]
    pub valid_from: Option<i64>,
    /// Not after (ms).
    #[serde(default)]
    pub valid_until: Option<i64>,
    /// Only for an account's first subscription.
    #[serde(default)]
    pub first_subscription_only: bool,
    /// The least price it applies to, per currency, in minor units.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub min_amount: Option<BTreeMap<String, i64>>,
    /// The plans it applies to; none for every paid plan.
    #[serde(default)]
    pub plans: Option<Vec<String>>,
}

/// Why a code cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// No such code.
    #[error("there is no coupon `{0}`")]
    Unknown(String),
    /// A rule of the coupon says no; the text says which.
    #[error("{0}")]
    Rule(String),
    /// All its uses are taken.
    #[error("coupon `{0}` has been used as many times as it may be")]
    Exhausted(String),
}

impl Coupon {
    /// Checks the coupon's own fields; the message names the field.
    pub fn check(&mut self) -> Result<(), (&'static str, String)> {
        self.code = self.code.trim().to_ascii_uppercase();
        if !(3..=40).contains(&self.code.len())
            || !self
                .code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(("code", "use 3 to 40 of A-Z, 0-9, - and _".into()));
        }
        match (&self.percent_off, &self.amount_off) {
            (Some(p), None) if (1..=100).contains(p) => {}
            (None, Some(a)) if !a.is_empty() && a.values().all(|v| *v > 0) => {}
            _ => {
                return Err((
                    "percent_off",
                    "give percent_off (1 to 100) or amount_off (positive minor units per currency), not both".into(),
                ));
            }
        }
        match (self.duration, self.months) {
            (Duration::Repeating, Some(m)) if (1..=36).contains(&m) => {}
            (Duration::Repeating, _) => {
                return Err(("months", "a repeating coupon lasts 1 to 36 months".into()));
            }
            (_, Some(_)) => return Err(("months", "only a repeating coupon has months".into())),
            _ => {}
        }
        if self.max_redemptions == Some(0) || self.per_account == Some(0) {
            return Err(("max_redemptions", "a limit is at least 1".into()));
        }
        if let (Some(a), Some(b)) = (self.valid_from, self.valid_until)
            && a >= b
        {
            return Err(("valid_until", "must come after valid_from".into()));
        }
        Ok(())
    }

    /// The price after the discount, for `plan` at `amount` minor units of `currency`.
    pub fn apply(&self, plan: &str, amount: i64, currency: &str) -> Result<i64, Refused> {
        let rule = |m: String| Err(Refused::Rule(m));
        if let Some(plans) = &self.plans
            && !plans.iter().any(|p| p == plan)
        {
            return rule(format!("coupon `{}` does not apply to `{plan}`", self.code));
        }
        if let Some(min) = self.min_amount.as_ref().and_then(|m| m.get(currency))
            && amount < *min
        {
            return rule(format!(
                "coupon `{}` applies from {}",
                self.code,
                super::money::format(*min, currency)
            ));
        }
        let off = match (&self.percent_off, &self.amount_off) {
            // Rounded down in the learner's favour of whole minor units.
            (Some(p), _) => amount * i64::from(*p) / 100,
            (None, Some(by_currency)) => match by_currency.get(currency) {
                Some(a) => *a,
                None => {
                    return rule(format!(
                        "coupon `{}` has no amount in {currency}",
                        self.code
                    ));
                }
            },
            (None, None) => 0,
        };
        Ok((amount - off).max(0))
    }
}

/// Stores a new coupon; `false` when its code is taken.
pub async fn create(db: &Db, coupon: &Coupon) -> StoreResult<bool> {
    let r = db
        .exec(
            "CREATE type::record('coupon', $code) CONTENT { spec: $spec, redeemed: 0, created_at: $now }",
            json!({"code": coupon.code, "spec": coupon, "now": now_ms()}),
        )
        .await;
    match r {
        Ok(()) => Ok(true),
        Err(StoreError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

#[derive(Debug, Deserialize)]
struct Row {
    spec: Coupon,
    redeemed: u32,
}

/// The coupon called `code` and its uses so far.
pub async fn find(db: &Db, code: &str) -> StoreResult<Option<(Coupon, u32)>> {
    let row: Option<Row> = db
        .one(
            "SELECT spec, redeemed FROM type::record('coupon', $code)",
            json!({"code": code.trim().to_ascii_uppercase()}),
        )
        .await?;
    Ok(row.map(|r| (r.spec, r.redeemed)))
}

/// Every coupon with its uses, for operators.
pub async fn list(db: &Db) -> StoreResult<Vec<(Coupon, u32)>> {
    let rows: Vec<Row> = db
        .rows(
            "SELECT spec, redeemed, created_at FROM coupon ORDER BY created_at DESC",
            json!({}),
        )
        .await?;
    Ok(rows.into_iter().map(|r| (r.spec, r.redeemed)).collect())
}

/// Checks `code` for `user` buying `plan` at `amount` of `currency` and takes one use of it;
/// the discounted price. The use is taken by one conditional write inside a transaction, so
/// concurrent redemptions never pass the limit.
pub async fn redeem(
    db: &Db,
    code: &str,
    user: &str,
    plan: &str,
    amount: i64,
    currency: &str,
    first_subscription: bool,
) -> StoreResult<Result<i64, Refused>> {
    let code = code.trim().to_ascii_uppercase();
    let Some((coupon, redeemed)) = find(db, &code).await? else {
        return Ok(Err(Refused::Unknown(code)));
    };
    let now = now_ms();
    if coupon.valid_from.is_some_and(|t| now < t) || coupon.valid_until.is_some_and(|t| now > t) {
        return Ok(Err(Refused::Rule(format!(
            "coupon `{code}` is not valid today"
        ))));
    }
    if coupon.first_subscription_only && !first_subscription {
        return Ok(Err(Refused::Rule(format!(
            "coupon `{code}` is for a first subscription only"
        ))));
    }
    let price = match coupon.apply(plan, amount, currency) {
        Ok(p) => p,
        Err(r) => return Ok(Err(r)),
    };
    if coupon.max_redemptions.is_some_and(|m| redeemed >= m) {
        return Ok(Err(Refused::Exhausted(code)));
    }
    let per_account = coupon.per_account.unwrap_or(1);
    let mut batch = Batch::default();
    // Both limits are checked again by the writes themselves: the use is counted only while
    // under the limit, and the account's n-th use is a record that can exist once.
    batch.push(
        "LET $taken = (UPDATE type::record('coupon', $cp_code) SET redeemed += 1
             WHERE $cp_max = NONE OR redeemed < $cp_max RETURN VALUE redeemed);
         IF array::len($taken) = 0 { THROW 'coupon exhausted' };
         LET $mine = (SELECT VALUE count() FROM coupon_redemption WHERE code = $cp_code AND user = $cp_user GROUP ALL)[0] ?? 0;
         IF $mine >= $cp_per { THROW 'coupon used by this account' };
         CREATE type::record('coupon_redemption', [$cp_code, $cp_user, $mine]) CONTENT { code: $cp_code, user: $cp_user, plan: $cp_plan, at: $cp_now };",
        [
            ("cp_code".to_string(), json!(code)),
            ("cp_max".to_string(), json!(coupon.max_redemptions)),
            ("cp_user".to_string(), json!(user)),
            ("cp_per".to_string(), json!(per_account)),
            ("cp_plan".to_string(), json!(plan)),
            ("cp_now".to_string(), json!(now)),
        ],
    );
    match batch.commit(db).await {
        Ok(()) => Ok(Ok(price)),
        Err(StoreError::Db(e)) if e.contains("coupon exhausted") => {
            Ok(Err(Refused::Exhausted(code)))
        }
        Err(StoreError::Db(e)) if e.contains("coupon used by this account") => Ok(Err(
            Refused::Rule(format!("you have used coupon `{code}` already")),
        )),
        Err(StoreError::Conflict(_)) => Ok(Err(Refused::Rule(format!(
            "you have used coupon `{code}` already"
        )))),
        Err(e) => Err(e),
    }
}

/// Gives back the newest use of `code` by `user` (its checkout could not be created).
pub async fn release(db: &Db, code: &str, user: &str) -> StoreResult<()> {
    let mut batch = Batch::default();
    batch.push(
        "LET $last = (SELECT VALUE id FROM coupon_redemption WHERE code = $rl_code AND user = $rl_user ORDER BY at DESC LIMIT 1);
         IF array::len($last) > 0 {
             DELETE $last[0];
             UPDATE type::record('coupon', $rl_code) SET redeemed -= 1 WHERE redeemed > 0;
         };",
        [
            ("rl_code".to_string(), json!(code.trim().to_ascii_uppercase())),
            ("rl_user".to_string(), json!(user)),
        ],
    );
    batch.commit(db).await
}

/// Gives back the coupon uses taken at checkouts that never completed (no checkout or
/// subscription event confirmed them) before `before` (ms); how many.
pub async fn release_stale(db: &Db, before: i64) -> StoreResult<usize> {
    #[derive(serde::Deserialize)]
    struct Stale {
        id: serde_json::Value,
        code: String,
    }
    let stale: Vec<Stale> = db
        .rows(
            "SELECT record::id(id) AS id, code FROM coupon_redemption WHERE confirmed != true AND at < $before",
            json!({"before": before}),
        )
        .await?;
    for s in &stale {
        let mut batch = Batch::default();
        // Deleted and counted down together, and only once however many nodes sweep.
        batch.push(
            "LET $gone = (DELETE type::record('coupon_redemption', $st_id) RETURN BEFORE);
             IF array::len($gone) > 0 {
                 UPDATE type::record('coupon', $st_code) SET redeemed -= 1 WHERE redeemed > 0;
             };",
            [
                ("st_id".to_string(), json!(s.id)),
                ("st_code".to_string(), json!(s.code)),
            ],
        );
        batch.commit(db).await?;
    }
    Ok(stale.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coupon(json: serde_json::Value) -> Coupon {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_coupon_takes_a_percentage_or_an_amount_in_the_currency() {
        let pct = coupon(json!({"code": "spring", "percent_off": 25, "duration": "once"}));
        assert_eq!(pct.apply("premium", 2000, "EUR"), Ok(1500));
        assert_eq!(
            pct.apply("premium", 1999, "EUR"),
            Ok(1500),
            "rounded to whole cents"
        );
        let fixed =
            coupon(json!({"code": "FIVE", "amount_off": {"EUR": 500}, "duration": "forever"}));
        assert_eq!(fixed.apply("premium", 2000, "EUR"), Ok(1500));
        assert_eq!(
            fixed.apply("premium", 300, "EUR"),
            Ok(0),
            "never below zero"
        );
        assert!(matches!(
            fixed.apply("premium", 2000, "USD"),
            Err(Refused::Rule(_))
        ));
        let narrow = coupon(
            json!({"code": "YEAR", "percent_off": 10, "duration": "once",
                                   "plans": ["premium-yearly"], "min_amount": {"EUR": 10000}}),
        );
        assert!(narrow.apply("premium-monthly", 2000, "EUR").is_err());
        assert!(narrow.apply("premium-yearly", 5000, "EUR").is_err());
        assert_eq!(narrow.apply("premium-yearly", 20000, "EUR"), Ok(18000));
    }

    #[test]
    fn a_coupons_fields_are_checked() {
        for (spec, field) in [
            (
                json!({"code": "x", "percent_off": 5, "duration": "once"}),
                "code",
            ),
            (
                json!({"code": "BOTH", "percent_off": 5, "amount_off": {"EUR": 1}, "duration": "once"}),
                "percent_off",
            ),
            (
                json!({"code": "ZERO", "percent_off": 0, "duration": "once"}),
                "percent_off",
            ),
            (
                json!({"code": "REP", "percent_off": 5, "duration": "repeating"}),
                "months",
            ),
            (
                json!({"code": "ONCE", "percent_off": 5, "duration": "once", "months": 3}),
                "months",
            ),
            (
                json!({"code": "WHEN", "percent_off": 5, "duration": "once", "valid_from": 10, "valid_until": 5}),
                "valid_until",
            ),
        ] {
            assert_eq!(coupon(spec.clone()).check().unwrap_err().0, field, "{spec}");
        }
        let mut ok = coupon(
            json!({"code": "back-2-school", "percent_off": 50, "duration": "repeating", "months": 3}),
        );
        assert!(ok.check().is_ok());
        assert_eq!(ok.code, "BACK-2-SCHOOL");
    }
}
