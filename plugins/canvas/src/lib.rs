//! Canvas LMS as an LTI 1.3 platform. Canvas's quirks: one issuer (`https://canvas.instructure.com`) for every instance, deployment ids like `12:8865…`, UUID user ids, and a score extension that makes a grade a new submission in SpeedGrader.

use penpal_host_api::lms::{AssignmentLink, Grade, Launch, Lms, Member, PlatformInfo};
use penpal_host_api::lti::{self, Quirks};
use penpal_host_api::types::PluginError;

/// Canvas sends staff institution roles beside course roles, and its score extension marks a
/// submission as new so SpeedGrader shows it.
const QUIRKS: Quirks = Quirks {
    score_extension: Some(
        r#"{"https://canvas.instructure.com/lti/submission": {"new_submission": true, "submission_type": "basic_lti_launch"}}"#,
    ),
    ..Quirks::STANDARD
};

struct Platform;

impl Lms for Platform {
    fn platform() -> PlatformInfo {
        PlatformInfo {
            id: "canvas".into(),
            name: "Canvas LMS".into(),
        }
    }

    fn read_launch(claims: String) -> Result<Launch, PluginError> {
        lti::read_launch(&claims, &QUIRKS)
    }

    fn deep_link_item(link: AssignmentLink) -> Result<String, PluginError> {
        Ok(lti::deep_link_item(&link, &QUIRKS).to_string())
    }

    fn line_item(link: AssignmentLink) -> Result<String, PluginError> {
        Ok(lti::line_item(&link).to_string())
    }

    fn score(grade: Grade) -> Result<String, PluginError> {
        Ok(lti::score(&grade, &QUIRKS)?.to_string())
    }

    fn read_roster(body: String) -> Result<Vec<Member>, PluginError> {
        lti::read_roster(&body, &QUIRKS)
    }
}

penpal_host_api::export_lms!(Platform);
