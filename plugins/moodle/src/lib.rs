//! Moodle as an LTI 1.3 platform. Moodle sends the specification's claims as written (its site URL is the issuer, numeric user ids, course roles under `membership#`), so this plugin is the standard reading.

use penpal_host_api::lms::{AssignmentLink, Grade, Launch, Lms, Member, PlatformInfo};
use penpal_host_api::lti::{self, Quirks};
use penpal_host_api::types::PluginError;

/// Moodle follows the specification closely: context roles name course teachers and learners.
const QUIRKS: Quirks = Quirks::STANDARD;

struct Platform;

impl Lms for Platform {
    fn platform() -> PlatformInfo {
        PlatformInfo {
            id: "moodle".into(),
            name: "Moodle 4.x".into(),
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
