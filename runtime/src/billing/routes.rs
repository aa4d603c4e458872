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
use crate::auth::{AuthUser, Gate, Keys, Operator};
use crate::http::{ApiError, ApiResult, Json, Query};
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
        .with_state(state)
}

/// A price.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Price {
    /// In the currency's minor unit (cents): 2000 is 20.00.
    pub amount_minor: i64,
    /// ISO 4217, upper case.
    pub currency: String,
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

fn view(p: &Plan, lang: &str, currency: &str) -> PlanView {
    PlanView {
        id: p.id.clone(),
        name: p.name(lang).to_string(),
        interval: p.interval,
        price: p.prices.get(currency).map(|amount| Price {
            amount_minor: *amount,
            currency: currency.to_string(),
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
    responses((status = 200, body = PlanList), (status = 422, description = "no plan is priced in this currency")))]
async fn plans(
    State(s): State<BillingState>,
    Query(q): Query<PlansQuery>,
) -> ApiResult<Json<PlanList>> {
    let currency = q.currency.as_deref().unwrap_or("EUR").to_ascii_uppercase();
    let lang = q.lang.as_deref().unwrap_or("en");
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
        .map(|p| view(p, lang, &currency))
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
}

async fn account_plan(s: &BillingState, user: &str) -> ApiResult<AccountPlan> {
    let now = now_ms();
    let e = s.billing.entitlement(&s.db, user, now).await?;
    let lang = crate::tutoring::profile::load(&s.db, user)
        .await?
        .interface_language;
    Ok(AccountPlan {
        plan: e.plan.as_ref().map(|p| {
            let currency = p
                .prices
                .keys()
                .next()
                .cloned()
                .unwrap_or_else(|| "EUR".into());
            view(p, &lang, &currency)
        }),
        source: e.source,
        until: e.until,
        turns_today: entitlements::turns_today(&s.db, user, now).await?,
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
