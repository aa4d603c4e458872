//! The schools' HTTP face: operators create schools; members read theirs; admins manage
//! members, roles and invitations (teachers invite learners); anyone signed in accepts an
//! invitation. Every `/v1/schools/{school}/…` handler starts with [`schools::member`].

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::invitations::{self, Invitation};
use super::schools::{self, ADMIN, ANY, MemberView, Refused, STAFF, School, SchoolRole};
use crate::auth::{AuthUser, Gate, Keys, Operator};
use crate::http::{ApiError, ApiResult, Json, Path};
use crate::store::outbox::{Category, Notice, Routing};
use crate::store::{Batch, Db};

/// What the school handlers use.
#[derive(Clone)]
pub struct SchoolsState {
    /// The database.
    pub db: Db,
    /// Token keys, to know who is signed in.
    pub keys: Arc<Keys>,
    /// Where learners reach penpal, for invitation links (no trailing slash).
    pub public_url: String,
    /// Channels per category, for invitation mail.
    pub routing: Arc<Routing>,
    /// Wakes the outbox after an invitation is mailed.
    pub outbox: Arc<tokio::sync::Notify>,
    /// The plans seats may give (none: billing is off).
    pub plans: Option<crate::billing::plans::Plans>,
    /// The tutoring room, for the conversations assignments open.
    pub tutoring: crate::tutoring::state::TutoringState,
    /// Scores handed-in assignments.
    pub scoring: super::assignments::Scoring,
}

impl FromRef<SchoolsState> for Gate {
    fn from_ref(s: &SchoolsState) -> Gate {
        Gate {
            db: s.db.clone(),
            keys: s.keys.clone(),
        }
    }
}

/// The school routes.
pub fn router(state: SchoolsState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(create_school))
        .routes(routes!(my_schools))
        .routes(routes!(read_school))
        .routes(routes!(list_members))
        .routes(routes!(change_member, remove_member))
        .routes(routes!(invite, list_invitations))
        .routes(routes!(revoke_invitation))
        .routes(routes!(preview_invitation))
        .routes(routes!(accept_invitation))
        .merge(super::class_routes::router())
        .with_state(state)
}

fn refused(r: Refused) -> ApiError {
    ApiError::Conflict(r.to_string())
}

/// A new school.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSchool {
    /// Its name: not blank.
    #[schema(min_length = 1, max_length = 120, pattern = r"\S")]
    name: String,
    /// Learner seats it pays for (0 to 100000).
    #[schema(minimum = 0, maximum = 100000)]
    seats: i64,
    /// The plan its seats give (a plan id from `GET /v1/billing/plans`); none when billing is off.
    #[schema(max_length = 40)]
    plan: Option<String>,
    /// The address of its first admin: they get an invitation.
    #[schema(format = Email, max_length = 254)]
    admin_email: String,
}

/// A school just made, and its first admin's invitation.
#[derive(Debug, Serialize, ToSchema)]
pub struct SchoolMade {
    /// The school's id.
    pub id: String,
    /// The link its first admin follows (also mailed to them).
    pub admin_invitation_url: String,
}

/// A new invitation's link, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationMade {
    /// The invitation.
    pub invitation: Invitation,
    /// The link to follow (it holds the only copy of the token).
    pub url: String,
}

impl SchoolsState {
    /// Makes an invitation and, when it names an address, mails it; the link.
    #[allow(clippy::too_many_arguments)]
    async fn invitation(
        &self,
        school: &str,
        school_name: &str,
        role: SchoolRole,
        email: Option<&str>,
        max_uses: i64,
        days: i64,
        by: &str,
    ) -> ApiResult<InvitationMade> {
        let made = invitations::create(&self.db, school, role, email, max_uses, days, by).await?;
        let url = format!("{}/join?token={}", self.public_url, made.token);
        if let Some(to) = email {
            let inviter = crate::auth::routes::user_by_id(&self.db, by).await?;
            let mut batch = Batch::default();
            batch.notify(
                &Notice {
                    template: "school_invitation",
                    category: Category::School,
                    user: None,
                    to: to.to_string(),
                    lang: inviter.interface_language.unwrap_or_else(|| "en".into()),
                    vars: serde_json::json!({
                        "inviter": inviter.name.unwrap_or(inviter.email), "school": school_name,
                        "role": role.as_str(), "days": days, "link": url,
                        "name": to.split('@').next().unwrap_or(to),
                    }),
                },
                &self.routing,
                "si",
            );
            batch.commit(&self.db).await?;
            self.outbox.notify_one();
        }
        Ok(InvitationMade {
            invitation: made.invitation,
            url,
        })
    }
}

fn address(field: &'static str, email: &str) -> ApiResult<String> {
    let email = email.trim().to_lowercase();
    if email.len() > 254 || !email.contains('@') || email.starts_with('@') || email.ends_with('@') {
        return Err(ApiError::invalid(field, "give an email address"));
    }
    Ok(email)
}

#[utoipa::path(post, path = "/v1/admin/schools", tag = "admin", request_body = NewSchool,
    responses((status = 201, body = SchoolMade, description = "the school, and the invitation mailed to its first admin"),
        (status = 403, description = "not an operator"),
        (status = 422, description = "a blank name, seats outside 0 to 100000, an unknown plan or a bad address")),
    security(("bearer" = [])))]
async fn create_school(
    State(s): State<SchoolsState>,
    op: Operator,
    Json(body): Json<NewSchool>,
) -> ApiResult<(StatusCode, Json<SchoolMade>)> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 120 {
        return Err(ApiError::invalid(
            "name",
            "give a name of 1 to 120 characters",
        ));
    }
    if !(0..=100_000).contains(&body.seats) {
        return Err(ApiError::invalid("seats", "give 0 to 100000 seats"));
    }
    if let (Some(plan), Some(plans)) = (&body.plan, &s.plans)
        && plans.get(plan).is_none()
    {
        return Err(ApiError::invalid(
            "plan",
            format!("no plan is called `{plan}`"),
        ));
    }
    let admin = address("admin_email", &body.admin_email)?;
    let id = schools::create(&s.db, name, body.seats, body.plan.as_deref(), &op.0.id).await?;
    let made = s
        .invitation(&id, name, SchoolRole::Admin, Some(&admin), 1, 14, &op.0.id)
        .await?;
    tracing::info!(school = %id, by = %op.0.id, "school created");
    Ok((
        StatusCode::CREATED,
        Json(SchoolMade {
            id,
            admin_invitation_url: made.url,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/schools", tag = "schools",
    responses((status = 200, body = [School], description = "the schools the caller belongs to")),
    security(("bearer" = [])))]
async fn my_schools(State(s): State<SchoolsState>, user: AuthUser) -> ApiResult<Json<Vec<School>>> {
    Ok(Json(schools::mine(&s.db, &user.id).await?))
}

#[utoipa::path(get, path = "/v1/schools/{school}", tag = "schools",
    params(("school" = String, Path, description = "the school's id")),
    responses((status = 200, body = School), (status = 404, description = "no such school among the caller's")),
    security(("bearer" = [])))]
async fn read_school(
    State(s): State<SchoolsState>,
    user: AuthUser,
    Path(school): Path<String>,
) -> ApiResult<Json<School>> {
    let me = schools::member(&s.db, &school, &user.id, ANY).await?;
    schools::view(&s.db, &me.school, me.role)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("school"))
}

#[utoipa::path(get, path = "/v1/schools/{school}/members", tag = "schools",
    params(("school" = String, Path, description = "the school's id")),
    responses((status = 200, body = [MemberView]), (status = 403, description = "learners do not see the member list"),
        (status = 404, description = "no such school among the caller's")),
    security(("bearer" = [])))]
async fn list_members(
    State(s): State<SchoolsState>,
    user: AuthUser,
    Path(school): Path<String>,
) -> ApiResult<Json<Vec<MemberView>>> {
    let me = schools::member(&s.db, &school, &user.id, STAFF).await?;
    Ok(Json(schools::members(&s.db, &me.school).await?))
}

/// A member's new role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    /// `admin`, `teacher` or `learner`.
    role: SchoolRole,
}

#[utoipa::path(patch, path = "/v1/schools/{school}/members/{user}", tag = "schools", request_body = RoleChange,
    params(("school" = String, Path, description = "the school's id"), ("user" = String, Path, description = "the member's account id")),
    responses((status = 200, body = [MemberView], description = "the members now"),
        (status = 403, description = "only admins change roles"),
        (status = 404, description = "no such school among the caller's, or no such member"),
        (status = 409, description = "no learner seat left, or the school would have no admin")),
    security(("bearer" = [])))]
async fn change_member(
    State(s): State<SchoolsState>,
    user: AuthUser,
    Path((school, member)): Path<(String, String)>,
    Json(body): Json<RoleChange>,
) -> ApiResult<Json<Vec<MemberView>>> {
    let me = schools::member(&s.db, &school, &user.id, ADMIN).await?;
    if schools::role_of(&s.db, &me.school, &member)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound("member"));
    }
    schools::set_role(&s.db, &me.school, &member, body.role)
        .await?
        .map_err(refused)?;
    Ok(Json(schools::members(&s.db, &me.school).await?))
}

#[utoipa::path(delete, path = "/v1/schools/{school}/members/{user}", tag = "schools",
    params(("school" = String, Path, description = "the school's id"), ("user" = String, Path, description = "the member's account id (one's own, to leave)")),
    responses((status = 204, description = "no longer a member; a learner's seat is free"),
        (status = 403, description = "only admins remove others"),
        (status = 404, description = "no such school among the caller's, or no such member"),
        (status = 409, description = "the school would have no admin")),
    security(("bearer" = [])))]
async fn remove_member(
    State(s): State<SchoolsState>,
    user: AuthUser,
    Path((school, member)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let roles = if member == user.id { ANY } else { ADMIN };
    let me = schools::member(&s.db, &school, &user.id, roles).await?;
    if schools::role_of(&s.db, &me.school, &member)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound("member"));
    }
    schools::leave(&s.db, &me.school, &member)
        .await?
        .map_err(refused)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new invitation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvitation {
    /// The role it gives; teachers invite learners only.
    role: SchoolRole,
    /// Mail it to this address, and let only this address accept it.
    #[schema(format = Email, max_length = 254)]
    email: Option<String>,
    /// Days it works (1 to 30; 14 by default).
    #[schema(minimum = 1, maximum = 30)]
    days: Option<i64>,
    /// How many accounts may accept it (1 to 1000; 1 with an address, 50 without).
    #[schema(minimum = 1, maximum = 1000)]
    max_uses: Option<i64>,
}

#[utoipa::path(post, path = "/v1/schools/{school}/invitations", tag = "schools", request_body = NewInvitation,
    params(("school" = String, Path, description = "the school's id")),
    responses((status = 201, body = InvitationMade, description = "the link (shown once; mailed when it names an address)"),
        (status = 403, description = "learners do not invite; teachers invite learners only"),
        (status = 404, description = "no such school among the caller's"),
        (status = 422, description = "days outside 1 to 30, uses outside 1 to 1000, or a bad address")),
    security(("bearer" = [])))]
async fn invite(
    State(s): State<SchoolsState>,
    user: AuthUser,
    Path(school): Path<String>,
    Json(body): Json<NewInvitation>,
) -> ApiResult<(StatusCode, Json<InvitationMade>)> {
    let me = schools::member(&s.db, &school, &user.id, STAFF).await?;
    if me.role == SchoolRole::Teacher && body.role != SchoolRole::Learner {
        return Err(ApiError::Forbidden(
            "teachers invite learners; admins invite staff".into(),
        ));
    }
    let email = body
        .email
        .as_deref()
        .map(|e| address("email", e))
        .transpose()?;
    let days = body.days.unwrap_or(14);
    if !(1..=30).contains(&days) {
        return Err(ApiError::invalid("days", "give 1 to 30 days"));
    }
    let max_uses = body
        .max_uses
        .unwrap_or(if email.is_some() { 1 } else { 50 });
    if !(1..=1000).contains(&max_uses) {
        return Err(ApiError::invalid("max_uses", "give 1 to 1000 uses"));
    }
    let name = schools::view(&s.db, &me.school, me.role)
        .await?
        .ok_or(ApiError::NotFound("school"))?
        .name;
    let made = s
        .invitation(
            &me.school,
            &name,
            body.role,
            email.as_deref(),
            max_uses,
            days,
            &user.id,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(made)))
}

#[utoipa::path(get, path = "/v1/schools/{school}/invitations", tag = "schools",
    params(("school" = String, Path, description = "the school's id")),
    responses((status = 200, body = [Invitation], description = "newest first, without their tokens"),
        (status = 403, description = "only admins see invitations"),
        (status = 404, description = "no such school among the caller's")),
    security(("bearer" = [])))]
async fn list_invitations(
    State(s): State<SchoolsState>,
    user: AuthUser,
    Path(school): Path<String>,
) -> ApiResult<Json<Vec<Invitation>>> {
    let me = schools::member(&s.db, &school, &user.id, ADMIN).await?;
    Ok(Json(invitations::list(&s.db, &me.school).await?))
}

#[utoipa::path(delete, path = "/v1/schools/{school}/invitations/{invitation}", tag = "schools",
    params(("school" = String, Path, description = "the school's id"), ("invitation" = String, Path, description = "the invitation's id")),
    responses((status = 204, description = "the link no longer works"),
        (status = 403, description = "only admins revoke invitations"),
        (status = 404, description = "no such school among the caller's, or no such invitation")),
    security(("bearer" = [])))]
async fn revoke_invitation(
    State(s): State<SchoolsState>,
    user: AuthUser,
    Path((school, invitation)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let me = schools::member(&s.db, &school, &user.id, ADMIN).await?;
    if !invitations::revoke(&s.db, &me.school, &invitation).await? {
        return Err(ApiError::NotFound("invitation"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// What an invitation offers, before accepting it.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationPreview {
    /// The school's name.
    pub school: String,
    /// The role it gives.
    pub role: SchoolRole,
}

#[utoipa::path(get, path = "/v1/invitations/{token}", tag = "schools",
    params(("token" = String, Path, description = "the token from the invitation link")),
    responses((status = 200, body = InvitationPreview),
        (status = 404, description = "no such invitation, or it expired, was used up or revoked")))]
async fn preview_invitation(
    State(s): State<SchoolsState>,
    Path(token): Path<String>,
) -> ApiResult<Json<InvitationPreview>> {
    let open = invitations::open(&s.db, &token)
        .await?
        .ok_or(ApiError::NotFound("invitation"))?;
    let school = schools::view(&s.db, &open.school, open.role)
        .await?
        .ok_or(ApiError::NotFound("invitation"))?;
    Ok(Json(InvitationPreview {
        school: school.name,
        role: open.role,
    }))
}

#[utoipa::path(post, path = "/v1/invitations/{token}/accept", tag = "schools",
    params(("token" = String, Path, description = "the token from the invitation link")),
    responses((status = 201, body = School, description = "the caller is a member now"),
        (status = 403, description = "the invitation is for another address"),
        (status = 404, description = "no such invitation, or it expired, was used up or revoked"),
        (status = 409, description = "a member already, or no learner seat left")),
    security(("bearer" = [])))]
async fn accept_invitation(
    State(s): State<SchoolsState>,
    user: AuthUser,
    Path(token): Path<String>,
) -> ApiResult<(StatusCode, Json<School>)> {
    let open = invitations::open(&s.db, &token)
        .await?
        .ok_or(ApiError::NotFound("invitation"))?;
    if let Some(for_whom) = &open.email {
        let me = crate::auth::routes::user_by_id(&s.db, &user.id).await?;
        if !me.email.eq_ignore_ascii_case(for_whom) {
            return Err(ApiError::Forbidden(
                "this invitation is for another address: sign in with the one it was sent to"
                    .into(),
            ));
        }
    }
    schools::join(&s.db, &open.school, &user.id, open.role)
        .await?
        .map_err(refused)?;
    if !invitations::spend(&s.db, &open.id).await? {
        // Its last use went to someone else a moment ago.
        schools::leave(&s.db, &open.school, &user.id)
            .await?
            .map_err(refused)?;
        return Err(ApiError::NotFound("invitation"));
    }
    tracing::info!(school = %open.school, user = %user.id, role = open.role.as_str(), "joined a school");
    let school = schools::view(&s.db, &open.school, open.role)
        .await?
        .ok_or(ApiError::NotFound("school"))?;
    Ok((StatusCode::CREATED, Json(school)))
}
