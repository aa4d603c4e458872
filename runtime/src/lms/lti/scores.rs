//! Grades to LMS gradebooks (Assignment and Grade Services), through a durable queue: a grade
//! for a learner who came from a platform is queued **in the same transaction** that stores
//! it, and [`ScoreSender`] delivers it — an access token by OAuth 2 client credentials with a
//! client assertion the host signs (cached until it expires), the assignment's line item found
//! or created, the score posted — retrying with backoff while the LMS is down, so a grade is
//! never lost. A newer grade replaces one still waiting; the platform keeps the latest score
//! by its timestamp, so a retry is harmless.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::outbound::{Outbound, body};
use super::platforms::{self, Platform};
use super::services::Tokens;
use crate::lms::platform::{AssignmentLink, Grade as LmsGrade, GradingProgress, LmsClient};
use crate::lms::rubric::Grade;
use crate::store::{Batch, Db, StoreResult, now_ms};

/// Attempts before a score is recorded as failed.
pub const MAX_ATTEMPTS: i64 = 12;
/// The scopes penpal asks for.
const SCOPES: &str = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem https://purl.imsglobal.org/spec/lti-ags/scope/score";

/// Where a learner's grades go, when their class came from a platform and they launched.
#[derive(Debug, Clone, Deserialize)]
pub struct Route {
    /// The platform.
    pub platform: String,
    /// The course's line-items container.
    pub line_items_url: String,
    /// The learner's id there.
    pub sub: String,
}

/// Where `user`'s grades in `class` go, if anywhere.
pub async fn route(db: &Db, class: &str, user: &str) -> StoreResult<Option<Route>> {
    db.one(
        "LET $ctx = (SELECT platform, line_items_url FROM lti_context WHERE class = $c AND line_items_url != NONE LIMIT 1)[0];
         LET $p = (SELECT school, issuer FROM type::record('lti_platform', $ctx.platform))[0];
         LET $sub = (SELECT VALUE sub FROM lti_user WHERE user = $u AND school = $p.school AND issuer = $p.issuer LIMIT 1)[0];
         RETURN IF $ctx AND $sub { { platform: $ctx.platform, line_items_url: $ctx.line_items_url, sub: $sub } } ELSE { NONE };",
        json!({"c": class, "u": user}),
    )
    .await
}

/// Adds to `batch` the queueing of `grade` for submission `submission` (of `assignment`,
/// titled `title`) along `route`, replacing one still waiting.
pub fn queue(
    batch: &mut Batch,
    route: &Route,
    submission: &str,
    assignment: &str,
    title: &str,
    grade: &Grade,
) {
    let grading = if grade.needs_review {
        "pending-manual"
    } else {
        "fully-graded"
    };
    batch.push(
        "UPSERT type::record('lti_score', $q_sub) CONTENT { platform: $q_platform, line_items_url: $q_items,
             user_sub: $q_user, assignment: $q_assignment, title: $q_title, score: $q_score, max: $q_max,
             comment: $q_comment ?? NONE, grading: $q_grading, at: $q_at, status: 'pending', attempts: 0, next_at: $q_at };",
        [
            ("q_sub".to_string(), json!(submission)),
            ("q_platform".to_string(), json!(route.platform)),
            ("q_items".to_string(), json!(route.line_items_url)),
            ("q_user".to_string(), json!(route.sub)),
            ("q_assignment".to_string(), json!(assignment)),
            ("q_title".to_string(), json!(title)),
            ("q_score".to_string(), json!(grade.total)),
            ("q_max".to_string(), json!(grade.max)),
            ("q_comment".to_string(), json!(grade.comment)),
            ("q_grading".to_string(), json!(grading)),
            ("q_at".to_string(), json!(grade.graded_at)),
        ],
    );
}

#[derive(Debug, Clone, Deserialize)]
struct Queued {
    /// Set from the claim (the row's own id is a record).
    #[serde(skip)]
    id: String,
    platform: String,
    line_items_url: String,
    user_sub: String,
    assignment: String,
    title: String,
    score: f64,
    max: f64,
    #[serde(default)]
    comment: Option<String>,
    grading: String,
    at: i64,
    attempts: i64,
}

/// Delivers queued scores.
pub struct ScoreSender {
    /// The database.
    pub db: Db,
    /// The LMS plugins (line item and score bodies).
    pub lms: LmsClient,
    /// Requests to platforms.
    pub outbound: Outbound,
    /// Where learners reach penpal (assignment URLs in line items).
    pub public_url: String,
    /// How often to look when not woken.
    pub every: Duration,
    /// Access tokens.
    pub tokens: Arc<Tokens>,
    /// Wakes it when a grade is queued.
    pub wake: Arc<tokio::sync::Notify>,
}

impl ScoreSender {
    /// Delivers what is due, every `every`, until `shutdown`.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.pass().await {
                tracing::warn!(error = %e, "could not deliver queued scores");
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.every) => {}
            }
        }
    }

    /// One pass over the due scores (claimed with a lease, so nodes share the queue); how many
    /// were delivered.
    pub async fn pass(&self) -> anyhow::Result<usize> {
        let now = now_ms();
        let ids: Vec<String> = self
            .db
            .rows(
                "SELECT VALUE record::id(id) FROM lti_score WHERE status = 'pending' AND next_at <= $now
                     AND (lease_until = NONE OR lease_until < $now) LIMIT 20",
                json!({"now": now}),
            )
            .await?;
        let mut due = Vec::new();
        for id in ids {
            // Claimed with a lease: another node passing at once skips it.
            let claimed: Option<Queued> = self
                .db
                .one(
                    "UPDATE type::record('lti_score', $id) SET lease_until = $lease
                     WHERE status = 'pending' AND (lease_until = NONE OR lease_until < $now)
                     RETURN AFTER",
                    json!({"id": id, "now": now, "lease": now + 60_000}),
                )
                .await?;
            due.extend(claimed.map(|q| Queued {
                id: id.clone(),
                ..q
            }));
        }
        let mut sent = 0;
        for q in due {
            match self.deliver(&q).await {
                Ok(()) => {
                    // Only if no newer grade replaced it meanwhile.
                    self.db
                        .exec(
                            "UPDATE type::record('lti_score', $id) SET status = 'sent', sent_at = $now, lease_until = NONE
                             WHERE at = $at",
                            json!({"id": q.id, "now": now_ms(), "at": q.at}),
                        )
                        .await?;
                    metrics::counter!("penpal_lti_scores_sent_total").increment(1);
                    sent += 1;
                }
                Err(e) => {
                    let attempts = q.attempts + 1;
                    let wait = 1000 * 2i64.pow(attempts.min(12) as u32).min(3600);
                    let failed = attempts >= MAX_ATTEMPTS;
                    tracing::warn!(score = %q.id, attempts, error = %e, "a score could not be sent to the LMS");
                    metrics::counter!("penpal_lti_score_failures_total").increment(1);
                    self.db
                        .exec(
                            "UPDATE type::record('lti_score', $id) SET attempts = $n, next_at = $next, lease_until = NONE,
                                 last_error = $why, status = IF $failed { 'failed' } ELSE { status } WHERE at = $at",
                            json!({"id": q.id, "n": attempts, "next": now_ms() + wait, "why": e.to_string().chars().take(300).collect::<String>(),
                                   "failed": failed, "at": q.at}),
                        )
                        .await?;
                }
            }
        }
        Ok(sent)
    }

    async fn line_item(&self, p: &Platform, q: &Queued, token: &str) -> anyhow::Result<String> {
        let known: Option<String> = self
            .db
            .one(
                "SELECT VALUE url FROM type::record('lti_line_item', [$p, $items, $a])",
                json!({"p": p.id, "items": q.line_items_url, "a": q.assignment}),
            )
            .await?;
        if let Some(url) = known {
            return Ok(url);
        }
        let client = self.outbound.client();
        let mut find = reqwest::Url::parse(&q.line_items_url)?;
        find.query_pairs_mut()
            .append_pair("resource_id", &q.assignment);
        let resp = client
            .get(find)
            .bearer_auth(token)
            .header(
                "accept",
                "application/vnd.ims.lis.v2.lineitemcontainer+json",
            )
            .send()
            .await?;
        let status = resp.status();
        let raw = body(resp).await?;
        if !status.is_success() {
            anyhow::bail!("listing line items answered {status}");
        }
        let found: Vec<Value> = serde_json::from_slice(&raw).unwrap_or_default();
        let url = match found
            .iter()
            .find(|li| li["resourceId"] == q.assignment.as_str())
            .and_then(|li| li["id"].as_str())
        {
            Some(u) => u.to_string(),
            None => {
                let link = AssignmentLink {
                    assignment_id: q.assignment.clone(),
                    title: q.title.clone(),
                    url: format!("{}/lti/launch", self.public_url),
                    score_maximum: q.max,
                };
                let item = self.lms.line_item(&p.plugin, &link).await?;
                let resp = client
                    .post(&q.line_items_url)
                    .bearer_auth(token)
                    .header("content-type", "application/vnd.ims.lis.v2.lineitem+json")
                    .body(item)
                    .send()
                    .await?;
                let status = resp.status();
                let raw = body(resp).await?;
                if !status.is_success() {
                    anyhow::bail!("creating the line item answered {status}");
                }
                let made: Value = serde_json::from_slice(&raw)?;
                made["id"]
                    .as_str()
                    .ok_or_else(|| anyhow::anyhow!("the new line item has no id"))?
                    .to_string()
            }
        };
        if let Some(why) = self.outbound.refuses(&url) {
            anyhow::bail!("the line item's URL: {why}");
        }
        self.db
            .exec(
                "UPSERT type::record('lti_line_item', [$p, $items, $a]) CONTENT { url: $url }",
                json!({"p": p.id, "items": q.line_items_url, "a": q.assignment, "url": url}),
            )
            .await?;
        Ok(url)
    }

    async fn deliver(&self, q: &Queued) -> anyhow::Result<()> {
        let p = platforms::get(&self.db, &q.platform)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the platform was removed"))?;
        if let Some(why) = self.outbound.refuses(&q.line_items_url) {
            anyhow::bail!("the line items URL: {why}");
        }
        let token = self.tokens.get(&p, SCOPES).await?;
        let line_item = self.line_item(&p, q, &token).await?;
        let grade = LmsGrade {
            user_id: q.user_sub.clone(),
            score_given: q.score,
            score_maximum: q.max,
            comment: q.comment.clone(),
            timestamp: (q.at / 1000).max(0) as u64,
            grading: match q.grading.as_str() {
                "pending-manual" => GradingProgress::PendingManual,
                _ => GradingProgress::FullyGraded,
            },
            completed: true,
        };
        let score = self.lms.score(&p.plugin, &grade).await?;
        let (base, query) = match line_item.split_once('?') {
            Some((b, q)) => (b.to_string(), Some(q.to_string())),
            None => (line_item.clone(), None),
        };
        let url = match query {
            Some(q) => format!("{base}/scores?{q}"),
            None => format!("{base}/scores"),
        };
        let resp = self
            .outbound
            .client()
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/vnd.ims.lis.v1.score+json")
            .body(score)
            .send()
            .await?;
        let status = resp.status();
        if status.as_u16() == 401 {
            // A token the platform no longer takes: the next attempt gets a fresh one.
            self.tokens.forget(&p, SCOPES).await;
        }
        if !status.is_success() {
            anyhow::bail!("posting the score answered {status}");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_queued_score_is_claimed_once() {
        let db = Db::connect("mem://", None).await.unwrap();
        let mut batch = Batch::default();
        let grade = Grade::new(Vec::new(), Some("ok".into()), "penpal".into(), 1000);
        let route = Route {
            platform: "p".into(),
            line_items_url: "https://lms.example/items".into(),
            sub: "42".into(),
        };
        queue(&mut batch, &route, "sub1", "a1", "Task", &grade);
        batch.commit(&db).await.unwrap();
        let outbound = Outbound::new(Vec::new()).unwrap();
        let sender = ScoreSender {
            db: db.clone(),
            lms: LmsClient::new(std::sync::Arc::new(
                crate::plugins::PluginHost::new(
                    crate::plugins::Limits::default(),
                    crate::plugins::CompileCache::disabled(),
                    crate::plugins::Services::default(),
                )
                .unwrap(),
            )),
            tokens: Arc::new(Tokens::new(
                crate::lms::lti::keys::ToolKeys::new(db.clone(), &[1; 32]).unwrap(),
                outbound.clone(),
            )),
            outbound,
            public_url: "https://penpal.test".into(),
            every: Duration::from_secs(1),
            wake: Arc::default(),
        };
        // The platform is gone, so delivery fails: the attempt is counted, the lease released.
        assert_eq!(sender.pass().await.unwrap(), 0);
        let row: Value = db
            .one("SELECT * FROM type::record('lti_score', 'sub1')", json!({}))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row["attempts"], 1, "{row}");
        assert_eq!(row["status"], "pending");
        assert!(row["next_at"].as_i64().unwrap() > now_ms());
    }
}
