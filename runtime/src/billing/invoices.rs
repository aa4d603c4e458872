//! Invoices: what each account paid, and the refunds and disputes against each payment, kept
//! from the provider's events in the same transaction that applies them. Refunds carry the
//! total refunded so far (the WIT contract), so a refund event applied twice or late never
//! counts twice; a refund or dispute arriving before its payment is refused for now, and the
//! provider's next delivery applies it.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::provider::{EventKind, PaymentEvent};
use crate::store::{Batch, Db, StoreResult};

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// Paid, nothing given back.
    Paid,
    /// Part of it was refunded.
    PartiallyRefunded,
    /// All of it was refunded.
    Refunded,
}

/// A payer's dispute (chargeback) of a payment, opened at their bank.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Dispute {
    /// The disputed amount, in minor units.
    pub amount_minor: i64,
    /// ISO 4217.
    pub currency: String,
    /// When the provider reported it (Unix seconds).
    pub opened_at: i64,
}

/// One payment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Invoice {
    /// The payment provider.
    pub provider: String,
    /// The provider's payment id (quote it to support; operators refund by it).
    pub payment_id: String,
    /// The plan paid for, when the provider said.
    #[serde(default)]
    pub plan: Option<String>,
    /// What was paid, in minor units (cents), tax included.
    pub amount_minor: i64,
    /// ISO 4217, upper case.
    pub currency: String,
    /// How much was given back, in minor units.
    pub refunded_minor: i64,
    /// Paid, partly or wholly refunded.
    pub status: InvoiceStatus,
    /// A dispute against it, if the payer opened one.
    #[serde(default)]
    pub dispute: Option<Dispute>,
    /// When it was paid (Unix seconds, the provider's time).
    pub paid_at: i64,
    /// The VAT inside it, for a payer in the EU whose country is known.
    #[serde(default)]
    pub tax: Option<super::tax::InvoiceTax>,
}

/// What recording an event's payment facts came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Recorded, or nothing to record.
    Done,
    /// It is about a payment not known yet: apply it again later.
    Later(String),
    /// A refund gave back this much more (minor units, currency) of payment `2`.
    Refund(i64, String, String),
}

/// The invoice for `payment` at `provider`.
pub async fn get(db: &Db, provider: &str, payment: &str) -> StoreResult<Option<Invoice>> {
    db.one(
        "SELECT * FROM type::record('invoice', [$p, $id])",
        json!({"p": provider, "id": payment}),
    )
    .await
}

/// The account that paid `payment` at `provider`, once its invoice is recorded.
pub async fn payer(db: &Db, provider: &str, payment: &str) -> StoreResult<Option<String>> {
    db.one(
        "SELECT VALUE user FROM type::record('invoice', [$p, $id])",
        json!({"p": provider, "id": payment}),
    )
    .await
}

/// Adds to `batch` what `e` says about a payment by `user`: a new invoice, a refund or a
/// dispute.
pub async fn record(
    db: &Db,
    batch: &mut Batch,
    provider: &str,
    user: &str,
    e: &PaymentEvent,
    plan: Option<&str>,
) -> StoreResult<Recorded> {
    let (Some(payment), Some(amount)) = (&e.payment_id, &e.amount) else {
        return Ok(Recorded::Done);
    };
    let key = [
        ("in_p".to_string(), json!(provider)),
        ("in_id".to_string(), json!(payment)),
    ];
    match e.kind {
        // A trial's first invoice charges nothing: no receipt, no invoice.
        EventKind::InvoicePaid if amount.amount_minor > 0 => {
            if get(db, provider, payment).await?.is_none() {
                let tax = super::tax::country_of(db, user).await?.and_then(|country| {
                    super::tax::for_invoice(amount.amount_minor, &country, e.occurred_at as i64)
                });
                batch.push(
                    "CREATE type::record('invoice', [$in_p, $in_id]) CONTENT {
                        user: $in_user, provider: $in_p, payment_id: $in_id, subscription: $in_sub,
                        plan: $in_plan, amount_minor: $in_amount, currency: $in_cur,
                        refunded_minor: 0, status: 'paid', paid_at: $in_at, tax: $in_tax };",
                    key.into_iter().chain([
                        ("in_user".to_string(), json!(user)),
                        (
                            "in_sub".to_string(),
                            json!(e.subscription.as_ref().map(|s| &s.id)),
                        ),
                        ("in_plan".to_string(), json!(plan)),
                        ("in_amount".to_string(), json!(amount.amount_minor)),
                        ("in_cur".to_string(), json!(amount.currency)),
                        ("in_at".to_string(), json!(e.occurred_at as i64)),
                        ("in_tax".to_string(), json!(tax)),
                    ]),
                );
            }
            Ok(Recorded::Done)
        }
        EventKind::Refunded => {
            let Some(invoice) = get(db, provider, payment).await? else {
                return Ok(Recorded::Later(format!(
                    "a refund of payment {payment}, which is not recorded yet"
                )));
            };
            // The total so far, worked out in the database: a late, repeated or concurrent
            // event never lowers it.
            batch.push(
                "UPDATE type::record('invoice', [$in_p, $in_id]) SET refunded_minor = math::min([math::max([refunded_minor, $in_refunded]), amount_minor]);
                 UPDATE type::record('invoice', [$in_p, $in_id]) SET status = IF refunded_minor >= amount_minor THEN 'refunded' ELSE 'partially_refunded' END;",
                key.into_iter()
                    .chain([("in_refunded".to_string(), json!(amount.amount_minor))]),
            );
            let more = amount.amount_minor.min(invoice.amount_minor) - invoice.refunded_minor;
            Ok(if more > 0 {
                Recorded::Refund(more, invoice.currency, payment.clone())
            } else {
                Recorded::Done
            })
        }
        EventKind::DisputeOpened => {
            if get(db, provider, payment).await?.is_none() {
                return Ok(Recorded::Later(format!(
                    "a dispute of payment {payment}, which is not recorded yet"
                )));
            }
            metrics::counter!("penpal_billing_disputes_total", "provider" => provider.to_string())
                .increment(1);
            tracing::warn!(provider = %provider, payment = %payment, user = %user, "a payment is disputed");
            batch.push(
                "UPDATE type::record('invoice', [$in_p, $in_id]) SET dispute = $in_dispute;",
                key.into_iter().chain([(
                    "in_dispute".to_string(),
                    json!({"amount_minor": amount.amount_minor, "currency": amount.currency,
                           "opened_at": e.occurred_at as i64}),
                )]),
            );
            Ok(Recorded::Done)
        }
        _ => Ok(Recorded::Done),
    }
}

/// `user`'s invoices, newest first.
pub async fn list(db: &Db, user: &str) -> StoreResult<Vec<Invoice>> {
    db.rows(
        "SELECT * FROM invoice WHERE user = $u ORDER BY paid_at DESC",
        json!({"u": user}),
    )
    .await
}
