//! An LMS integration for tests: reads the LTI 1.3 claims a launch carries (roles mapped by
//! their vocabulary, the AGS and NRPS endpoints) and shapes AGS scores and line items.

use penpal_host_api::lms::{
    AssignmentLink, CourseRole, Grade, GradeService, GradingProgress, Launch, Lms, Member,
    PlatformInfo,
};
use penpal_host_api::types::PluginError;
use serde_json::{Value, json};

const LTI: &str = "https://purl.imsglobal.org/spec/lti/claim/";
const AGS: &str = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint";
const NRPS: &str = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice";

struct Campus;

fn role(roles: &[&str]) -> CourseRole {
    let has = |what: &str| roles.iter().any(|r| r.ends_with(what));
    if has("#Administrator") {
        CourseRole::Administrator
    } else if has("#Instructor") || has("#TeachingAssistant") {
        CourseRole::Teacher
    } else if has("#Learner") {
        CourseRole::Learner
    } else {
        CourseRole::Other
    }
}

fn parse(text: &str) -> Result<Value, PluginError> {
    serde_json::from_str(text).map_err(|e| PluginError::InvalidInput(format!("not JSON: {e}")))
}

impl Lms for Campus {
    fn platform() -> PlatformInfo {
        PlatformInfo {
            id: "campus".into(),
            name: "Campus LMS".into(),
        }
    }

    fn read_launch(claims: String) -> Result<Launch, PluginError> {
        let c = parse(&claims)?;
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let claim = |name: &str| c.get(format!("{LTI}{name}"));
        let user_id = text(c.get("sub"))
            .ok_or_else(|| PluginError::InvalidInput("the launch has no `sub`".into()))?;
        let context = claim("context")
            .ok_or_else(|| PluginError::InvalidInput("the launch has no context claim".into()))?;
        let roles: Vec<&str> = claim("roles")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let ags = c.get(AGS);
        Ok(Launch {
            user_id,
            email: text(c.get("email")),
            name: text(c.get("name")),
            role: role(&roles),
            context_id: text(context.get("id"))
                .ok_or_else(|| PluginError::InvalidInput("the context has no id".into()))?,
            context_title: text(context.get("title")),
            resource_link_id: text(claim("resource_link").and_then(|r| r.get("id"))),
            assignment_id: text(claim("custom").and_then(|r| r.get("assignment"))),
            grades: ags.map(|a| GradeService {
                line_item: text(a.get("lineitem")),
                line_items: text(a.get("lineitems")),
                scopes: a
                    .get("scope")
                    .and_then(Value::as_array)
                    .map(|s| {
                        s.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            memberships_url: text(c.get(NRPS).and_then(|n| n.get("context_memberships_url"))),
            deep_link_return_url: text(
                c.get("https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings")
                    .and_then(|d| d.get("deep_link_return_url")),
            ),
        })
    }

    fn deep_link_item(link: AssignmentLink) -> Result<String, PluginError> {
        Ok(json!({
            "type": "ltiResourceLink",
            "title": link.title,
            "url": link.url,
            "custom": {"assignment": link.assignment_id},
            "lineItem": {"scoreMaximum": link.score_maximum},
        })
        .to_string())
    }

    fn line_item(link: AssignmentLink) -> Result<String, PluginError> {
        Ok(json!({
            "label": link.title,
            "scoreMaximum": link.score_maximum,
            "resourceId": link.assignment_id,
        })
        .to_string())
    }

    fn score(grade: Grade) -> Result<String, PluginError> {
        if grade.score_given < 0.0 || grade.score_given > grade.score_maximum {
            return Err(PluginError::InvalidInput(format!(
                "score {} is outside 0..={}",
                grade.score_given, grade.score_maximum
            )));
        }
        let grading = match grade.grading {
            GradingProgress::Pending => "Pending",
            GradingProgress::PendingManual => "PendingManual",
            GradingProgress::FullyGraded => "FullyGraded",
            GradingProgress::Failed => "Failed",
        };
        Ok(json!({
            "userId": grade.user_id,
            "scoreGiven": grade.score_given,
            "scoreMaximum": grade.score_maximum,
            "comment": grade.comment,
            "timestamp": grade.timestamp,
            "activityProgress": if grade.completed { "Completed" } else { "InProgress" },
            "gradingProgress": grading,
        })
        .to_string())
    }

    fn read_roster(body: String) -> Result<Vec<Member>, PluginError> {
        let b = parse(&body)?;
        let members = b
            .get("members")
            .and_then(Value::as_array)
            .ok_or_else(|| PluginError::InvalidInput("no `members` list".into()))?;
        Ok(members
            .iter()
            .filter_map(|m| {
                let text = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
                let roles: Vec<&str> = m
                    .get("roles")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                Some(Member {
                    user_id: text("user_id")?,
                    email: text("email"),
                    name: text("name"),
                    role: role(&roles),
                    active: text("status").is_none_or(|s| s == "Active"),
                })
            })
            .collect())
    }
}

penpal_host_api::export_lms!(Campus);
