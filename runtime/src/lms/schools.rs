//! Schools as tenants: a school, its members with their roles (admin, teacher, learner), the
//! seats it pays for, and invitations to join it. **Every read of school data goes through
//! [`member`]**, which takes the school from the path and the caller from their token and
//! answers 404 when the caller is not a member — the same answer as a school that does not
//! exist, so one school learns nothing of another.
//!
//! A learner's seat is an entitlement with source `school` (billing's model): joining grants
//! the school's plan, leaving takes it back.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::http::{ApiError, ApiResult};
use crate::store::{Batch, Db, StoreError, StoreResult, now_ms};

/// A role in a school.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SchoolRole {
    /// Runs the school: members, roles, invitations, seats.
    Admin,
    /// Teaches classes; invites learners.
    Teacher,
    /// Learns; takes a seat.
    Learner,
}

impl SchoolRole {
    /// Its name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            SchoolRole::Admin => "admin",
            SchoolRole::Teacher => "teacher",
            SchoolRole::Learner => "learner",
        }
    }
}

/// A school as its members see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct School {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Learner seats it pays for.
    pub seats: i64,
    /// Seats taken (one per learner).
    pub seats_used: i64,
    /// The plan its seats give, when billing is on.
    #[serde(default)]
    pub plan: Option<String>,
    /// The caller's role in it.
    pub role: SchoolRole,
}

/// The caller's membership of a school, checked.
#[derive(Debug, Clone)]
pub struct Member {
    /// The school's id.
    pub school: String,
    /// The caller's role there.
    pub role: SchoolRole,
}

/// `user`'s membership of `school`: 404 when they are not a member (or there is no such
/// school); 403 when their role is not among `roles`.
pub async fn member(db: &Db, school: &str, user: &str, roles: &[SchoolRole]) -> ApiResult<Member> {
    let role: Option<SchoolRole> = db
        .one(
            "SELECT VALUE role FROM type::record('membership', [$s, $u])",
            json!({"s": school, "u": user}),
        )
        .await?;
    let role = role.ok_or(ApiError::NotFound("school"))?;
    if !roles.contains(&role) {
        return Err(ApiError::Forbidden(format!(
            "this needs the role {} in the school; you are {}",
            roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(" or "),
            role.as_str()
        )));
    }
    Ok(Member {
        school: school.to_string(),
        role,
    })
}

/// Every role.
pub const ANY: &[SchoolRole] = &[SchoolRole::Admin, SchoolRole::Teacher, SchoolRole::Learner];
/// Admins and teachers.
pub const STAFF: &[SchoolRole] = &[SchoolRole::Admin, SchoolRole::Teacher];
/// Admins only.
pub const ADMIN: &[SchoolRole] = &[SchoolRole::Admin];

/// Creates a school; its id.
pub async fn create(
    db: &Db,
    name: &str,
    seats: i64,
    plan: Option<&str>,
    by: &str,
) -> StoreResult<String> {
    let id = crate::store::new_id();
    let mut row = json!({"name": name, "seats": seats, "created_at": now_ms(), "created_by": by});
    if let Some(p) = plan {
        row["plan"] = json!(p);
    }
    db.exec(
        "CREATE type::record('school', $id) CONTENT $row",
        json!({"id": id, "row": row}),
    )
    .await?;
    Ok(id)
}

/// School `id` as `role` sees it.
pub async fn view(db: &Db, id: &str, role: SchoolRole) -> StoreResult<Option<School>> {
    #[derive(Deserialize)]
    struct Row {
        name: String,
        seats: i64,
        #[serde(default)]
        plan: Option<String>,
    }
    let Some(row): Option<Row> = db
        .one(
            "SELECT name, seats, plan FROM type::record('school', $id)",
            json!({"id": id}),
        )
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(School {
        id: id.to_string(),
        name: row.name,
        seats: row.seats,
        seats_used: seats_used(db, id).await?,
        plan: row.plan,
        role,
    }))
}

async fn seats_used(db: &Db, school: &str) -> StoreResult<i64> {
    Ok(db
        .one::<i64>(
            "SELECT VALUE count() FROM membership WHERE school = $s AND role = 'learner' GROUP ALL",
            json!({"s": school}),
        )
        .await?
        .unwrap_or(0))
}

/// The schools `user` belongs to.
pub async fn mine(db: &Db, user: &str) -> StoreResult<Vec<School>> {
    #[derive(Deserialize)]
    struct Row {
        school: String,
        role: SchoolRole,
    }
    let rows: Vec<Row> = db
        .rows(
            "SELECT school, role FROM membership WHERE user = $u ORDER BY joined_at",
            json!({"u": user}),
        )
        .await?;
    let mut out = Vec::new();
    for r in rows {
        if let Some(s) = view(db, &r.school, r.role).await? {
            out.push(s);
        }
    }
    Ok(out)
}

/// A member as staff see them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MemberView {
    /// Their account id.
    pub user: String,
    /// Their address.
    pub email: String,
    /// Their display name, if they gave one.
    #[serde(default)]
    pub name: Option<String>,
    /// Their role in the school.
    pub role: SchoolRole,
    /// When they joined (ms).
    pub joined_at: i64,
}

/// The members of `school`, by role then arrival.
pub async fn members(db: &Db, school: &str) -> StoreResult<Vec<MemberView>> {
    db.rows(
        "SELECT user, role, joined_at, (type::record('user', user)).email AS email,
                (type::record('user', user)).profile.display_name AS name
         FROM membership WHERE school = $s ORDER BY role, joined_at",
        json!({"s": school}),
    )
    .await
}

/// Why a membership change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Every seat is taken.
    #[error("every one of the school's {0} learner seats is taken: its admins can buy more")]
    NoSeats(i64),
    /// The school would have no admin left.
    #[error("a school keeps at least one admin: make someone else admin first")]
    LastAdmin,
    /// Already a member.
    #[error("you are a member of this school already")]
    Member,
}

/// Adds to `batch` what `user` holding `role` in `school` means beyond the membership: a
/// learner's seat (the school's plan as a `school` entitlement), or none.
fn seat(batch: &mut Batch, school: &str, user: &str, role: SchoolRole, plan: Option<&str>) {
    let vars = [
        ("se_user".to_string(), json!(user)),
        ("se_school".to_string(), json!(school)),
    ];
    match (role, plan) {
        (SchoolRole::Learner, Some(plan)) => batch.push(
            "UPSERT type::record('entitlement', [$se_user, 'school', $se_school]) CONTENT { user: $se_user, plan: $se_plan, source: 'school', reference: $se_school, created_at: $se_now };",
            vars.into_iter().chain([
                ("se_plan".to_string(), json!(plan)),
                ("se_now".to_string(), json!(now_ms())),
            ]),
        ),
        _ => batch.push(
            "DELETE type::record('entitlement', [$se_user, 'school', $se_school]);",
            vars,
        ),
    }
}

/// The guards a membership write runs inside its transaction, so concurrent changes cannot
/// overfill the seats or leave the school without an admin.
fn guards(batch: &mut Batch, school: &str, keep_an_admin: bool) {
    batch.push(
        "LET $g_learners = (SELECT VALUE count() FROM membership WHERE school = $g_school AND role = 'learner' GROUP ALL)[0] ?? 0;
         LET $g_admins = (SELECT VALUE count() FROM membership WHERE school = $g_school AND role = 'admin' GROUP ALL)[0] ?? 0;
         LET $g_seats = (SELECT VALUE seats FROM type::record('school', $g_school))[0] ?? 0;
         IF $g_learners > $g_seats { THROW 'no_seats' };
         IF $g_keep AND $g_admins < 1 { THROW 'last_admin' };",
        [
            ("g_school".to_string(), json!(school)),
            ("g_keep".to_string(), json!(keep_an_admin)),
        ],
    );
}

async fn plan_of(db: &Db, school: &str) -> StoreResult<Option<String>> {
    Ok(db
        .one::<Option<String>>(
            "SELECT VALUE plan FROM type::record('school', $s)",
            json!({"s": school}),
        )
        .await?
        .flatten())
}

/// Runs a membership change with its guards; a guard's refusal as [`Refused`].
async fn commit(
    db: &Db,
    mut batch: Batch,
    school: &str,
    keep_an_admin: bool,
) -> StoreResult<Result<(), Refused>> {
    guards(&mut batch, school, keep_an_admin);
    match batch.commit(db).await {
        Ok(()) => Ok(Ok(())),
        Err(StoreError::Db(e)) if e.contains("no_seats") => {
            let seats = view(db, school, SchoolRole::Admin)
                .await?
                .map_or(0, |s| s.seats);
            Ok(Err(Refused::NoSeats(seats)))
        }
        Err(StoreError::Db(e)) if e.contains("last_admin") => Ok(Err(Refused::LastAdmin)),
        Err(StoreError::Conflict(_)) => Ok(Err(Refused::Member)),
        Err(e) => Err(e),
    }
}

/// Makes `user` a member of `school` as `role`.
pub async fn join(
    db: &Db,
    school: &str,
    user: &str,
    role: SchoolRole,
) -> StoreResult<Result<(), Refused>> {
    if role_of(db, school, user).await?.is_some() {
        return Ok(Err(Refused::Member));
    }
    let plan = plan_of(db, school).await?;
    let mut batch = Batch::default();
    batch.push(
        "CREATE type::record('membership', [$m_school, $m_user]) CONTENT { school: $m_school, user: $m_user, role: $m_role, joined_at: $m_now };",
        [
            ("m_school".to_string(), json!(school)),
            ("m_user".to_string(), json!(user)),
            ("m_role".to_string(), json!(role.as_str())),
            ("m_now".to_string(), json!(now_ms())),
        ],
    );
    seat(&mut batch, school, user, role, plan.as_deref());
    commit(db, batch, school, false).await
}

/// Gives `user` the role `role` in `school`.
pub async fn set_role(
    db: &Db,
    school: &str,
    user: &str,
    role: SchoolRole,
) -> StoreResult<Result<(), Refused>> {
    let plan = plan_of(db, school).await?;
    let mut batch = Batch::default();
    batch.push(
        "UPDATE type::record('membership', [$m_school, $m_user]) SET role = $m_role;",
        [
            ("m_school".to_string(), json!(school)),
            ("m_user".to_string(), json!(user)),
            ("m_role".to_string(), json!(role.as_str())),
        ],
    );
    seat(&mut batch, school, user, role, plan.as_deref());
    // Class roles follow the school role: staff teach, learners learn.
    batch.push(
        "DELETE class_member WHERE school = $m_school AND user = $m_user AND role != $m_class_role;",
        [(
            "m_class_role".to_string(),
            json!(if role == SchoolRole::Learner { "learner" } else { "teacher" }),
        )],
    );
    commit(db, batch, school, true).await
}

/// Removes `user` from `school`, with their seat.
pub async fn leave(db: &Db, school: &str, user: &str) -> StoreResult<Result<(), Refused>> {
    let mut batch = Batch::default();
    batch.push(
        "DELETE type::record('membership', [$m_school, $m_user]);",
        [
            ("m_school".to_string(), json!(school)),
            ("m_user".to_string(), json!(user)),
        ],
    );
    seat(&mut batch, school, user, SchoolRole::Teacher, None);
    batch.push(
        "DELETE class_member WHERE school = $m_school AND user = $m_user;",
        [],
    );
    commit(db, batch, school, true).await
}

/// `user`'s role in `school`, if they are a member.
pub async fn role_of(db: &Db, school: &str, user: &str) -> StoreResult<Option<SchoolRole>> {
    db.one(
        "SELECT VALUE role FROM type::record('membership', [$s, $u])",
        json!({"s": school, "u": user}),
    )
    .await
}
