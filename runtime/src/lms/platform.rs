//! The lms room's client for the `lms` world: a platform's quirks, read and shaped by its
//! plugin while the host keeps every key and token. LMS plugins run from `penpal:plugin@0.2`.

use std::sync::Arc;

use crate::plugins::bindings::v0_2::lms::Lms;
use crate::plugins::{CallError, Kind, OutputSize, PluginHost, lift};

pub use crate::plugins::bindings::v0_2::lms::exports::penpal::plugin::lms_integration::{
    AssignmentLink, CourseRole, Grade, GradeService, GradingProgress, Launch, Member, PlatformInfo,
};

/// Calls LMS plugins.
#[derive(Clone)]
pub struct LmsClient {
    host: Arc<PluginHost>,
}

macro_rules! lms_call {
    ($self:ident, $name:ident, $function:literal, |$p:ident, $store:ident| $call:expr) => {{
        let plugin = $self.host.get_kind($name, Kind::Lms)?;
        $self
            .host
            .call(&plugin, $function, |$p: Lms, mut $store| async move {
                let r = $call.await;
                ($store, lift(r))
            })
            .await
    }};
}

impl LmsClient {
    /// A client over `host`'s installed LMS plugins.
    pub fn new(host: Arc<PluginHost>) -> Self {
        LmsClient { host }
    }

    /// The installed LMS plugins' names.
    pub fn names(&self) -> Vec<String> {
        self.host
            .list()
            .into_iter()
            .filter(|p| p.kind() == Kind::Lms)
            .map(|p| p.name().to_string())
            .collect()
    }

    /// The platform plugin `name` speaks to.
    pub async fn platform(&self, name: &str) -> Result<PlatformInfo, CallError> {
        let plugin = self.host.get_kind(name, Kind::Lms)?;
        self.host
            .call(&plugin, "platform", |p: Lms, mut store| async move {
                let r = p
                    .penpal_plugin_lms_integration()
                    .call_platform(&mut store)
                    .await;
                (store, r.map(Ok))
            })
            .await
    }

    /// Reads a verified launch's claims (the id token's payload as JSON).
    pub async fn read_launch(&self, name: &str, claims: &str) -> Result<Launch, CallError> {
        lms_call!(self, name, "read-launch", |p, store| p
            .penpal_plugin_lms_integration()
            .call_read_launch(&mut store, claims))
    }

    /// The content item placing `link` in a course (JSON).
    pub async fn deep_link_item(
        &self,
        name: &str,
        link: &AssignmentLink,
    ) -> Result<String, CallError> {
        lms_call!(self, name, "deep-link-item", |p, store| p
            .penpal_plugin_lms_integration()
            .call_deep_link_item(&mut store, link))
    }

    /// The line item to create for `link` (JSON).
    pub async fn line_item(&self, name: &str, link: &AssignmentLink) -> Result<String, CallError> {
        lms_call!(self, name, "line-item", |p, store| p
            .penpal_plugin_lms_integration()
            .call_line_item(&mut store, link))
    }

    /// The score to post for `grade` (JSON).
    pub async fn score(&self, name: &str, grade: &Grade) -> Result<String, CallError> {
        lms_call!(self, name, "score", |p, store| p
            .penpal_plugin_lms_integration()
            .call_score(&mut store, grade))
    }

    /// Reads one page of a roster (the NRPS answer's body).
    pub async fn read_roster(&self, name: &str, body: &str) -> Result<Vec<Member>, CallError> {
        lms_call!(self, name, "read-roster", |p, store| p
            .penpal_plugin_lms_integration()
            .call_read_roster(&mut store, body))
    }
}

impl OutputSize for PlatformInfo {
    fn output_size(&self) -> usize {
        self.id.len() + self.name.len()
    }
}

impl OutputSize for Launch {
    fn output_size(&self) -> usize {
        let grades = self.grades.as_ref().map_or(0, |g| {
            g.line_item.output_size() + g.line_items.output_size() + g.scopes.output_size()
        });
        self.user_id.len()
            + self.email.output_size()
            + self.name.output_size()
            + self.context_id.len()
            + self.context_title.output_size()
            + self.resource_link_id.output_size()
            + self.assignment_id.output_size()
            + self.memberships_url.output_size()
            + self.deep_link_return_url.output_size()
            + grades
    }
}

impl OutputSize for Member {
    fn output_size(&self) -> usize {
        self.user_id.len() + self.email.output_size() + self.name.output_size() + 8
    }
}
