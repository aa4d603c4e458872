//! The billing room's HTTP face: the plans and their prices (public, for the pricing page), an
//! account's plan and the day's use of it, and an operator's complimentary grant.

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::entitlements::{self, Billing, Source};
use super::plans::{Interval, Plan};
use super::provider::{CheckoutRequest, Money, PaymentsClient, Webhook};
use super::webhooks::{self, Applied};
use crate::auth::{AuthUser, Gate, Keys, Operator};
use crate::http::{ApiError, ApiResult, Json, Path, Query};
use crate::plugins::{CallError, PluginError};
use crate::store::{Db, now_ms};
use crate::tutoring::conversations::ChatMode;

/// What the billing handlers use.
#[derive(Clone)]
pub struct BillingState {
    /// The database.
    pub db: Db,
    /// Token keys, to know who is signed in.
    pub keys: Arc<Keys>,
    /// Plans and the rules they set.
    pub billing: Arc<Billing>,
    /// Payment-provider plugins.
    pub payments: PaymentsClient,
    /// Where learners reach penpal, for the provider's return links (no trailing slash).
    pub public_url: String,
    /// Applies one webhook's events at a time on this node, so two deliveries about one
    /// subscription do not interleave their read and write.
    pub applying: Arc<tokio::sync::Mutex<()>>,
    /// Channels per category, for the mail events send.
    pub routing: Arc<crate::store::outbox::Routing>,
    /// Wakes the outbox after an event enqueued mail.
    pub outbox: Arc<tokio::sync::Notify>,
}

impl FromRef<BillingState> for Gate {
    fn from_ref(s: &BillingState) -> Gate {
        Gate {
            db: s.db.clone(),
            keys: s.keys.clone(),
        }
    }
}

/// The billing routes.
pub fn router(state: BillingState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(plans))
        .routes(routes!(my_plan))
        .routes(routes!(grant))
        .routes(routes!(webhook))
        .routes(routes!(checkout))
        .routes(routes!(portal))
        .routes(routes!(events))
        .routes(routes!(cancel))
        .routes(routes!(resume))
        .routes(routes!(create_coupon, list_coupons))
        .routes(routes!(super::manage::my_invoices))
        .routes(routes!(super::manage::change_plan))
        .routes(routes!(super::manage::customer))
        .routes(routes!(super::manage::refund))
        .with_state(state)
}

/// A price.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Price {
    /// In the currency's minor unit (cents): 2000 is 20.00.
    pub amount_minor: i64,
    /// ISO 4217, upper case.
    pub currency: String,
    /// Its VAT for the asked country (EU only): inside the price when sold to consumers,
    /// added to it when sold to businesses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tax: Option<super::tax::PriceTax>,
}

/// A plan as learners see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlanView {
    /// Its id.
    pub id: String,
    /// Its name in the asked language.
    pub name: String,
    /// `month` or `year`; none for the free plan.
    pub interval: Option<Interval>,
    /// Its price in the asked currency; none for the free plan.
    pub price: Option<Price>,
    /// Free days before the first charge.
    pub trial_days: u32,
    /// Tutor messages a day; none for no limit.
    pub turns_per_day: Option<u32>,
    /// The personalities it includes; none for all.
    pub personalities: Option<Vec<String>>,
    /// The chat modes it includes; none for all.
    pub modes: Option<Vec<ChatMode>>,
}

/// Where a payer's VAT is reckoned: their country and whom the operator sells to.
#[derive(Debug, Clone, Copy)]
struct TaxedFor<'a> {
    country: &'a str,
    sells_to: super::tax::SellsTo,
}

fn view(p: &Plan, lang: &str, currency: &str, taxed: Option<TaxedFor<'_>>) -> PlanView {
    let today = super::tax::day_of(now_ms() / 1000);
    PlanView {
        id: p.id.clone(),
        name: p.name(lang).to_string(),
        interval: p.interval,
        price: p.prices.get(currency).map(|amount| Price {
            amount_minor: *amount,
            currency: currency.to_string(),
            tax: taxed.and_then(|t| super::tax::for_price(*amount, t.country, t.sells_to, today)),
        }),
        trial_days: p.trial_days,
        turns_per_day: p.turns_per_day,
        personalities: p.personalities.clone(),
        modes: p.modes.clone(),
    }
}

/// Which prices to show.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PlansQuery {
    /// ISO 4217 currency; EUR when left out.
    #[param(pattern = "^[A-Za-z]{3}$")]
    currency: Option<String>,
    /// The language of plan names (`en`, `fr`); English when left out.
    #[param(pattern = "^[a-z]{2}$")]
    lang: Option<String>,
    /// The payer's country (ISO 3166-1 alpha-2): EU prices then show their VAT.
    #[param(pattern = "^[A-Za-z]{2}$")]
    country: Option<String>,
}

/// The plans on offer.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanList {
    /// False when this server does not charge: every account may do everything.
    pub billing: bool,
    /// The currency of the prices.
    pub currency: String,
    /// The free plan first, then the paid ones offered in this currency.
    pub plans: Vec<PlanView>,
}

#[utoipa::path(get, path = "/v1/billing/plans", tag = "billing", params(PlansQuery),
    responses((status = 200, body = PlanList),
        (status = 422, description = "a currency that is not three letters or that no plan is priced in, a language or a country that is not two letters")))]
async fn plans(
    State(s): State<BillingState>,
    Query(q): Query<PlansQuery>,
) -> ApiResult<Json<PlanList>> {
    let currency = q.currency.as_deref().unwrap_or("EUR").to_ascii_uppercase();
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(ApiError::invalid(
            "currency",
            "use an ISO 4217 code such as EUR",
        ));
    }
    let lang = q.lang.as_deref().unwrap_or("en");
    if lang.len() != 2 || !lang.chars().all(|c| c.is_ascii_lowercase()) {
        return Err(ApiError::invalid(
            "lang",
            "use a two-letter language such as en or fr",
        ));
    }
    let country = q.country.as_deref().map(str::to_ascii_uppercase);
    if let Some(c) = &country
        && (c.len() != 2 || !c.chars().all(|x| x.is_ascii_uppercase()))
    {
        return Err(ApiError::invalid(
            "country",
            "use a two-letter ISO 3166 country such as FR or US",
        ));
    }
    let taxed = country.as_deref().map(|country| TaxedFor {
        country,
        sells_to: s.billing.sells_to,
    });
    let Some(plans) = &s.billing.plans else {
        return Ok(Json(PlanList {
            billing: false,
            currency,
            plans: Vec::new(),
        }));
    };
    let list: Vec<PlanView> = plans
        .all()
        .filter(|p| p.interval.is_none() || p.prices.contains_key(&currency))
        .map(|p| view(p, lang, &currency, taxed))
        .collect();
    if list.iter().all(|p| p.interval.is_none()) {
        let offered: std::collections::BTreeSet<&str> = plans
            .all()
            .flat_map(|p| p.prices.keys().map(String::as_str))
            .collect();
        return Err(ApiError::invalid(
            "currency",
            format!(
                "no plan is priced in {currency}: use one of {}",
                offered.into_iter().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    Ok(Json(PlanList {
        billing: true,
        currency,
        plans: list,
    }))
}

/// A subscription as its owner sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SubscriptionView {
    /// The provider.
    pub provider: String,
    /// `trialing`, `active`, `past_due`, `unpaid`, `paused`, `canceled`, `incomplete` or
    /// `incomplete_expired`.
    pub status: super::subscription::Status,
    /// The plan.
    #[serde(default)]
    pub plan: Option<String>,
    /// End of the current period (Unix seconds).
    #[serde(default)]
    pub period_end: Option<i64>,
    /// End of the trial (Unix seconds).
    #[serde(default)]
    pub trial_end: Option<i64>,
    /// Whether it stops at the period's end.
    pub cancel_at_period_end: bool,
}

/// An account's plan and its use today.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountPlan {
    /// The plan; none when this server does not charge.
    pub plan: Option<PlanView>,
    /// Where it comes from.
    pub source: Source,
    /// When it ends (ms), if it does.
    pub until: Option<i64>,
    /// Tutor messages answered since midnight UTC.
    pub turns_today: i64,
    /// The newest subscription, if the account ever had one.
    pub subscription: Option<SubscriptionView>,
    /// The country the account pays from (ISO 3166-1 alpha-2), as given at checkout.
    pub country: Option<String>,
}

/// `user`'s newest subscription and its provider id.
async fn newest(db: &Db, user: &str) -> ApiResult<Option<(String, SubscriptionView)>> {
    #[derive(Deserialize)]
    struct Row {
        provider_id: String,
        #[serde(flatten)]
        view: SubscriptionView,
    }
    let row: Option<Row> = db
        .one(
            "SELECT provider, provider_id, status, plan, period_end, trial_end, cancel_at_period_end, updated_at
             FROM subscription WHERE user = $u ORDER BY updated_at DESC LIMIT 1",
            serde_json::json!({"u": user}),
        )
        .await?;
    Ok(row.map(|r| (r.provider_id, r.view)))
}

pub(super) async fn account_plan(s: &BillingState, user: &str) -> ApiResult<AccountPlan> {
    let now = now_ms();
    let e = s.billing.entitlement(&s.db, user, now).await?;
    let lang = crate::tutoring::profile::load(&s.db, user)
        .await?
        .interface_language;
    let country = super::tax::country_of(&s.db, user).await?;
    let taxed = country.as_deref().map(|country| TaxedFor {
        country,
        sells_to: s.billing.sells_to,
    });
    Ok(AccountPlan {
        plan: e.plan.as_ref().map(|p| {
            let currency = p
                .prices
                .keys()
                .next()
                .cloned()
                .unwrap_or_else(|| "EUR".into());
            view(p, &lang, &currency, taxed)
        }),
        country: country.clone(),
        source: e.source,
        until: e.until,
        turns_today: entitlements::turns_today(&s.db, user, now).await?,
        subscription: newest(&s.db, user).await?.map(|(_, v)| v),
    })
}

#[utoipa::path(get, path = "/v1/billing/subscription", tag = "billing",
    responses((status = 200, body = AccountPlan)), security(("bearer" = [])))]
async fn my_plan(State(s): State<BillingState>, user: AuthUser) -> ApiResult<Json<AccountPlan>> {
    Ok(Json(account_plan(&s, &user.id).await?))
}

/// A plan given by an operator.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGrant {
    /// The account's email address.
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// A plan id from `GET /v1/billing/plans`.
    #[schema(max_length = 40)]
    plan: String,
    /// For how many days (1 to 3660); for good when left out.
    #[schema(minimum = 1, maximum = 3660)]
    days: Option<u32>,
}

#[utoipa::path(post, path = "/v1/admin/billing/grants", tag = "admin", request_body = NewGrant,
    responses((status = 201, body = AccountPlan, description = "the account's plan now"),
        (status = 403, description = "not an operator"),
        (status = 404, description = "no account has this address"),
        (status = 409, description = "billing is off on this server"),
        (status = 422, description = "no such plan, or a number of days outside 1 to 3660")),
    security(("bearer" = [])))]
async fn grant(
    State(s): State<BillingState>,
    op: Operator,
    Json(body): Json<NewGrant>,
) -> ApiResult<(StatusCode, Json<AccountPlan>)> {
    let Some(plans) = &s.billing.plans else {
        return Err(ApiError::Conflict(
            "billing is off on this server (no [billing] section): every account has everything"
                .into(),
        ));
    };
    if plans.get(&body.plan).is_none() {
        return Err(ApiError::invalid(
            "plan",
            format!("no plan is called `{}`", body.plan),
        ));
    }
    let until = match body.days {
        None => None,
        Some(d) if (1..=3660).contains(&d) => Some(now_ms() + i64::from(d) * 86_400_000),
        Some(_) => return Err(ApiError::invalid("days", "give 1 to 3660 days")),
    };
    let user = crate::auth::routes::user_by_email(&s.db, &body.email.trim().to_lowercase())
        .await?
        .ok_or(ApiError::NotFound("account"))?;
    entitlements::grant(
        &s.db,
        &user.id,
        &body.plan,
        "complimentary",
        &op.0.id,
        until,
    )
    .await?;
    tracing::info!(user = %user.id, plan = %body.plan, by = %op.0.id, "complimentary plan granted");
    Ok((StatusCode::CREATED, Json(account_plan(&s, &user.id).await?)))
}

/// What a webhook delivery came to.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookReceipt {
    /// Events in the delivery.
    pub events: usize,
    /// Of those, applied now.
    pub applied: usize,
    /// Of those, seen before.
    pub duplicates: usize,
}

/// A provider's error, as this API answers it.
pub(super) fn provider_error(e: CallError) -> ApiError {
    match e {
        CallError::NotInstalled(_) => ApiError::NotFound("payment provider"),
        CallError::Plugin {
            error: PluginError::Denied(why) | PluginError::InvalidInput(why),
            ..
        } => ApiError::BadRequest(format!("the provider refused this: {why}")),
        CallError::Plugin {
            error: PluginError::Unavailable(why),
            ..
        } => ApiError::Unavailable(format!("the payment provider is unavailable: {why}")),
        CallError::CircuitOpen { .. } | CallError::Timeout { .. } => {
            ApiError::Unavailable("the payment provider is not answering; try again".into())
        }
        other => ApiError::Internal(anyhow::Error::new(other)),
    }
}

#[utoipa::path(post, path = "/v1/billing/webhooks/{provider}", tag = "billing",
    params(("provider" = String, Path, description = "the payment-provider plugin, such as `stripe`")),
    request_body(content = String, content_type = "application/json", description = "the provider's event, exactly as it sent it"),
    responses((status = 200, body = WebhookReceipt),
        (status = 400, description = "not signed by this provider with its secret, signed too long ago, or not an event"),
        (status = 500, description = "an event is stored but could not be applied; the provider sends it again"),
        (status = 503, description = "the provider's plugin is paused or not answering; the provider sends it again")))]
async fn webhook(
    State(s): State<BillingState>,
    Path(provider): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Json<WebhookReceipt>> {
    let hook = Webhook {
        headers: headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect(),
        body: body.to_vec(),
        received_at: (now_ms() / 1000) as u64,
    };
    // The plugin verifies before it parses; nothing here reads the body.
    let events = s
        .payments
        .verify_webhook(&provider, &hook)
        .await
        .map_err(|e| {
            tracing::warn!(provider = %provider, error = %e, "a webhook was refused");
            provider_error(e)
        })?;
    let _one_at_a_time = s.applying.lock().await;
    let mut receipt = WebhookReceipt {
        events: events.len(),
        applied: 0,
        duplicates: 0,
    };
    for event in &events {
        if !webhooks::store(&s.db, &provider, event).await? {
            receipt.duplicates += 1;
            continue;
        }
        let mailing = webhooks::Mailing {
            routing: &s.routing,
            public_url: &s.public_url,
            plans: s.billing.plans.as_ref(),
        };
        match webhooks::apply(&s.db, &provider, event, mailing).await {
            Ok(Applied::Applied) => receipt.applied += 1,
            Ok(Applied::Ignored(why)) => {
                tracing::warn!(provider = %provider, event = %event.id, why = %why, "a payment event was kept, not applied");
            }
            Ok(Applied::Later(why)) => {
                webhooks::failed(&s.db, &provider, &event.id, &why).await?;
                return Err(ApiError::Unavailable(format!(
                    "payment event {} from {provider} waits for an earlier one: {why}",
                    event.id
                )));
            }
            Err(e) => {
                let why = e.to_string();
                webhooks::failed(&s.db, &provider, &event.id, &why).await?;
                return Err(ApiError::Internal(anyhow::anyhow!(
                    "payment event {} from {provider} could not be applied: {why}",
                    event.id
                )));
            }
        }
    }
    s.outbox.notify_one();
    Ok(Json(receipt))
}

/// Start paying for a plan.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCheckout {
    /// A paid plan's id from `GET /v1/billing/plans`.
    #[schema(max_length = 40)]
    plan: String,
    /// ISO 4217; the plan must be priced in it. EUR when left out.
    #[schema(pattern = "^[A-Za-z]{3}$")]
    currency: Option<String>,
    /// A coupon code; one of its uses is taken now.
    #[schema(max_length = 40)]
    coupon: Option<String>,
    /// The payer's country (ISO 3166-1 alpha-2), for VAT; the one given last time when left
    /// out.
    #[schema(pattern = "^[A-Za-z]{2}$")]
    country: Option<String>,
}

/// Where to send the learner.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderPage {
    /// The provider's page (checkout or portal).
    pub url: String,
}

/// `user`'s customer id at `provider`, once a payment event named one.
async fn customer_at(db: &Db, user: &str, provider: &str) -> ApiResult<Option<String>> {
    Ok(db
        .one(
            "SELECT VALUE customer FROM type::record('billing_customer', [$u, $p])",
            serde_json::json!({"u": user, "p": provider}),
        )
        .await?)
}

fn provider_name(s: &BillingState) -> ApiResult<&str> {
    s.billing.provider.as_deref().ok_or_else(|| {
        ApiError::Conflict("this server takes no payments: plans are given by its operators".into())
    })
}

#[utoipa::path(post, path = "/v1/billing/checkout", tag = "billing", request_body = NewCheckout,
    responses((status = 201, body = ProviderPage, description = "the provider's checkout page; the plan starts when its webhook arrives"),
        (status = 409, description = "already subscribed (change it in the portal), this server takes no payments, or the coupon's uses are all taken"),
        (status = 422, description = "not a paid plan, not priced in this currency, a coupon that does not exist or apply, or a country that is not two letters"),
        (status = 503, description = "the payment provider is unavailable")),
    security(("bearer" = [])))]
async fn checkout(
    State(s): State<BillingState>,
    user: AuthUser,
    Json(body): Json<NewCheckout>,
) -> ApiResult<(StatusCode, Json<ProviderPage>)> {
    let Some(plans) = &s.billing.plans else {
        return Err(ApiError::Conflict("billing is off on this server".into()));
    };
    let provider = provider_name(&s)?;
    let plan = plans
        .get(&body.plan)
        .filter(|p| p.interval.is_some())
        .ok_or_else(|| ApiError::invalid("plan", format!("`{}` is not a paid plan", body.plan)))?;
    let currency = body
        .currency
        .as_deref()
        .unwrap_or("EUR")
        .to_ascii_uppercase();
    let amount = *plan.prices.get(&currency).ok_or_else(|| {
        ApiError::invalid(
            "currency",
            format!("`{}` is not priced in {currency}", plan.id),
        )
    })?;
    #[derive(Deserialize)]
    struct Held {
        status: super::subscription::Status,
    }
    let held: Vec<Held> =
        s.db.rows(
            "SELECT status FROM subscription WHERE user = $u",
            serde_json::json!({"u": user.id}),
        )
        .await?;
    if held.iter().any(|h| h.status.entitles()) {
        return Err(ApiError::Conflict(
            "you have a subscription already: change or cancel it in the billing portal".into(),
        ));
    }
    if let Some(country) = &body.country {
        let country = country.to_ascii_uppercase();
        if country.len() != 2 || !country.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(ApiError::invalid(
                "country",
                "use a two-letter ISO 3166 country such as FR or US",
            ));
        }
        super::tax::set_country(&s.db, &user.id, &country).await?;
    }
    let account = crate::auth::routes::user_by_id(&s.db, &user.id).await?;
    let customer = customer_at(&s.db, &user.id, provider).await?;
    let lang = crate::tutoring::profile::load(&s.db, &user.id)
        .await?
        .interface_language;
    let coupon = match &body.coupon {
        None => None,
        Some(code) => {
            // One redemption at a time on this node; the write itself holds across nodes.
            let _one = s.applying.lock().await;
            match super::coupons::redeem(
                &s.db,
                code,
                &user.id,
                &plan.id,
                amount,
                &currency,
                held.is_empty(),
            )
            .await?
            {
                Ok(_) => Some(code.trim().to_ascii_uppercase()),
                Err(e @ super::coupons::Refused::Exhausted(_)) => {
                    return Err(ApiError::Conflict(e.to_string()));
                }
                Err(e) => return Err(ApiError::invalid("coupon", e.to_string())),
            }
        }
    };
    let request = CheckoutRequest {
        customer_id: user.id.clone(),
        provider_customer_id: customer,
        customer_email: account.email,
        plan_id: plan.id.clone(),
        price: Money {
            amount_minor: amount,
            currency,
        },
        interval: plan.interval.map(|i| match i {
            Interval::Month => super::provider::Interval::Month,
            Interval::Year => super::provider::Interval::Year,
        }),
        // One trial per account.
        trial_days: if held.is_empty() { plan.trial_days } else { 0 },
        coupon: coupon.clone(),
        locale: lang,
        success_url: format!("{}/settings?billing=done", s.public_url),
        cancel_url: format!("{}/pricing", s.public_url),
        idempotency_key: crate::store::new_id(),
    };
    let page = match s.payments.create_checkout(provider, &request).await {
        Ok(page) => page,
        Err(e) => {
            // No checkout, so no use of the coupon.
            if let Some(code) = &coupon {
                super::coupons::release(&s.db, code, &user.id).await?;
            }
            return Err(provider_error(e));
        }
    };
    Ok((StatusCode::CREATED, Json(ProviderPage { url: page.url })))
}

#[utoipa::path(post, path = "/v1/billing/portal", tag = "billing",
    responses((status = 201, body = ProviderPage, description = "the provider's page for cards, invoices and cancelling"),
        (status = 404, description = "no payments yet, so nothing to manage"),
        (status = 409, description = "this server takes no payments")),
    security(("bearer" = [])))]
async fn portal(
    State(s): State<BillingState>,
    user: AuthUser,
) -> ApiResult<(StatusCode, Json<ProviderPage>)> {
    let provider = provider_name(&s)?;
    let customer = customer_at(&s.db, &user.id, provider).await?;
    let customer = customer.ok_or(ApiError::NotFound("billing account"))?;
    let page = s
        .payments
        .create_portal(provider, &customer, &format!("{}/settings", s.public_url))
        .await
        .map_err(provider_error)?;
    Ok((StatusCode::CREATED, Json(ProviderPage { url: page.url })))
}

/// Which payment events to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// `received`, `applied`, `ignored` or `failed`; all when left out.
    status: Option<String>,
    /// At most this many, newest first (1 to 500; 100 by default).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

/// A payment event as operators see it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventRow {
    /// The provider.
    pub provider: String,
    /// The provider's event id.
    pub event_id: String,
    /// The provider's name for it, such as `invoice.paid`.
    pub provider_type: String,
    /// The account it concerns, once known.
    #[serde(default)]
    pub user: Option<String>,
    /// `received`, `applied`, `ignored` or `failed`.
    pub status: String,
    /// Why it failed or was ignored.
    #[serde(default)]
    pub error: Option<String>,
    /// When the provider says it happened (Unix seconds).
    pub occurred_at: i64,
    /// When penpal received it (ms).
    pub received_at: i64,
}

#[utoipa::path(get, path = "/v1/admin/billing/events", tag = "admin", params(EventsQuery),
    responses((status = 200, body = [EventRow], description = "payment events, newest first"),
        (status = 403, description = "not an operator"),
        (status = 422, description = "an unknown status, or a limit outside 1 to 500")),
    security(("bearer" = [])))]
async fn events(
    State(s): State<BillingState>,
    _: Operator,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Json<Vec<EventRow>>> {
    if let Some(st) = &q.status
        && !matches!(st.as_str(), "received" | "applied" | "ignored" | "failed")
    {
        return Err(ApiError::invalid(
            "status",
            "use received, applied, ignored or failed",
        ));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "use 1 to 500"));
    }
    Ok(Json(
        s.db.rows(
            "SELECT provider, event_id, provider_type, user, status, error, occurred_at, received_at FROM billing_event
             WHERE $status = NONE OR status = $status ORDER BY received_at DESC LIMIT $limit",
            serde_json::json!({"status": q.status, "limit": limit}),
        )
        .await?,
    ))
}

/// How to cancel.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Cancel {
    /// Stop renewing and keep access until the period's end (the default), or end now.
    #[serde(default)]
    at_period_end: Option<bool>,
}

/// What the provider reports after a change (the account's plan follows its webhook).
#[derive(Debug, Serialize, ToSchema)]
pub struct Changed {
    /// Whether it stops at the period's end.
    pub cancel_at_period_end: bool,
}

pub(super) async fn live_subscription(
    s: &BillingState,
    user: &str,
) -> ApiResult<(String, SubscriptionView)> {
    newest(&s.db, user)
        .await?
        .filter(|(_, v)| !v.status.is_final())
        .ok_or(ApiError::NotFound("subscription"))
}

#[utoipa::path(post, path = "/v1/billing/subscription/cancel", tag = "billing", request_body = Cancel,
    responses((status = 202, body = Changed, description = "the provider took it; the plan follows its webhook"),
        (status = 404, description = "no live subscription"), (status = 503, description = "the payment provider is unavailable")),
    security(("bearer" = [])))]
async fn cancel(
    State(s): State<BillingState>,
    user: AuthUser,
    Json(body): Json<Cancel>,
) -> ApiResult<(StatusCode, Json<Changed>)> {
    let (id, view) = live_subscription(&s, &user.id).await?;
    let at_end = body.at_period_end.unwrap_or(true);
    let sub = s
        .payments
        .cancel_subscription(&view.provider, &id, at_end, &crate::store::new_id())
        .await
        .map_err(provider_error)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Changed {
            cancel_at_period_end: sub.cancel_at_period_end,
        }),
    ))
}

#[utoipa::path(post, path = "/v1/billing/subscription/resume", tag = "billing",
    responses((status = 202, body = Changed, description = "renewal is back on; the plan follows the provider's webhook"),
        (status = 404, description = "no live subscription"), (status = 503, description = "the payment provider is unavailable")),
    security(("bearer" = [])))]
async fn resume(
    State(s): State<BillingState>,
    user: AuthUser,
) -> ApiResult<(StatusCode, Json<Changed>)> {
    let (id, view) = live_subscription(&s, &user.id).await?;
    let sub = s
        .payments
        .resume_subscription(&view.provider, &id, &crate::store::new_id())
        .await
        .map_err(provider_error)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Changed {
            cancel_at_period_end: sub.cancel_at_period_end,
        }),
    ))
}

/// A coupon and its uses.
#[derive(Debug, Serialize, ToSchema)]
pub struct CouponView {
    /// The coupon.
    pub coupon: super::coupons::Coupon,
    /// Uses so far.
    pub redeemed: u32,
}

#[utoipa::path(post, path = "/v1/admin/billing/coupons", tag = "admin", request_body = super::coupons::Coupon,
    responses((status = 201, body = CouponView), (status = 403, description = "not an operator"),
        (status = 409, description = "a coupon has this code"),
        (status = 422, description = "a field is wrong; the error names it")),
    security(("bearer" = [])))]
async fn create_coupon(
    State(s): State<BillingState>,
    _: Operator,
    Json(mut coupon): Json<super::coupons::Coupon>,
) -> ApiResult<(StatusCode, Json<CouponView>)> {
    coupon
        .check()
        .map_err(|(field, why)| ApiError::invalid(field, why))?;
    if let (Some(plans), Some(listed)) = (&s.billing.plans, &coupon.plans)
        && let Some(unknown) = listed.iter().find(|p| plans.get(p).is_none())
    {
        return Err(ApiError::invalid(
            "plans",
            format!("no plan is called `{unknown}`"),
        ));
    }
    if !super::coupons::create(&s.db, &coupon).await? {
        return Err(ApiError::Conflict(format!(
            "a coupon is called `{}` already",
            coupon.code
        )));
    }
    Ok((
        StatusCode::CREATED,
        Json(CouponView {
            coupon,
            redeemed: 0,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/admin/billing/coupons", tag = "admin",
    responses((status = 200, body = [CouponView]), (status = 403, description = "not an operator")),
    security(("bearer" = [])))]
async fn list_coupons(
    State(s): State<BillingState>,
    _: Operator,
) -> ApiResult<Json<Vec<CouponView>>> {
    Ok(Json(
        super::coupons::list(&s.db)
            .await?
            .into_iter()
            .map(|(coupon, redeemed)| CouponView { coupon, redeemed })
            .collect(),
    ))
}
