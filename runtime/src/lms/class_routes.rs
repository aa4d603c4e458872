//! The HTTP face of classes and assignments: staff make classes and put school members in
//! them; teachers set assignments, read submissions with their conversations, override grades,
//! and read the dashboard and gradebook; learners start, do and hand in assignments. Every
//! class route starts with [`classes::access`], every assignment and submission route with the
//! access to its class.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::assignments::{self, Assignment, NewAssignment, Submission, SubmissionStatus, Todo};
use super::classes::{self, Class, ClassAccess, ClassMember, ClassRole, ClassSummary};
use super::dashboard::{self, Dashboard};
use super::routes::SchoolsState;
use super::rubric::{Criterion, Grade};
use super::schools::{self, ANY, STAFF, SchoolRole};
use crate::auth::AuthUser;
use crate::http::{ApiError, ApiResult, Json, Path};
use crate::store::now_ms;
use crate::tutoring::conversations::routes::{Opening, check_offer};
use crate::tutoring::conversations::{ChatMode, Message};
use crate::tutoring::profile::{Cefr, language};

/// The class and assignment routes (they share the schools' state).
pub fn router() -> OpenApiRouter<SchoolsState> {
    OpenApiRouter::new()
        .routes(routes!(create_class, list_classes))
        .routes(routes!(read_class, update_class))
        .routes(routes!(list_class_members))
        .routes(routes!(put_class_member, remove_class_member))
        .routes(routes!(create_assignment, list_assignments))
        .routes(routes!(read_assignment, update_assignment))
        .routes(routes!(start_assignment))
        .routes(routes!(hand_in))
        .routes(routes!(list_submissions))
        .routes(routes!(read_submission, reset_submission))
        .routes(routes!(grade_submission))
        .routes(routes!(my_assignments))
        .routes(routes!(class_dashboard))
        .routes(routes!(gradebook))
}

fn text(
    field: &'static str,
    v: Option<&str>,
    max: usize,
    required: bool,
) -> ApiResult<Option<String>> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) if s.chars().count() > max => Err(ApiError::invalid(
            field,
            format!("use at most {max} characters"),
        )),
        Some(s) => Ok(Some(s.to_string())),
        None if required => Err(ApiError::invalid(
            field,
            format!("give 1 to {max} characters"),
        )),
        None => Ok(None),
    }
}

/// A new class.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClass {
    /// Its name: not blank.
    #[schema(min_length = 1, max_length = 120, pattern = r"\S")]
    name: String,
    /// The language it learns, such as `fr` (see `GET /v1/languages`).
    #[schema(max_length = 20)]
    language: String,
    /// The level it works at.
    level: Cefr,
}

#[utoipa::path(post, path = "/v1/schools/{school}/classes", tag = "classes", request_body = NewClass,
    responses((status = 201, body = Class, description = "the class; a teacher who makes it teaches it"),
        (status = 403, description = "learners cannot make classes"),
        (status = 404, description = "no such school, or not a member"),
        (status = 422, description = "a blank name or an unknown language")),
    security(("bearer" = [])))]
async fn create_class(
    State(s): State<SchoolsState>,
    user: AuthUser,
    Path(school): Path<String>,
    Json(body): Json<NewClass>,
) -> ApiResult<(StatusCode, Json<Class>)> {
    let m = schools::member(&s.db, &school, &user.id, STAFF).await?;
    let name = text("name", Some(&body.name), 120, true)?.unwrap_or_default();
    let lang = language("language", &body.language)?;
    let id = classes::create(
        &s.db,
        &m.school,
        &name,
        &lang,
        body.level,
        &user.id,
        m.role == SchoolRole::Teacher,
    )
    .await?;
    let class = classes::get(&s.db, &id)
        .await?
        .ok_or(ApiError::NotFound("class"))?;
    Ok((StatusCode::CREATED, Json(class)))
}

#[utoipa::path(get, path = "/v1/schools/{school}/classes", tag = "classes",
    responses((status = 200, body = [ClassSummary], description = "every class for an admin; the caller's own for anyone else"),
        (status = 404, description = "no such school, or not a member")),
    security(("bearer" = [])))]
async fn list_classes(
    State(s): State<SchoolsState>,
    user: AuthUser,
    Path(school): Path<String>,
) -> ApiResult<Json<Vec<ClassSummary>>> {
    let m = schools::member(&s.db, &school, &user.id, ANY).await?;
    Ok(Json(
        classes::list(&s.db, &m.school, &user.id, m.role).await?,
    ))
}

#[utoipa::path(get, path = "/v1/classes/{class}", tag = "classes",
    responses((status = 200, body = Class), (status = 404, description = "no such class, or not in it")),
    security(("bearer" = [])))]
async fn read_class(
    State(s): State<SchoolsState>,
    user: AuthUser,
    Path(class): Path<String>,
) -> ApiResult<Json<Class>> {
    Ok(Json(classes::access(&s.db, &class, &user.id).await?.class))
}

/// Changes to a class.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassPatch {
    /// A new name: not blank.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 120, pattern = r"\S")]
    name: Option<String>,
    /// A new level (assignments already set keep theirs).
    #[serde(default)]
    level: Option<Cefr>,
    /// Archive (or restore) the class.
    #[serde(default)]
    archived: Option<bool>,
}

#[utoipa::path(patch, path = "/v1/classes/{class}", tag = "classes", request_body = ClassPatch,
    responses((status = 200, body = Class), (status = 403, description = "not its teacher or the school's admin"),
        (status = 404, description = "no such class, or not in it"), (status = 422, description = "a blank name")),
    security(("bearer" = [])))]
async fn update_class(
    State(s): State<SchoolsState>,
    user: AuthUser,
    Path(class): Path<String>,
    Json(patch): Json<ClassPatch>,
) -> ApiResult<Json<Class>> {
    let access = classes::access(&s.db, &class, &user.id).await?.teacher()?;
    let name = match &patch.name {
        Some(n) => text("name", Some(n), 120, true)?,
        None => None,
    };
    classes::update(
        &s.db,
        &access.class.id,
        name.as_deref(),
        patch.level,
        patch.archived,
    )
    .await?;
    Ok(Json(
        classes::get(&s.db, &class)
            .await?
            .ok_or(ApiError::NotFound("class"))?,
    ))
}

#[utoipa::path(get, path = "/v1/classes/{class}/members", tag = "classes",
    responses((status = 200, body = [ClassMember], description = "teachers first"),
        (status = 403, description = "not its teacher or the school's admin"),
        (status = 404, description = "no such class, or not in it")),
    security(("bearer" = [])))]
async fn list_class_members(
    State(s): State<SchoolsState>,
    user: AuthUser,
    Path(class): Path<String>,
) -> ApiResult<Json<Vec<ClassMember>>> {
    let access = classes::access(&s.db, &class, &user.id).await?.teacher()?;
    Ok(Json(classes::members(&s.db, &access.class.id).await?))
}

/// A member's place in a class.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassMembership {
    /// `teacher` (a school's admin or teacher) or `learner` (a school's learner).
    role: ClassRole,
}

#[utoipa::path(put, path = "/v1/classes/{class}/members/{user}", tag = "classes", request_body = ClassMembership,
    responses((status = 200, body = [ClassMember], description = "the class's members now"),
        (status = 403, description = "not its teacher or the school's admin"),
        (status = 404, description = "no such class, or not in it"),
        (status = 422, description = "the account is not a member of the school, or its school role does not fit the class role")),
    security(("bearer" = [])))]
async fn put_class_member(
    State(s): State<SchoolsState>,
    user: AuthUser,
    Path((class, member)): Path<(String, String)>,
    Json(body): Json<ClassMembership>,
) -> ApiResult<Json<Vec<ClassMember>>> {
    let access = classes::access(&s.db, &class, &user.id).await?.teacher()?;
    let school_role = schools::role_of(&s.db, &access.class.school, &member)
        .await?
        .ok_or_else(|| {
            ApiError::invalid(
                "user",
                "not a member of this school: invite them to the school first",
            )
        })?;
    if !body.role.fits(school_role) {
        return Err(ApiError::invalid(
            "role",
            format!(
                "a school {} cannot be a class {}: classes are taught by staff and taken by learners",
                school_role.as_str(),
                body.role.as_str()
            ),
        ));
    }
    classes::add(
        &s.db,
        &access.class.id,
        &access.class.school,
        &member,
        body.role,
    )
    .await?;
    Ok(Json(classes::members(&s.db, &access.class.id).await?))
}

#[utoipa::path(delete, path = "/v1/classes/{class}/members/{user}", tag = "classes",
    responses((status = 204, description = "out of the class (their submissions stay)"),
        (status = 403, description = "not its teacher or the school's admin"),
        (status = 404, description = "no such class, or not in it")),
    security(("bearer" = [])))]
async fn remove_class_member(
    State(s): State<SchoolsState>,
    user: AuthUser,
    Path((class, member)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let access = classes::access(&s.db, &class, &user.id).await?.teacher()?;
    classes::remove(&s.db, &access.class.id, &member).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new assignment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAssignmentBody {
    /// Its title: not blank.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    title: String,
    /// What to do, for the learner.
    #[serde(default)]
    #[schema(max_length = 2000)]
    instructions: Option<String>,
    /// `tutor`, `conversation` or `role-play` (default).
    #[serde(default)]
    mode: Option<ChatMode>,
    /// A tutor personality; the mode's first-party one by default.
    #[serde(default)]
    #[schema(max_length = 64)]
    personality: Option<String>,
    /// A scenario the personality offers, for role-play (see `GET /v1/tutors`).
    #[serde(default)]
    #[schema(max_length = 64)]
    scenario: Option<String>,
    /// Something to talk about.
    #[serde(default)]
    #[schema(max_length = 200)]
    topic: Option<String>,
    /// The level it runs at and is scored against; the class's by default.
    #[serde(default)]
    level: Option<Cefr>,
    /// Turns to take before handing in (1 to 100; 6 by default).
    #[serde(default, deserialize_with = "crate::http::whole")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 100)]
    min_turns: Option<i64>,
    /// Due (Unix ms), in the future.
    #[serde(default, deserialize_with = "crate::http::whole")]
    #[schema(value_type = Option<i64>, minimum = 0)]
    due_at: Option<i64>,
}

fn min_turns(v: Option<i64>) -> ApiResult<Option<u32>> {
    match v {
        Some(n) if !(1..=100).contains(&n) => {
            Err(ApiError::invalid("min_turns", "give 1 to 100 turns"))
        }
        other => Ok(other.map(|n| n as u32)),
    }
}

fn due(v: Option<i64>) -> ApiResult<Option<i64>> {
    match v {
        Some(t) if t <= now_ms() => Err(ApiError::invalid(
            "due_at",
            "give a time in the future (Unix milliseconds)",
        )),
        other => Ok(other),
    }
}

#[utoipa::path(post, path = "/v1/classes/{class}/assignments", tag = "assignments", request_body = NewAssignmentBody,
    responses((status = 201, body = Assignment, description = "the assignment, with its rubric"),
        (status = 403, description = "not its teacher or the school's admin"),
        (status = 404, description = "no such class, or not in it"),
        (status = 409, description = "the class is archived"),
        (status = 422, description = "a blank title, a personality that does not run the mode, language or level, an unknown scenario, turns outside 1 to 100, a past due date, or a mode the school's plan does not include")),
    security(("bearer" = [])))]
async fn create_assignment(
    State(s): State<SchoolsState>,
    user: AuthUser,
    Path(class): Path<String>,
    Json(body): Json<NewAssignmentBody>,
) -> ApiResult<(StatusCode, Json<Assignment>)> {
    let access = classes::access(&s.db, &class, &user.id).await?.teacher()?;
    if access.class.archived {
        return Err(ApiError::Conflict(
            "the class is archived: restore it to set assignments".into(),
        ));
    }
    let title = text("title", Some(&body.title), 200, true)?.unwrap_or_default();
    let instructions = text("instructions", body.instructions.as_deref(), 2000, false)?;
    let mode = body.mode.unwrap_or(ChatMode::RolePlay);
    let level = body.level.unwrap_or(access.class.level);
    let opening = Opening {
        personality: text("personality", body.personality.as_deref(), 64, false)?
            .unwrap_or_else(|| mode.default_personality().to_string()),
        mode,
        language: access.class.language.clone(),
        scenario: text("scenario", body.scenario.as_deref(), 64, false)?,
        topic: text("topic", body.topic.as_deref(), 200, false)?,
        title: None,
        level: Some(level),
    };
    // The class's school's own tutors, and the server's.
    check_offer(
        &s.tutoring,
        &opening,
        level,
        std::slice::from_ref(&access.class.school),
    )
    .await?;
    // A seat gives the school's plan: an assignment its learners could not open is refused now.
    if let (Some(plans), Some(school)) = (
        &s.plans,
        schools::view(&s.db, &access.class.school, SchoolRole::Admin).await?,
    ) {
        let plan = school
            .plan
            .as_deref()
            .and_then(|p| plans.get(p))
            .unwrap_or_else(|| plans.free());
        if let Err(limit) = plan.allows(mode, &opening.personality) {
            return Err(ApiError::invalid(
                "mode",
                format!(
                    "the school's learners cannot do this: {}",
                    limit.explain(plan)
                ),
            ));
        }
    }
    let id = assignments::create(
        &s.db,
        &access.class,
        &user.id,
        NewAssignment {
            title,
            instructions,
            mode,
            personality: opening.personality,
            scenario: opening.scenario,
            topic: opening.topic,
            level,
            min_turns: min_turns(body.min_turns)?.unwrap_or(6),
            due_at: due(body.due_at)?,
        },
    )
    .await?;
    let a = assignments::get(&s.db, &id)
        .await?
        .ok_or(ApiError::NotFound("assignment"))?;
    Ok((StatusCode::CREATED, Json(a)))
}

#[utoipa::path(get, path = "/v1/classes/{class}/assignments", tag = "assignments",
    responses((status = 200, body = [Assignment], description = "newest first"),
        (status = 404, description = "no such class, or not in it")),
    security(("bearer" = [])))]
async fn list_assignments(
    State(s): State<SchoolsState>,
    user: AuthUser,
    Path(class): Path<String>,
) -> ApiResult<Json<Vec<Assignment>>> {
    let access = classes::access(&s.db, &class, &user.id).await?;
    Ok(Json(assignments::list(&s.db, &access.class.id).await?))
}

/// An assignment and the caller's submission.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssignmentView {
    /// The assignment.
    pub assignment: Assignment,
    /// The caller's submission, once they started (learners).
    pub submission: Option<Submission>,
}

/// Assignment `id` and the caller's access to its class (404 for both "none" and "not yours").
async fn assignment_access(
    s: &SchoolsState,
    id: &str,
    user: &str,
) -> ApiResult<(Assignment, ClassAccess)> {
    let a = assignments::get(&s.db, id)
        .await?
        .ok_or(ApiError::NotFound("assignment"))?;
    let access = classes::access(&s.db, &a.class, user)
        .await
        .map_err(|e| match e {
            ApiError::NotFound(_) => ApiError::NotFound("assignment"),
            other => other,
        })?;
    Ok((a, access))
}

#[utoipa::path(get, path = "/v1/assignments/{assignment}", tag = "assignments",
    responses((status = 200, body = AssignmentView), (status = 404, description = "no such assignment, or not in its class")),
    security(("bearer" = [])))]
async fn read_assignment(
    State(s): State<SchoolsState>,
    user: AuthUser,
    Path(assignment): Path<String>,
) -> ApiResult<Json<AssignmentView>> {
    let (a, _) = assignment_access(&s, &assignment, &user.id).await?;
    let submission = assignments::submission_of(&s.db, &a.id, &user.id)
        .await?
        .map(Submission::for_learner);
    Ok(Json(AssignmentView {
        assignment: a,
        submission,
    }))
}

/// Changes to an assignment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignmentPatch {
    /// A new title: not blank.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    title: Option<String>,
    /// New instructions.
    #[serde(default)]
    #[schema(max_length = 2000)]
    instructions: Option<String>,
    /// A new due date (Unix ms, in the future); `null` takes it away.
    #[serde(default, deserialize_with = "crate::http::present_whole")]
    #[schema(value_type = Option<i64>, nullable, minimum = 0)]
    due_at: Option<Option<i64>>,
    /// New minimum turns (1 to 100): those who handed in already keep their grade.
    #[serde(default, deserialize_with = "crate::http::whole")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 100)]
    min_turns: Option<i64>,
}

#[utoipa::path(patch, path = "/v1/assignments/{assignment}", tag = "assignments", request_body = AssignmentPatch,
    responses((status = 200, body = Assignment), (status = 403, description = "not its teacher or the school's admin"),
        (status = 404, description = "no such assignment, or not in its class"),
        (status = 422, description = "a blank title, turns outside 1 to 100 or a past due date")),
    security(("bearer" = [])))]
async fn update_assignment(
    State(s): State<SchoolsState>,
    user: AuthUser,
    Path(assignment): Path<String>,
    Json(patch): Json<AssignmentPatch>,
) -> ApiResult<Json<Assignment>> {
    let (a, access) = assignment_access(&s, &assignment, &user.id).await?;
    access.teacher()?;
    let title = match &patch.title {
        Some(t) => text("title", Some(t), 200, true)?,
        None => None,
    };
    let instructions = text("instructions", patch.instructions.as_deref(), 2000, false)?;
    let due_at = match patch.due_at {
        Some(Some(t)) => Some(due(Some(t))?),
        other => other,
    };
    assignments::update(
        &s.db,
        &a.id,
        title.as_deref(),
        instructions.as_deref(),
        due_at,
        min_turns(patch.min_turns)?,
    )
    .await?;
    Ok(Json(
        assignments::get(&s.db, &a.id)
            .await?
            .ok_or(ApiError::NotFound("assignment"))?,
    ))
}

fn learner_only(access: &ClassAccess) -> ApiResult<()> {
    if access.role == Some(ClassRole::Learner) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "assignments are done by the class's learners".into(),
        ))
    }
}

#[utoipa::path(post, path = "/v1/assignments/{assignment}/start", tag = "assignments",
    responses((status = 200, body = Submission, description = "the submission started earlier"),
        (status = 201, body = Submission, description = "started: chat in `conversation` as usual"),
        (status = 402, description = "`plan_limit`: the learner's plan does not include the assignment's mode or personality"),
        (status = 403, description = "not a learner of the class"),
        (status = 404, description = "no such assignment, or not in its class")),
    security(("bearer" = [])))]
async fn start_assignment(
    State(s): State<SchoolsState>,
    user: AuthUser,
    Path(assignment): Path<String>,
) -> ApiResult<(StatusCode, Json<Submission>)> {
    let (a, access) = assignment_access(&s, &assignment, &user.id).await?;
    learner_only(&access)?;
    if let Some(existing) = assignments::submission_of(&s.db, &a.id, &user.id).await? {
        return Ok((StatusCode::OK, Json(existing.for_learner())));
    }
    if let Some(why) = s
        .tutoring
        .plans
        .refuses(&user.id, a.mode, &a.personality)
        .await?
    {
        return Err(ApiError::PlanLimit(why));
    }
    let started = assignments::start(&s.db, &a, &access.class, &user.id).await?;
    Ok((StatusCode::CREATED, Json(started.for_learner())))
}

#[utoipa::path(post, path = "/v1/assignments/{assignment}/submit", tag = "assignments",
    responses((status = 200, body = Submission, description = "handed in and, unless the model is slow to answer, graded"),
        (status = 403, description = "not a learner of the class"),
        (status = 404, description = "no such assignment, not in its class, or not started"),
        (status = 409, description = "handed in already, fewer turns than asked for, or the conversation was deleted")),
    security(("bearer" = [])))]
async fn hand_in(
    State(s): State<SchoolsState>,
    user: AuthUser,
    Path(assignment): Path<String>,
) -> ApiResult<Json<Submission>> {
    let (a, access) = assignment_access(&s, &assignment, &user.id).await?;
    learner_only(&access)?;
    let sub = assignments::submission_of(&s.db, &a.id, &user.id)
        .await?
        .ok_or(ApiError::NotFound("submission"))?;
    assignments::hand_in(&s.db, &a, &sub).await?;
    // Handed in and stored: scoring may fail or be slow; the scorer picks it up then.
    let handed = assignments::submission(&s.db, &sub.id)
        .await?
        .ok_or(ApiError::NotFound("submission"))?;
    let scoring = s.scoring.clone();
    let (a2, h2) = (a.clone(), handed.clone());
    let scored = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        tokio::spawn(async move { scoring.score(&a2, &h2).await }),
    )
    .await;
    if let Ok(Ok(Err(e))) = &scored {
        tracing::warn!(error = %e, submission = %sub.id, "scoring failed; the scorer retries");
    }
    Ok(Json(
        assignments::submission(&s.db, &sub.id)
            .await?
            .ok_or(ApiError::NotFound("submission"))?
            .for_learner(),
    ))
}

#[utoipa::path(get, path = "/v1/assignments/{assignment}/submissions", tag = "assignments",
    responses((status = 200, body = [Submission], description = "every learner's, with penpal's own score beside an overridden grade"),
        (status = 403, description = "not its teacher or the school's admin"),
        (status = 404, description = "no such assignment, or not in its class")),
    security(("bearer" = [])))]
async fn list_submissions(
    State(s): State<SchoolsState>,
    user: AuthUser,
    Path(assignment): Path<String>,
) -> ApiResult<Json<Vec<Submission>>> {
    let (a, access) = assignment_access(&s, &assignment, &user.id).await?;
    access.teacher()?;
    Ok(Json(assignments::submissions(&s.db, &a.id).await?))
}

/// A submission with its assignment and what was handed in of its conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubmissionDetail {
    /// The submission.
    pub submission: Submission,
    /// Its assignment.
    pub assignment: Assignment,
    /// The conversation up to what was handed in (so far, while it is being worked on).
    pub messages: Vec<Message>,
}

/// Submission `id` for `user`: theirs, or one in a class they teach (404 otherwise).
async fn submission_access(
    s: &SchoolsState,
    id: &str,
    user: &str,
) -> ApiResult<(Submission, Assignment, bool)> {
    let sub = assignments::submission(&s.db, id)
        .await?
        .ok_or(ApiError::NotFound("submission"))?;
    let (a, access) = assignment_access(s, &sub.assignment, user)
        .await
        .map_err(|e| match e {
            ApiError::NotFound(_) => ApiError::NotFound("submission"),
            other => other,
        })?;
    let teaches = access.teaches();
    if !teaches && sub.user != user {
        return Err(ApiError::NotFound("submission"));
    }
    Ok((sub, a, teaches))
}

#[utoipa::path(get, path = "/v1/submissions/{submission}", tag = "assignments",
    responses((status = 200, body = SubmissionDetail),
        (status = 404, description = "no such submission, or neither the caller's nor in a class they teach")),
    security(("bearer" = [])))]
async fn read_submission(
    State(s): State<SchoolsState>,
    user: AuthUser,
    Path(submission): Path<String>,
) -> ApiResult<Json<SubmissionDetail>> {
    let (sub, a, teaches) = submission_access(&s, &submission, &user.id).await?;
    let messages = assignments::handed_in(&s.db, &sub).await?;
    Ok(Json(SubmissionDetail {
        submission: if teaches { sub } else { sub.for_learner() },
        assignment: a,
        messages,
    }))
}

#[utoipa::path(delete, path = "/v1/submissions/{submission}", tag = "assignments",
    responses((status = 204, description = "the learner may start the assignment afresh; their conversation stays theirs"),
        (status = 403, description = "not its teacher or the school's admin"),
        (status = 404, description = "no such submission, or neither the caller's nor in a class they teach")),
    security(("bearer" = [])))]
async fn reset_submission(
    State(s): State<SchoolsState>,
    user: AuthUser,
    Path(submission): Path<String>,
) -> ApiResult<StatusCode> {
    let (sub, _, teaches) = submission_access(&s, &submission, &user.id).await?;
    if !teaches {
        return Err(ApiError::Forbidden(
            "a submission is reset by the class's teachers".into(),
        ));
    }
    assignments::reset(&s.db, &sub.id).await?;
    tracing::info!(submission = %sub.id, by = %user.id, "submission reset");
    Ok(StatusCode::NO_CONTENT)
}

/// Scores from 0 to 4; a criterion left out keeps its score.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Scores {
    /// Task completion.
    #[serde(default, deserialize_with = "crate::http::whole")]
    #[schema(value_type = Option<u8>, minimum = 0, maximum = 4)]
    task_completion: Option<i64>,
    /// Accuracy.
    #[serde(default, deserialize_with = "crate::http::whole")]
    #[schema(value_type = Option<u8>, minimum = 0, maximum = 4)]
    accuracy: Option<i64>,
    /// Range.
    #[serde(default, deserialize_with = "crate::http::whole")]
    #[schema(value_type = Option<u8>, minimum = 0, maximum = 4)]
    range: Option<i64>,
    /// Fluency.
    #[serde(default, deserialize_with = "crate::http::whole")]
    #[schema(value_type = Option<u8>, minimum = 0, maximum = 4)]
    fluency: Option<i64>,
}

/// A teacher's grade: the criteria given get the teacher's score; the others keep theirs.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GradeBody {
    /// Scores by criterion.
    #[serde(default)]
    scores: Scores,
    /// A comment for the learner.
    #[serde(default)]
    #[schema(max_length = 2000)]
    comment: Option<String>,
}

#[utoipa::path(put, path = "/v1/submissions/{submission}/grade", tag = "assignments", request_body = GradeBody,
    responses((status = 200, body = Submission, description = "the grade that counts now; penpal's own score stays beside it"),
        (status = 403, description = "not its teacher or the school's admin"),
        (status = 404, description = "no such submission, or not in a class the caller teaches"),
        (status = 409, description = "not handed in yet"),
        (status = 422, description = "a score outside 0 to 4, nothing to change, or a missing criterion on an ungraded submission")),
    security(("bearer" = [])))]
async fn grade_submission(
    State(s): State<SchoolsState>,
    user: AuthUser,
    Path(submission): Path<String>,
    Json(body): Json<GradeBody>,
) -> ApiResult<Json<Submission>> {
    let (sub, a, teaches) = submission_access(&s, &submission, &user.id).await?;
    if !teaches {
        return Err(ApiError::Forbidden(
            "grades are set by the class's teachers".into(),
        ));
    }
    if sub.status == SubmissionStatus::Started {
        return Err(ApiError::Conflict(
            "the learner has not handed this in yet".into(),
        ));
    }
    let given = [
        (Criterion::TaskCompletion, body.scores.task_completion),
        (Criterion::Accuracy, body.scores.accuracy),
        (Criterion::Range, body.scores.range),
        (Criterion::Fluency, body.scores.fluency),
    ];
    let mut scores = Vec::new();
    for (c, score) in given {
        match score {
            Some(n @ 0..=4) => scores.push((c, n as u8)),
            Some(_) => {
                return Err(ApiError::invalid(
                    "scores",
                    format!("`{}` is scored 0 to 4", c.as_str()),
                ));
            }
            None => {}
        }
    }
    let comment = text("comment", body.comment.as_deref(), 2000, false)?;
    if scores.is_empty() && comment.is_none() {
        return Err(ApiError::invalid(
            "scores",
            "give at least one score or a comment",
        ));
    }
    let _: Grade = assignments::regrade(&s.db, &a, &sub, &scores, comment, &user.id).await?;
    s.scoring.wake.notify_one();
    Ok(Json(
        assignments::submission(&s.db, &sub.id)
            .await?
            .ok_or(ApiError::NotFound("submission"))?,
    ))
}

#[utoipa::path(get, path = "/v1/assignments", tag = "assignments",
    responses((status = 200, body = [Todo], description = "the assignments of every class the caller learns in, due soonest first, with their submissions")),
    security(("bearer" = [])))]
async fn my_assignments(
    State(s): State<SchoolsState>,
    user: AuthUser,
) -> ApiResult<Json<Vec<Todo>>> {
    Ok(Json(assignments::for_learner(&s.db, &user.id).await?))
}

#[utoipa::path(get, path = "/v1/classes/{class}/dashboard", tag = "classes",
    responses((status = 200, body = Dashboard),
        (status = 403, description = "not its teacher or the school's admin"),
        (status = 404, description = "no such class, or not in it")),
    security(("bearer" = [])))]
async fn class_dashboard(
    State(s): State<SchoolsState>,
    user: AuthUser,
    Path(class): Path<String>,
) -> ApiResult<Json<Dashboard>> {
    let access = classes::access(&s.db, &class, &user.id).await?.teacher()?;
    Ok(Json(dashboard::build(&s.db, access.class).await?))
}

#[utoipa::path(get, path = "/v1/classes/{class}/gradebook.csv", tag = "classes",
    responses((status = 200, content_type = "text/csv", description = "a row per learner and assignment"),
        (status = 403, description = "not its teacher or the school's admin"),
        (status = 404, description = "no such class, or not in it")),
    security(("bearer" = [])))]
async fn gradebook(
    State(s): State<SchoolsState>,
    user: AuthUser,
    Path(class): Path<String>,
) -> ApiResult<Response> {
    let access = classes::access(&s.db, &class, &user.id).await?.teacher()?;
    let csv = dashboard::gradebook_csv(&s.db, &access.class).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"penpal-gradebook.csv\"",
            ),
        ],
        csv,
    )
        .into_response())
}
