//! Blackboard Learn as an LTI 1.3 platform. Blackboard's quirks: the issuer `https://blackboard.com` for every instance, names in `given_name`/`family_name`, legacy `urn:lti:role:` role names, and institution roles that stand for course roles.

use penpal_host_api::lti::Quirks;

/// Blackboard often leaves `name` out (it sends `given_name` and `family_name`), and sends
/// institution roles for staff who have no course role of their own.
const QUIRKS: Quirks = Quirks {
    name_from_parts: true,
    institution_roles_count: true,
    ..Quirks::STANDARD
};

penpal_host_api::export_lti_platform!("blackboard", "Blackboard Learn", QUIRKS);
