//! VAT: the EU member states' standard rates by day (`runtime/data/eu-vat.toml`, read at
//! build time), and the arithmetic of prices that include it (sold to consumers, the default)
//! or exclude it (sold to businesses, `[billing] sells_to = "businesses"`). All in integer
//! minor units and basis points, rounded half up, as invoices are.
//!
//! Penpal computes the VAT it shows on prices and keeps on each invoice from the payer's
//! country and the rate of the payment's day. A provider computing tax itself (Stripe Tax,
//! Paddle as merchant of record) charges the same rates; reporting its own figure back needs
//! a field the payments contract of WIT 0.2 does not have (see `docs/billing.md`).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize)]
struct Raw {
    from: String,
    rate: u32,
}

#[derive(Debug)]
struct Dated {
    from: jiff::civil::Date,
    rate: u32,
}

static RATES: LazyLock<BTreeMap<String, Vec<Dated>>> = LazyLock::new(|| {
    let raw: BTreeMap<String, Vec<Raw>> = toml::from_str(include_str!("../../data/eu-vat.toml"))
        .unwrap_or_else(|e| unreachable!("runtime/data/eu-vat.toml is checked by a test: {e}"));
    raw.into_iter()
        .map(|(country, list)| {
            let mut dated: Vec<Dated> = list
                .into_iter()
                .map(|r| Dated {
                    from: r.from.parse().unwrap_or_else(|e| {
                        unreachable!("runtime/data/eu-vat.toml: `{}` is not a day: {e}", r.from)
                    }),
                    rate: r.rate,
                })
                .collect();
            dated.sort_by_key(|d| d.from);
            (country, dated)
        })
        .collect()
});

pub use crate::config::SellsTo;

/// The standard VAT rate of `country` on `day`, in basis points; none outside the EU (or
/// before the first dated rate).
pub fn rate(country: &str, day: jiff::civil::Date) -> Option<u32> {
    RATES
        .get(country)?
        .iter()
        .rev()
        .find(|d| d.from <= day)
        .map(|d| d.rate)
}

/// The UTC day of Unix second `secs`.
pub fn day_of(secs: i64) -> jiff::civil::Date {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date())
        .unwrap_or_default()
}

/// `a * num / den`, rounded half up (amounts are never negative here).
fn ratio(a: i64, num: i64, den: i64) -> i64 {
    (a * num + den / 2) / den
}

/// The VAT inside `gross`, at `rate` basis points.
pub fn included(gross: i64, rate: u32) -> i64 {
    ratio(gross, i64::from(rate), 10_000 + i64::from(rate))
}

/// The VAT added to `net`, at `rate` basis points.
pub fn added(net: i64, rate: u32) -> i64 {
    ratio(net, i64::from(rate), 10_000)
}

/// A price's VAT for one country.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PriceTax {
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// The rate in basis points: 2000 is 20 %.
    pub rate_bp: u32,
    /// Whether the price includes it (sold to consumers) or it is added (to businesses).
    pub included: bool,
    /// The VAT, in minor units.
    pub tax_minor: i64,
    /// What the payer pays, VAT included, in minor units.
    pub total_minor: i64,
}

/// The VAT of a price of `amount` for a payer in `country` today; none outside the EU.
pub fn for_price(
    amount: i64,
    country: &str,
    sells_to: SellsTo,
    today: jiff::civil::Date,
) -> Option<PriceTax> {
    let rate = rate(country, today)?;
    Some(match sells_to {
        SellsTo::Consumers => PriceTax {
            country: country.to_string(),
            rate_bp: rate,
            included: true,
            tax_minor: included(amount, rate),
            total_minor: amount,
        },
        SellsTo::Businesses => {
            let tax = added(amount, rate);
            PriceTax {
                country: country.to_string(),
                rate_bp: rate,
                included: false,
                tax_minor: tax,
                total_minor: amount + tax,
            }
        }
    })
}

/// The VAT kept on an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InvoiceTax {
    /// The payer's country, ISO 3166-1 alpha-2.
    pub country: String,
    /// The rate of the payment's day, in basis points.
    pub rate_bp: u32,
    /// The VAT inside the amount paid, in minor units.
    pub amount_minor: i64,
    /// Who computed it: `penpal` (from its dated rates) or `provider`.
    pub source: String,
}

/// The VAT inside a payment of `paid` by a payer in `country`, at Unix second `at`.
pub fn for_invoice(paid: i64, country: &str, at: i64) -> Option<InvoiceTax> {
    let rate = rate(country, day_of(at))?;
    Some(InvoiceTax {
        country: country.to_string(),
        rate_bp: rate,
        amount_minor: included(paid, rate),
        source: "penpal".into(),
    })
}

/// The country `user` pays from, as they last gave it at checkout.
pub async fn country_of(
    db: &crate::store::Db,
    user: &str,
) -> crate::store::StoreResult<Option<String>> {
    Ok(db
        .one::<Option<String>>(
            "SELECT VALUE country FROM type::record('billing_account', $u)",
            serde_json::json!({"u": user}),
        )
        .await?
        .flatten())
}

/// Records that `user` pays from `country`.
pub async fn set_country(
    db: &crate::store::Db,
    user: &str,
    country: &str,
) -> crate::store::StoreResult<()> {
    db.exec(
        "UPSERT type::record('billing_account', $u) CONTENT { user: $u, country: $c, updated_at: $now }",
        serde_json::json!({"u": user, "c": country, "now": crate::store::now_ms()}),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn the_data_file_reads_and_names_all_twenty_seven_member_states() {
        assert_eq!(RATES.len(), 27);
        assert!(
            RATES
                .values()
                .all(|l| !l.is_empty() && l.iter().all(|d| (1000..=3000).contains(&d.rate)))
        );
    }

    #[test]
    fn the_rate_of_a_day_is_the_newest_begun_by_then() {
        assert_eq!(rate("FI", date(2024, 8, 31)), Some(2400));
        assert_eq!(rate("FI", date(2024, 9, 1)), Some(2550));
        assert_eq!(rate("DE", date(2020, 10, 1)), Some(1600));
        assert_eq!(rate("DE", date(2026, 12, 2)), Some(1900));
        assert_eq!(rate("EE", date(2025, 6, 30)), Some(2200));
        assert_eq!(rate("EE", date(2025, 7, 1)), Some(2400));
        assert_eq!(rate("US", date(2026, 1, 1)), None);
        assert_eq!(rate("FR", date(1990, 1, 1)), None);
    }

    #[test]
    fn vat_inside_and_on_top_rounds_half_up_in_minor_units() {
        // 20.00 € at 19 %: 3.193… inside; 3.80 on top.
        assert_eq!(included(2000, 1900), 319);
        assert_eq!(added(2000, 1900), 380);
        // 200.00 € at 25.5 %: 40.637… inside.
        assert_eq!(included(20_000, 2550), 4064);
        // 0.05 at 10 % is half a cent: up to one.
        assert_eq!(added(5, 1000), 1);
        assert_eq!(included(0, 2000), 0);
    }

    #[test]
    fn consumers_see_vat_inside_the_price_and_businesses_on_top() {
        let day = date(2026, 12, 2);
        let c = for_price(2000, "FR", SellsTo::Consumers, day).unwrap();
        assert_eq!((c.included, c.tax_minor, c.total_minor), (true, 333, 2000));
        let b = for_price(2000, "FR", SellsTo::Businesses, day).unwrap();
        assert_eq!((b.included, b.tax_minor, b.total_minor), (false, 400, 2400));
        assert_eq!(for_price(2000, "CH", SellsTo::Consumers, day), None);
    }

    #[test]
    fn an_invoice_keeps_the_rate_of_its_own_day() {
        let before = jiff::civil::date(2024, 8, 15)
            .at(12, 0, 0, 0)
            .to_zoned(jiff::tz::TimeZone::UTC)
            .unwrap()
            .timestamp()
            .as_second();
        let t = for_invoice(2000, "FI", before).unwrap();
        assert_eq!((t.rate_bp, t.amount_minor), (2400, 387));
    }
}
