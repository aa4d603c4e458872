//! Classes: a school's groups with a target language and level, their teachers and learners.
//! **Every class handler starts with [`access`]**: the class's school comes from the class,
//! the caller's right to it from their membership — a school admin sees every class of their
//! school, a teacher or learner only the classes they are in; anyone else gets 404, the same
//! as a class that does not exist.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::schools::{self, SchoolRole};
use crate::http::{ApiError, ApiResult};
use crate::store::{Db, StoreResult, new_id, now_ms};
use crate::tutoring::profile::Cefr;

/// A role in a class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClassRole {
    /// Sets assignments, sees the class's results.
    Teacher,
    /// Does the assignments.
    Learner,
}

impl ClassRole {
    /// Its name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ClassRole::Teacher => "teacher",
            ClassRole::Learner => "learner",
        }
    }

    /// Whether someone with `school` role may hold this class role: staff teach, learners learn.
    pub fn fits(self, school: SchoolRole) -> bool {
        match self {
            ClassRole::Teacher => school != SchoolRole::Learner,
            ClassRole::Learner => school == SchoolRole::Learner,
        }
    }
}

/// A class.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Class {
    /// Its id.
    pub id: String,
    /// Its school.
    pub school: String,
    /// Its name.
    pub name: String,
    /// The language it learns (a BCP 47 tag).
    pub language: String,
    /// The level it works at.
    pub level: Cefr,
    /// Archived classes take no new assignments.
    pub archived: bool,
    /// Created (ms).
    pub created_at: i64,
}

/// The caller's access to a class, checked.
#[derive(Debug, Clone)]
pub struct ClassAccess {
    /// The class.
    pub class: Class,
    /// The caller's role in its school.
    pub school_role: SchoolRole,
    /// The caller's role in the class (none for a school admin who is not in it).
    pub role: Option<ClassRole>,
}

impl ClassAccess {
    /// Whether the caller teaches the class (its teachers and the school's admins do).
    pub fn teaches(&self) -> bool {
        self.school_role == SchoolRole::Admin || self.role == Some(ClassRole::Teacher)
    }

    /// 403 unless the caller teaches the class.
    pub fn teacher(self) -> ApiResult<ClassAccess> {
        if self.teaches() {
            Ok(self)
        } else {
            Err(ApiError::Forbidden(
                "this is for the class's teachers and the school's admins".into(),
            ))
        }
    }
}

/// Class `id`, if there is one.
pub async fn get(db: &Db, id: &str) -> StoreResult<Option<Class>> {
    db.one(
        "SELECT *, record::id(id) AS id FROM type::record('class', $id)",
        json!({"id": id}),
    )
    .await
}

/// `user`'s access to class `id`: 404 unless they are in it or admin its school.
pub async fn access(db: &Db, id: &str, user: &str) -> ApiResult<ClassAccess> {
    let class = get(db, id).await?.ok_or(ApiError::NotFound("class"))?;
    let school_role = schools::role_of(db, &class.school, user)
        .await?
        .ok_or(ApiError::NotFound("class"))?;
    let role = role_in(db, id, user).await?;
    if role.is_none() && school_role != SchoolRole::Admin {
        return Err(ApiError::NotFound("class"));
    }
    Ok(ClassAccess {
        class,
        school_role,
        role,
    })
}

/// `user`'s role in class `class`, if they are in it.
pub async fn role_in(db: &Db, class: &str, user: &str) -> StoreResult<Option<ClassRole>> {
    db.one(
        "SELECT VALUE role FROM type::record('class_member', [$c, $u])",
        json!({"c": class, "u": user}),
    )
    .await
}

/// Creates a class in `school`, its creator (a teacher) its first teacher; its id.
pub async fn create(
    db: &Db,
    school: &str,
    name: &str,
    language: &str,
    level: Cefr,
    by: &str,
    by_teaches: bool,
) -> StoreResult<String> {
    let id = new_id();
    let now = now_ms();
    db.exec(
        "BEGIN TRANSACTION;
         CREATE type::record('class', $id) CONTENT { school: $s, name: $name, language: $lang, level: $level,
             archived: false, created_at: $now, created_by: $by };
         IF $teaches { CREATE type::record('class_member', [$id, $by]) CONTENT { class: $id, school: $s, user: $by, role: 'teacher', added_at: $now } };
         COMMIT TRANSACTION;",
        json!({"id": id, "s": school, "name": name, "lang": language, "level": level, "now": now, "by": by, "teaches": by_teaches}),
    )
    .await?;
    Ok(id)
}

/// A class in a list, with its counts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClassSummary {
    /// The class.
    #[serde(flatten)]
    pub class: Class,
    /// The caller's role in it (none for a school admin who is not in it).
    #[serde(default)]
    pub role: Option<ClassRole>,
    /// Learners in it.
    pub learners: i64,
    /// Assignments set.
    pub assignments: i64,
}

/// The classes of `school` that `user` (with `role` there) sees: all for an admin, their own
/// for anyone else.
pub async fn list(
    db: &Db,
    school: &str,
    user: &str,
    role: SchoolRole,
) -> StoreResult<Vec<ClassSummary>> {
    db.rows(
        "SELECT *, record::id(id) AS id,
                (SELECT VALUE role FROM type::record('class_member', [record::id($parent.id), $u]))[0] AS role,
                (SELECT VALUE count() FROM class_member WHERE class = record::id($parent.id) AND role = 'learner' GROUP ALL)[0] ?? 0 AS learners,
                (SELECT VALUE count() FROM assignment WHERE class = record::id($parent.id) GROUP ALL)[0] ?? 0 AS assignments
         FROM class WHERE school = $s
             AND ($admin OR record::id(id) INSIDE (SELECT VALUE class FROM class_member WHERE user = $u AND school = $s))
         ORDER BY created_at",
        json!({"s": school, "u": user, "admin": role == SchoolRole::Admin}),
    )
    .await
}

/// Renames, re-levels or archives class `id`.
pub async fn update(
    db: &Db,
    id: &str,
    name: Option<&str>,
    level: Option<Cefr>,
    archived: Option<bool>,
) -> StoreResult<()> {
    db.exec(
        "UPDATE type::record('class', $id) SET name = $name ?? name, level = $level ?? level, archived = $archived ?? archived",
        json!({"id": id, "name": name, "level": level, "archived": archived}),
    )
    .await
}

/// A class member as its teachers see them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClassMember {
    /// Their account id.
    pub user: String,
    /// Their address.
    pub email: String,
    /// Their display name, if they gave one.
    #[serde(default)]
    pub name: Option<String>,
    /// Their role in the class.
    pub role: ClassRole,
    /// When they were added (ms).
    pub added_at: i64,
}

/// The members of class `id`, teachers first.
pub async fn members(db: &Db, id: &str) -> StoreResult<Vec<ClassMember>> {
    db.rows(
        "SELECT user, role, added_at, (type::record('user', user)).email AS email,
                (type::record('user', user)).profile.display_name AS name
         FROM class_member WHERE class = $c ORDER BY role DESC, added_at",
        json!({"c": id}),
    )
    .await
}

/// Puts `user` in class `class` (of `school`) as `role`, or changes their role there.
pub async fn add(
    db: &Db,
    class: &str,
    school: &str,
    user: &str,
    role: ClassRole,
) -> StoreResult<()> {
    db.exec(
        "UPSERT type::record('class_member', [$c, $u]) SET class = $c, school = $s, user = $u, role = $role,
             added_at = added_at ?? $now",
        json!({"c": class, "s": school, "u": user, "role": role.as_str(), "now": now_ms()}),
    )
    .await
}

/// Takes `user` out of class `class`.
pub async fn remove(db: &Db, class: &str, user: &str) -> StoreResult<()> {
    db.exec(
        "DELETE type::record('class_member', [$c, $u])",
        json!({"c": class, "u": user}),
    )
    .await
}

/// The learners of class `id` (account ids).
pub async fn learners(db: &Db, id: &str) -> StoreResult<Vec<String>> {
    db.rows(
        "SELECT VALUE user FROM class_member WHERE class = $c AND role = 'learner' ORDER BY added_at",
        json!({"c": id}),
    )
    .await
}

/// Deletes class `id` and its members (a class made twice by two first launches at once).
pub async fn delete(db: &Db, id: &str) -> StoreResult<()> {
    db.exec(
        "BEGIN TRANSACTION; DELETE class_member WHERE class = $c; DELETE type::record('class', $c); COMMIT TRANSACTION;",
        json!({"c": id}),
    )
    .await
}
