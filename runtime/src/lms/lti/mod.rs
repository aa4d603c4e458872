//! LTI 1.3 Advantage, the tool side: the tool's keys ([`keys`]), the platforms schools
//! register by hand ([`platforms`]) or through Dynamic Registration ([`registration`]), the
//! platforms' keys ([`jwks`]), outbound requests to platforms ([`outbound`]), the launch —
//! OIDC login initiation and the id token's checks — and what a verified launch provisions
//! ([`launch`]), deep-linking answers ([`deep_link`]), grades sent to gradebooks through a
//! durable queue ([`scores`]), access tokens and roster sync ([`services`]), and their
//! routes ([`routes`]). What differs by platform is read by the LMS plugin the platform
//! names ([`crate::lms::platform::LmsClient`]); every key and token stays here.

pub mod deep_link;
pub mod jwks;
pub mod keys;
pub mod launch;
pub mod outbound;
pub mod platforms;
pub mod registration;
pub mod routes;
pub mod rsa;
pub mod scores;
pub mod services;

/// The LTI message types penpal answers.
pub const RESOURCE_LINK: &str = "LtiResourceLinkRequest";
/// A teacher picking content for a course.
pub const DEEP_LINKING: &str = "LtiDeepLinkingRequest";
