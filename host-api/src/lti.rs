//! LTI 1.3 for LMS plugins: reading the claims of a launch the host has verified, shaping
//! Assignment and Grade Services bodies and reading Names and Role Provisioning Services
//! pages — the standard parts, so a platform's plugin only states its [`Quirks`].
//!
//! ```ignore
//! const QUIRKS: Quirks = Quirks { name_from_parts: true, ..Quirks::STANDARD };
//! penpal_host_api::export_lti_platform!("myplatform", "My Platform", QUIRKS);
//! ```

use serde_json::{Value, json};

use crate::lms::{
    AssignmentLink, CourseRole, Grade, GradeService, GradingProgress, Launch, Member,
};
use crate::types::PluginError;

/// The LTI claim namespace.
pub const LTI: &str = "https://purl.imsglobal.org/spec/lti/claim/";
/// The Assignment and Grade Services claim.
pub const AGS: &str = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint";
/// The Names and Role Provisioning Services claim.
pub const NRPS: &str = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice";
/// The Deep Linking settings claim.
pub const DEEP_LINKING: &str = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings";

/// What differs by platform.
#[derive(Debug, Clone, Copy)]
pub struct Quirks {
    /// Build the name from `given_name` and `family_name` when `name` is missing.
    pub name_from_parts: bool,
    /// Institution roles (`…/institution/person#Instructor`) count for the course too; some
    /// platforms send only those for staff.
    pub institution_roles_count: bool,
    /// The custom parameter naming the Penpal assignment a link opens.
    pub assignment_param: &'static str,
    /// Extra members of a score body (a platform's extension), merged in.
    pub score_extension: Option<&'static str>,
}

impl Quirks {
    /// The specification as written.
    pub const STANDARD: Quirks = Quirks {
        name_from_parts: false,
        institution_roles_count: false,
        assignment_param: "assignment",
        score_extension: None,
    };
}

/// A course role from LTI role URIs (full, `urn:lti:role:` or short forms).
pub fn course_role(roles: &[&str], quirks: &Quirks) -> CourseRole {
    let counts = |r: &str| {
        quirks.institution_roles_count
            || !(r.contains("/institution/")
                || r.contains("/system/")
                || r.contains("urn:lti:instrole:"))
    };
    let name = |r: &str| -> String {
        r.rsplit(['#', '/', ':'])
            .next()
            .unwrap_or(r)
            .to_ascii_lowercase()
    };
    let names: Vec<String> = roles
        .iter()
        .filter(|r| counts(r))
        .map(|r| name(r))
        .collect();
    let has = |what: &str| names.iter().any(|n| n == what);
    let admin = roles.iter().any(|r| {
        (r.contains("/institution/") || r.contains("/system/")) && name(r) == "administrator"
    });
    if admin || has("administrator") {
        CourseRole::Administrator
    } else if has("instructor")
        || has("teachingassistant")
        || has("contentdeveloper")
        || has("mentor")
    {
        CourseRole::Teacher
    } else if has("learner") || has("student") {
        CourseRole::Learner
    } else {
        CourseRole::Other
    }
}

fn invalid(what: &str) -> PluginError {
    PluginError::InvalidInput(what.to_string())
}

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Reads a verified launch's claims (the id token's payload as JSON).
pub fn read_launch(claims: &str, quirks: &Quirks) -> Result<Launch, PluginError> {
    let c: Value = serde_json::from_str(claims).map_err(|e| invalid(&format!("not JSON: {e}")))?;
    let claim = |name: &str| c.get(format!("{LTI}{name}"));
    let user_id = text(c.get("sub")).ok_or_else(|| invalid("the launch has no `sub`"))?;
    let context = claim("context").ok_or_else(|| invalid("the launch has no context claim"))?;
    let roles = strings(claim("roles"));
    let name = text(c.get("name")).or_else(|| {
        quirks
            .name_from_parts
            .then(|| {
                [text(c.get("given_name")), text(c.get("family_name"))]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .filter(|n| !n.is_empty())
    });
    let ags = c.get(AGS);
    Ok(Launch {
        user_id,
        email: text(c.get("email")).map(|e| e.to_lowercase()),
        name,
        role: course_role(&roles, quirks),
        context_id: text(context.get("id"))
            .ok_or_else(|| invalid("the context claim has no id"))?,
        context_title: text(context.get("title")).or_else(|| text(context.get("label"))),
        resource_link_id: text(claim("resource_link").and_then(|r| r.get("id"))),
        assignment_id: text(claim("custom").and_then(|r| r.get(quirks.assignment_param))),
        grades: ags.map(|a| GradeService {
            line_item: text(a.get("lineitem")),
            line_items: text(a.get("lineitems")),
            scopes: strings(a.get("scope"))
                .into_iter()
                .map(String::from)
                .collect(),
        }),
        memberships_url: text(c.get(NRPS).and_then(|n| n.get("context_memberships_url"))),
        deep_link_return_url: text(
            c.get(DEEP_LINKING)
                .and_then(|d| d.get("deep_link_return_url")),
        ),
    })
}

/// The deep-linking content item for `link`.
pub fn deep_link_item(link: &AssignmentLink, quirks: &Quirks) -> Value {
    json!({
        "type": "ltiResourceLink",
        "title": link.title,
        "url": link.url,
        "custom": {quirks.assignment_param: link.assignment_id},
        "lineItem": {"scoreMaximum": link.score_maximum, "label": link.title, "resourceId": link.assignment_id},
    })
}

/// The line item to create for `link`.
pub fn line_item(link: &AssignmentLink) -> Value {
    json!({
        "label": link.title,
        "scoreMaximum": link.score_maximum,
        "resourceId": link.assignment_id,
        "tag": "penpal",
    })
}

/// Unix seconds as RFC 3339 UTC (`2026-12-02T07:30:00Z`).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The score body for `grade` (AGS `application/vnd.ims.lis.v1.score+json`).
pub fn score(grade: &Grade, quirks: &Quirks) -> Result<Value, PluginError> {
    if !(0.0..=grade.score_maximum).contains(&grade.score_given) {
        return Err(invalid(&format!(
            "score {} is outside 0 to {}",
            grade.score_given, grade.score_maximum
        )));
    }
    let mut body = json!({
        "userId": grade.user_id,
        "scoreGiven": grade.score_given,
        "scoreMaximum": grade.score_maximum,
        "timestamp": rfc3339(grade.timestamp),
        "activityProgress": if grade.completed { "Completed" } else { "InProgress" },
        "gradingProgress": match grade.grading {
            GradingProgress::Pending => "Pending",
            GradingProgress::PendingManual => "PendingManual",
            GradingProgress::FullyGraded => "FullyGraded",
            GradingProgress::Failed => "Failed",
        },
    });
    if let Some(comment) = &grade.comment {
        body["comment"] = json!(comment);
    }
    if let (Some(ext), Some(obj)) = (quirks.score_extension, body.as_object_mut())
        && let Ok(Value::Object(extra)) = serde_json::from_str::<Value>(ext)
    {
        obj.extend(extra);
    }
    Ok(body)
}

/// One page of a roster (`application/vnd.ims.lti-nrps.v2.membershipcontainer+json`).
pub fn read_roster(body: &str, quirks: &Quirks) -> Result<Vec<Member>, PluginError> {
    let b: Value = serde_json::from_str(body).map_err(|e| invalid(&format!("not JSON: {e}")))?;
    let members = b
        .get("members")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("no `members` list"))?;
    Ok(members
        .iter()
        .filter_map(|m| {
            let name = text(m.get("name")).or_else(|| {
                quirks
                    .name_from_parts
                    .then(|| {
                        [text(m.get("given_name")), text(m.get("family_name"))]
                            .into_iter()
                            .flatten()
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .filter(|n| !n.is_empty())
            });
            Some(Member {
                user_id: text(m.get("user_id"))?,
                email: text(m.get("email")).map(|e| e.to_lowercase()),
                name,
                role: course_role(&strings(m.get("roles")), quirks),
                active: text(m.get("status")).is_none_or(|s| s == "Active"),
            })
        })
        .collect())
}

/// Exports an LMS plugin for a platform that differs from the specification only by its
/// [`Quirks`]: `export_lti_platform!("moodle", "Moodle 4.x", QUIRKS);` implements every
/// function of the `lms-integration` interface with this module's readers and shapers.
#[macro_export]
macro_rules! export_lti_platform {
    ($id:literal, $name:literal, $quirks:expr) => {
        struct __LtiPlatform;

        impl $crate::lms::Lms for __LtiPlatform {
            fn platform() -> $crate::lms::PlatformInfo {
                $crate::lms::PlatformInfo {
                    id: $id.into(),
                    name: $name.into(),
                }
            }

            fn read_launch(
                claims: String,
            ) -> Result<$crate::lms::Launch, $crate::types::PluginError> {
                $crate::lti::read_launch(&claims, &$quirks)
            }

            fn deep_link_item(
                link: $crate::lms::AssignmentLink,
            ) -> Result<String, $crate::types::PluginError> {
                Ok($crate::lti::deep_link_item(&link, &$quirks).to_string())
            }

            fn line_item(
                link: $crate::lms::AssignmentLink,
            ) -> Result<String, $crate::types::PluginError> {
                Ok($crate::lti::line_item(&link).to_string())
            }

            fn score(grade: $crate::lms::Grade) -> Result<String, $crate::types::PluginError> {
                Ok($crate::lti::score(&grade, &$quirks)?.to_string())
            }

            fn read_roster(
                body: String,
            ) -> Result<Vec<$crate::lms::Member>, $crate::types::PluginError> {
                $crate::lti::read_roster(&body, &$quirks)
            }
        }

        $crate::export_lms!(__LtiPlatform);
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_map_from_every_vocabulary() {
        let q = Quirks::STANDARD;
        let r = |roles: &[&str]| course_role(roles, &q);
        assert_eq!(
            r(&["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"]),
            CourseRole::Teacher
        );
        assert_eq!(
            r(&["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]),
            CourseRole::Learner
        );
        assert_eq!(r(&["urn:lti:role:ims/lis/Instructor"]), CourseRole::Teacher);
        assert_eq!(r(&["Learner"]), CourseRole::Learner);
        assert_eq!(
            r(&["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor"]),
            CourseRole::Other,
            "an institution role alone does not make a course teacher"
        );
        assert_eq!(
            course_role(
                &["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor"],
                &Quirks {
                    institution_roles_count: true,
                    ..q
                }
            ),
            CourseRole::Teacher
        );
        assert_eq!(
            r(&["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"]),
            CourseRole::Administrator
        );
    }

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_196_600), "2026-12-02T07:30:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
