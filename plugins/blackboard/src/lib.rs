//! Blackboard Learn as an LTI 1.3 platform. Blackboard's quirks: the issuer `https://blackboard.com` for every instance, names in `given_name`/`family_name`, legacy `urn:lti:role:` role names, and institution roles that stand for course roles.

use penpal_host_api::lms::{AssignmentLink, Grade, Launch, Lms, Member, PlatformInfo};
use penpal_host_api::lti::{self, Quirks};
use penpal_host_api::types::PluginError;

/// Blackboard often leaves `name` out (it sends `given_name` and `family_name`), and sends
/// institution roles for staff who have no course role of their own.
const QUIRKS: Quirks = Quirks {
    name_from_parts: true,
    institution_roles_count: true,
    ..Quirks::STANDARD
};

struct Platform;

impl Lms for Platform {
    fn platform() -> PlatformInfo {
        PlatformInfo {
            id: "blackboard".into(),
            name: "Blackboard Learn".into(),
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
