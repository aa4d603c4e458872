//! Schools and LMS integrations: schools as tenants with members, roles, seats and
//! invitations ([`schools`], [`invitations`], [`routes`]); classes ([`classes`]), assignments
//! scored against a CEFR-aligned [`rubric`] ([`assignments`]), what teachers see of a class
//! ([`dashboard`]) and their routes ([`class_routes`]); and the client for the `lms` world
//! ([`platform::LmsClient`]); LTI 1.3 launches and platforms ([`lti`]); schools' own sign-in through their identity provider ([`sso`]). See `docs/schools.md`.

pub mod assignments;
pub mod class_routes;
pub mod classes;
pub mod dashboard;
pub mod invitations;
pub mod lti;
pub mod platform;
pub mod routes;
pub mod rubric;
pub mod schools;
pub mod simulator;
pub mod sso;

/// Who may use which school's own tutors: the schools an account is a member of.
pub struct Memberships {
    /// The database.
    pub db: crate::store::Db,
}

impl crate::tutoring::state::TutorScope for Memberships {
    fn schools_of<'a>(
        &'a self,
        user: &'a str,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = crate::store::StoreResult<Vec<String>>> + Send + 'a>,
    > {
        Box::pin(async move {
            self.db
                .rows(
                    "SELECT VALUE school FROM membership WHERE user = $u;",
                    serde_json::json!({"u": user}),
                )
                .await
        })
    }
}

/// The lms room's part of a person's data: the schools and classes they belong to, their
/// submissions and grades.
pub struct SchoolData;

impl crate::store::personal::PersonalData for SchoolData {
    fn export(&self) -> &'static [(&'static str, &'static str)] {
        &[
            (
                "schools",
                "SELECT school, (type::record('school', school)).name AS name, role, joined_at FROM membership WHERE user = $u ORDER BY joined_at",
            ),
            (
                "classes",
                "SELECT class, (type::record('class', class)).name AS name, role, added_at FROM class_member WHERE user = $u ORDER BY added_at",
            ),
            (
                "submissions",
                "SELECT assignment, (type::record('assignment', assignment)).title AS title, conversation, status, started_at,
                        submitted_at, turns, late, grade FROM submission WHERE user = $u ORDER BY started_at",
            ),
            (
                "platform_accounts",
                "SELECT school, issuer, sub, created_at FROM lti_user WHERE user = $u ORDER BY created_at",
            ),
        ]
    }

    fn delete(&self) -> &'static str {
        "DELETE membership WHERE user = $u; DELETE class_member WHERE user = $u; DELETE submission WHERE user = $u;
         DELETE lti_user WHERE user = $u;"
    }
}
