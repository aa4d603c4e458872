//! LTI 1.3 Advantage, the tool side: the tool's keys ([`keys`]), the platforms schools
//! register by hand ([`platforms`]) or through Dynamic Registration ([`registration`]), the
//! platforms' keys ([`jwks`]), outbound requests to platforms ([`outbound`]), the launch —
//! OIDC login initiation and the id token's checks — and what a verified launch provisions
//! ([`launch`]), deep-linking answers ([`deep_link`]), grades sent to gradebooks through a
//! durable queue ([`scores`]), access tokens and roster sync ([`services`]), and their
//! routes ([`routes`]). What differs by platform is read by the LMS plugin the platform
//! names ([`crate::lms::platform::LmsClient`]); every key and token stays here.

pub mod deep_link;
pub mod id_token;
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

/// Removes what has expired: login states (LTI's and schools' sign-ins), registration links,
/// teachers' picks and answers on their way back, and tool keys retired past their overlap. A login flood or abandoned
/// picks leave nothing behind.
pub async fn sweep(db: &crate::store::Db) -> crate::store::StoreResult<()> {
    db.exec(
        "DELETE lti_state WHERE expires_at <= $now;
         DELETE lti_registration WHERE expires_at <= $now;
         DELETE lti_deep_link WHERE expires_at <= $now;
         DELETE lti_return WHERE expires_at <= $now;
         DELETE sso_state WHERE expires_at <= $now;",
        serde_json::json!({"now": crate::store::now_ms()}),
    )
    .await?;
    keys::prune(db).await
}

/// Runs [`sweep`] (and the hand-off codes' own) every `every` until `shutdown`.
pub async fn sweep_every(
    db: crate::store::Db,
    every: std::time::Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        if let Err(e) = sweep(&db).await {
            tracing::warn!(error = %e, "could not sweep expired LTI rows");
        }
        if let Err(e) = crate::auth::handoff::sweep(&db).await {
            tracing::warn!(error = %e, "could not sweep expired hand-off codes");
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// The LTI message types penpal answers.
pub const RESOURCE_LINK: &str = "LtiResourceLinkRequest";
/// A teacher picking content for a course.
pub const DEEP_LINKING: &str = "LtiDeepLinkingRequest";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Db, now_ms};
    use serde_json::json;

    #[tokio::test]
    async fn sweeps_remove_what_expired_and_keep_what_lives() {
        let db = Db::connect("mem://", None).await.unwrap();
        let now = now_ms();
        db.exec(
            "CREATE lti_state:old CONTENT { platform: 'p', nonce: 'n', target: 't', expires_at: $past };
             CREATE lti_state:live CONTENT { platform: 'p', nonce: 'n', target: 't', expires_at: $future };
             CREATE lti_registration:old CONTENT { school: 's', created_by: 'u', created_at: 0, expires_at: $past };
             CREATE lti_deep_link:old CONTENT { platform: 'p', user: 'u', class: 'c', return_url: 'r',
                 accept_multiple: true, deployment_id: 'd', expires_at: $past };
             CREATE lti_return:old CONTENT { return_url: 'r', jwt: 'j', expires_at: $past };
             CREATE lti_return:live CONTENT { return_url: 'r', jwt: 'j', expires_at: $future };",
            json!({"past": now - 1, "future": now + 60_000}),
        )
        .await
        .unwrap();
        sweep(&db).await.unwrap();
        let left: Vec<String> = db
            .rows(
                "SELECT VALUE record::tb(id) + ':' + <string> record::id(id) FROM lti_state, lti_registration, lti_deep_link, lti_return",
                json!({}),
            )
            .await
            .unwrap();
        assert_eq!(left, ["lti_state:live", "lti_return:live"]);

        db.exec(
            "CREATE handoff_code:old CONTENT { user: 'u', expires_at: $past };
             CREATE handoff_code:live CONTENT { user: 'u', expires_at: $future };",
            json!({"past": now - 1, "future": now + 60_000}),
        )
        .await
        .unwrap();
        crate::auth::handoff::sweep(&db).await.unwrap();
        let codes: Vec<String> = db
            .rows("SELECT VALUE record::id(id) FROM handoff_code", json!({}))
            .await
            .unwrap();
        assert_eq!(codes, ["live"]);
    }
}
