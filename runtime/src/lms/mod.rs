//! Schools and LMS integrations: schools as tenants with members, roles, seats and
//! invitations ([`schools`], [`invitations`], [`routes`]), and the client for the `lms` world
//! ([`platform::LmsClient`]); classes, assignments and LTI flows build on these (see
//! `docs/schools.md`).

pub mod invitations;
pub mod platform;
pub mod routes;
pub mod schools;

/// The lms room's part of a person's data: the schools they belong to.
pub struct SchoolData;

impl crate::store::personal::PersonalData for SchoolData {
    fn export(&self) -> &'static [(&'static str, &'static str)] {
        &[(
            "schools",
            "SELECT school, (type::record('school', school)).name AS name, role, joined_at FROM membership WHERE user = $u ORDER BY joined_at",
        )]
    }

    fn delete(&self) -> &'static str {
        "DELETE membership WHERE user = $u;"
    }
}
