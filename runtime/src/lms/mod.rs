//! Schools and LMS integrations: tenants, classes, LTI 1.3. So far the room holds its client
//! for the `lms` world ([`platform::LmsClient`]); schools and LTI flows build on it.

pub mod platform;
