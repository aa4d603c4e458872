//! Canvas LMS as an LTI 1.3 platform. Canvas's quirks: one issuer (`https://canvas.instructure.com`) for every instance, deployment ids like `12:8865…`, UUID user ids, and a score extension that makes a grade a new submission in SpeedGrader.

use penpal_host_api::lti::Quirks;

/// Canvas sends staff institution roles beside course roles, and its score extension marks a
/// submission as new so SpeedGrader shows it.
const QUIRKS: Quirks = Quirks {
    score_extension: Some(
        r#"{"https://canvas.instructure.com/lti/submission": {"new_submission": true, "submission_type": "basic_lti_launch"}}"#,
    ),
    ..Quirks::STANDARD
};

penpal_host_api::export_lti_platform!("canvas", "Canvas LMS", QUIRKS);
