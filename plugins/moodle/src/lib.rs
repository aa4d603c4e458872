//! Moodle as an LTI 1.3 platform. Moodle sends the specification's claims as written (its site URL is the issuer, numeric user ids, course roles under `membership#`), so this plugin is the standard reading.

use penpal_host_api::lti::Quirks;

/// Moodle follows the specification closely: context roles name course teachers and learners.
const QUIRKS: Quirks = Quirks::STANDARD;

penpal_host_api::export_lti_platform!("moodle", "Moodle 4.x", QUIRKS);
