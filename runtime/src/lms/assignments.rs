//! Assignments and submissions. An assignment is a conversation task set for a class (a
//! role-play scenario or a topic, a personality, a level, a minimum number of turns, a due
//! date) scored against the [`rubric`](super::rubric). A learner **starts** it — which opens a
//! conversation at the assignment's level, linked to their submission — chats as usual, then
//! **submits**: the submission is stored first (what was submitted, when, whether late), then
//! scored, and the grade stored; a teacher can override any criterion with a comment. A
//! submission left unscored by a crash or a failing model is scored by [`Scorer`].
//!
//! Teachers read a submission's conversation up to what was submitted; nothing else of a
//! learner's conversations reaches them.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::classes::Class;
use super::rubric::{self, Criterion, CriterionScore, Evidence, Grade, RubricRow, ScoreSource};
use crate::http::{ApiError, ApiResult};
use crate::llm::LlmClient;
use crate::llm::usage::{Pricing, UsageRow};
use crate::store::{Db, StoreError, StoreResult, new_id, now_ms};
use crate::tutoring::conversations::{self, ChatMode, Message};
use crate::tutoring::profile::Cefr;

/// An assignment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Assignment {
    /// Its id.
    pub id: String,
    /// Its class.
    pub class: String,
    /// Its title.
    pub title: String,
    /// What the teacher asks, for the learner.
    #[serde(default)]
    pub instructions: Option<String>,
    /// How the conversation runs.
    pub mode: ChatMode,
    /// The tutor personality.
    pub personality: String,
    /// The role-play scenario.
    #[serde(default)]
    pub scenario: Option<String>,
    /// The topic.
    #[serde(default)]
    pub topic: Option<String>,
    /// The level the conversation runs at and is scored against.
    pub level: Cefr,
    /// Turns a learner must take before submitting.
    pub min_turns: u32,
    /// Due (ms); a later submission is marked late.
    #[serde(default)]
    pub due_at: Option<i64>,
    /// Created (ms).
    pub created_at: i64,
    /// The rubric at its level.
    #[serde(default, skip_deserializing)]
    pub rubric: Vec<RubricRow>,
}

/// An assignment's fields, checked by the caller.
pub struct NewAssignment {
    /// Title.
    pub title: String,
    /// Instructions.
    pub instructions: Option<String>,
    /// Mode.
    pub mode: ChatMode,
    /// Personality.
    pub personality: String,
    /// Scenario.
    pub scenario: Option<String>,
    /// Topic.
    pub topic: Option<String>,
    /// Level.
    pub level: Cefr,
    /// Minimum turns.
    pub min_turns: u32,
    /// Due (ms).
    pub due_at: Option<i64>,
}

fn with_rubric(mut a: Assignment) -> Assignment {
    a.rubric = rubric::rubric(a.level);
    a
}

/// Sets `new` for `class`; its id.
pub async fn create(db: &Db, class: &Class, by: &str, new: NewAssignment) -> StoreResult<String> {
    let id = new_id();
    let mut row = json!({"class": class.id, "school": class.school, "title": new.title, "mode": new.mode,
        "personality": new.personality, "level": new.level, "min_turns": new.min_turns,
        "created_at": now_ms(), "created_by": by});
    for (key, value) in [
        ("instructions", &new.instructions),
        ("scenario", &new.scenario),
        ("topic", &new.topic),
    ] {
        if let Some(v) = value {
            row[key] = json!(v);
        }
    }
    if let Some(due) = new.due_at {
        row["due_at"] = json!(due);
    }
    db.exec(
        "CREATE type::record('assignment', $id) CONTENT $row",
        json!({"id": id, "row": row}),
    )
    .await?;
    Ok(id)
}

/// Assignment `id`, if there is one.
pub async fn get(db: &Db, id: &str) -> StoreResult<Option<Assignment>> {
    let a: Option<Assignment> = db
        .one(
            "SELECT *, record::id(id) AS id FROM type::record('assignment', $id)",
            json!({"id": id}),
        )
        .await?;
    Ok(a.map(with_rubric))
}

/// The assignments of `class`, newest first.
pub async fn list(db: &Db, class: &str) -> StoreResult<Vec<Assignment>> {
    let rows: Vec<Assignment> = db
        .rows(
            "SELECT *, record::id(id) AS id FROM assignment WHERE class = $c ORDER BY created_at DESC",
            json!({"c": class}),
        )
        .await?;
    Ok(rows.into_iter().map(with_rubric).collect())
}

/// Changes the title, instructions, due date or minimum turns of assignment `id`.
pub async fn update(
    db: &Db,
    id: &str,
    title: Option<&str>,
    instructions: Option<&str>,
    due_at: Option<Option<i64>>,
    min_turns: Option<u32>,
) -> StoreResult<()> {
    db.exec(
        "UPDATE type::record('assignment', $id) SET title = $title ?? title,
             instructions = $instructions ?? instructions, min_turns = $min_turns ?? min_turns,
             due_at = IF $set_due { $due ?? NONE } ELSE { due_at }",
        json!({"id": id, "title": title, "instructions": instructions, "min_turns": min_turns,
               "set_due": due_at.is_some(), "due": due_at.flatten()}),
    )
    .await
}

/// Where a submission stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubmissionStatus {
    /// The learner is working on it.
    Started,
    /// Handed in, being scored.
    Submitted,
    /// Scored (by penpal, a teacher, or both).
    Graded,
}

/// A learner's work on an assignment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Submission {
    /// Its id.
    pub id: String,
    /// The assignment.
    pub assignment: String,
    /// The class.
    pub class: String,
    /// The learner's account id.
    pub user: String,
    /// The conversation it is done in.
    pub conversation: String,
    /// Where it stands.
    pub status: SubmissionStatus,
    /// Started (ms).
    pub started_at: i64,
    /// Handed in (ms).
    #[serde(default)]
    pub submitted_at: Option<i64>,
    /// The last message handed in: the teacher sees the conversation up to it.
    #[serde(default)]
    pub submitted_seq: Option<i64>,
    /// Turns handed in.
    #[serde(default)]
    pub turns: Option<u32>,
    /// Handed in after the due date.
    pub late: bool,
    /// The grade that counts.
    #[serde(default)]
    pub grade: Option<Grade>,
    /// Penpal's own scoring, kept when a teacher overrides it (teachers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto: Option<Grade>,
    /// The learner's address (in teachers' lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The learner's display name (in teachers' lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Submission {
    /// As the learner sees it: their grade, not penpal's score under a teacher's.
    pub fn for_learner(mut self) -> Submission {
        self.auto = None;
        self
    }
}

const SUBMISSION: &str =
    "SELECT *, record::id(id) AS id, (type::record('user', user)).email AS email,
    (type::record('user', user)).profile.display_name AS name FROM";

/// Submission `id`, if there is one.
pub async fn submission(db: &Db, id: &str) -> StoreResult<Option<Submission>> {
    db.one(
        &format!("{SUBMISSION} type::record('submission', $id)"),
        json!({"id": id}),
    )
    .await
}

/// `user`'s submission for `assignment`, if they started it.
pub async fn submission_of(
    db: &Db,
    assignment: &str,
    user: &str,
) -> StoreResult<Option<Submission>> {
    db.one(
        &format!("{SUBMISSION} submission WHERE assignment = $a AND user = $u"),
        json!({"a": assignment, "u": user}),
    )
    .await
}

/// The submissions for `assignment`, oldest first.
pub async fn submissions(db: &Db, assignment: &str) -> StoreResult<Vec<Submission>> {
    db.rows(
        &format!("{SUBMISSION} submission WHERE assignment = $a ORDER BY started_at"),
        json!({"a": assignment}),
    )
    .await
}

/// The submissions in `class`.
pub async fn class_submissions(db: &Db, class: &str) -> StoreResult<Vec<Submission>> {
    db.rows(
        &format!("{SUBMISSION} submission WHERE class = $c ORDER BY started_at"),
        json!({"c": class}),
    )
    .await
}

/// An assignment with the caller's submission.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Todo {
    /// The assignment.
    pub assignment: Assignment,
    /// The class's name.
    pub class_name: String,
    /// The caller's submission, once started.
    pub submission: Option<Submission>,
}

/// The assignments of every class `user` learns in, with their submissions; due soonest first.
pub async fn for_learner(db: &Db, user: &str) -> StoreResult<Vec<Todo>> {
    #[derive(Deserialize)]
    struct Row {
        #[serde(flatten)]
        assignment: Assignment,
        class_name: String,
    }
    let rows: Vec<Row> = db
        .rows(
            "SELECT *, record::id(id) AS id, (type::record('class', class)).name AS class_name FROM assignment
             WHERE class INSIDE (SELECT VALUE class FROM class_member WHERE user = $u AND role = 'learner')
             ORDER BY due_at, created_at",
            json!({"u": user}),
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let submission = submission_of(db, &r.assignment.id, user)
            .await?
            .map(Submission::for_learner);
        out.push(Todo {
            assignment: with_rubric(r.assignment),
            class_name: r.class_name,
            submission,
        });
    }
    Ok(out)
}

/// Starts `user`'s submission for `a` (of `class`): opens the conversation and links it. A
/// second start answers the first submission.
pub async fn start(db: &Db, a: &Assignment, class: &Class, user: &str) -> ApiResult<Submission> {
    if let Some(s) = submission_of(db, &a.id, user).await? {
        return Ok(s);
    }
    let id = new_id();
    let conversation = new_id();
    // The submission first: its unique index settles two starts at once, and a conversation
    // opened after it is never orphaned.
    let created = db
        .exec(
            "CREATE type::record('submission', $id) CONTENT { assignment: $a, class: $c, school: $s, user: $u,
                 conversation: $conv, status: 'started', started_at: $now, late: false }",
            json!({"id": id, "a": a.id, "c": class.id, "s": class.school, "u": user, "conv": conversation, "now": now_ms()}),
        )
        .await;
    match created {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return submission_of(db, &a.id, user)
                .await?
                .ok_or(ApiError::NotFound("submission"));
        }
        Err(e) => return Err(e.into()),
    }
    let opening = conversations::routes::Opening {
        personality: a.personality.clone(),
        mode: a.mode,
        language: class.language.clone(),
        scenario: a.scenario.clone(),
        topic: a.topic.clone(),
        title: Some(a.title.clone()),
        level: Some(a.level),
    };
    if let Err(e) = conversations::routes::open(db, user, &conversation, opening).await {
        db.exec("DELETE type::record('submission', $id)", json!({"id": id}))
            .await?;
        return Err(e);
    }
    submission(db, &id)
        .await?
        .ok_or(ApiError::NotFound("submission"))
}

/// Deletes submission `id`, so its learner can start the assignment afresh (their
/// conversation is theirs and stays).
pub async fn reset(db: &Db, id: &str) -> StoreResult<()> {
    db.exec("DELETE type::record('submission', $id)", json!({"id": id}))
        .await
}

/// Hands in `s` (the learner's, started) of `a`: stored before it is scored.
pub async fn hand_in(db: &Db, a: &Assignment, s: &Submission) -> ApiResult<()> {
    if s.status != SubmissionStatus::Started {
        return Err(ApiError::Conflict(
            "this assignment was handed in already".into(),
        ));
    }
    let conv = conversations::fetch(db, &s.conversation)
        .await?
        .ok_or_else(|| {
            ApiError::Conflict(
                "the assignment's conversation was deleted: ask your teacher to reset the submission".into(),
            )
        })?;
    let turns = u32::try_from(conv.turns).unwrap_or(0);
    if turns < a.min_turns {
        return Err(ApiError::Conflict(format!(
            "this assignment asks for at least {} turns; you have taken {turns}: {} more to go",
            a.min_turns,
            a.min_turns - turns
        )));
    }
    let now = now_ms();
    let late = a.due_at.is_some_and(|due| now > due);
    let changed: Option<String> = db
        .one(
            "UPDATE type::record('submission', $id) SET status = 'submitted', submitted_at = $now,
                 submitted_seq = $seq, turns = $turns, late = $late
             WHERE status = 'started' RETURN VALUE record::id(id)",
            json!({"id": s.id, "now": now, "seq": conv.last_seq, "turns": turns, "late": late}),
        )
        .await?;
    if changed.is_none() {
        return Err(ApiError::Conflict(
            "this assignment was handed in already".into(),
        ));
    }
    Ok(())
}

/// The handed-in part of submission `s`'s conversation (everything so far while it is
/// being worked on).
pub async fn handed_in(db: &Db, s: &Submission) -> StoreResult<Vec<Message>> {
    let upto = match s.submitted_seq {
        Some(seq) => seq,
        None => conversations::fetch(db, &s.conversation)
            .await?
            .map_or(0, |c| c.last_seq),
    };
    conversations::messages_after(db, &s.conversation, 0, upto).await
}

/// What scoring needs.
#[derive(Clone)]
pub struct Scoring {
    /// The database.
    pub db: Db,
    /// The model.
    pub llm: Arc<LlmClient>,
    /// What its tokens cost.
    pub pricing: Pricing,
    /// The tutors, for a scenario's goal.
    pub tutors: crate::tutoring::tutor::TutorClient,
    /// Wakes the LMS score sender after a grade is queued.
    pub wake: Arc<tokio::sync::Notify>,
}

impl Scoring {
    /// Scores submission `s` (handed in) of `a`, storing the grade unless one was stored
    /// meanwhile; the grade stored.
    pub async fn score(&self, a: &Assignment, s: &Submission) -> StoreResult<Option<Grade>> {
        let messages = handed_in(&self.db, s).await?;
        let evidence = Evidence::of(&messages);
        let language = conversations::fetch(&self.db, &s.conversation)
            .await?
            .map(|c| c.language)
            .unwrap_or_default();
        let goal = match (&a.scenario, &a.topic) {
            (Some(id), _) => self
                .tutors
                .scenarios(&a.personality)
                .await
                .ok()
                .and_then(|all| all.into_iter().find(|sc| &sc.id == id))
                .map(|sc| format!("{} (the learner is {})", sc.goal, sc.learner_role)),
            (None, Some(topic)) => Some(format!("talk about {topic}")),
            (None, None) => None,
        };
        let task = rubric::Task {
            title: &a.title,
            instructions: a.instructions.as_deref(),
            mode: a.mode,
            goal,
            language: &language,
            level: a.level,
            min_turns: a.min_turns,
        };
        let answer = if evidence.turns == 0 {
            None
        } else {
            let request = rubric::request(&task, &evidence, &messages);
            match self.llm.complete(&request).await {
                Ok((text, usage)) => {
                    let model = self.llm.settings().model.clone();
                    UsageRow::new(
                        self.pricing,
                        Some(&s.user),
                        Some(&s.conversation),
                        &model,
                        "assessment",
                        usage,
                    )
                    .record(&self.db)
                    .await;
                    Some(text)
                }
                Err(e) => {
                    // The grade is estimated from the analysis and flagged for the teacher.
                    tracing::warn!(error = %e, submission = %s.id, "the assessment request failed");
                    metrics::counter!("penpal_assessments_failed_total").increment(1);
                    None
                }
            }
        };
        let grade = rubric::grade(answer.as_deref(), &evidence, a.min_turns, now_ms());
        let stored = store_grade(
            &self.db,
            a,
            s,
            &grade,
            "status = 'graded', auto = $g_grade, grade = $g_grade",
            "['submitted']",
        )
        .await?;
        if stored {
            metrics::counter!("penpal_submissions_graded_total", "by" => "penpal").increment(1);
            self.wake.notify_one();
        }
        Ok(stored.then_some(grade))
    }
}

/// Stores `grade` on submission `s` (of `a`) with `set`, if its status is among `from`, and —
/// in the same transaction — queues it for the learner's LMS gradebook when they came from
/// one. Whether it was stored.
async fn store_grade(
    db: &Db,
    a: &Assignment,
    s: &Submission,
    grade: &Grade,
    set: &str,
    from: &str,
) -> StoreResult<bool> {
    let route = super::lti::scores::route(db, &s.class, &s.user).await?;
    let mut batch = crate::store::Batch::default();
    batch.push(
        &format!(
            "LET $g_done = (UPDATE type::record('submission', $g_id) SET {set} WHERE status INSIDE {from} RETURN VALUE record::id(id));
             IF array::len($g_done) = 0 {{ THROW 'not_handed_in' }};"
        ),
        [
            ("g_id".to_string(), json!(s.id)),
            ("g_grade".to_string(), json!(grade)),
        ],
    );
    if let Some(route) = &route {
        super::lti::scores::queue(&mut batch, route, &s.id, &a.id, &a.title, grade);
    }
    match batch.commit(db).await {
        Ok(()) => Ok(true),
        Err(StoreError::Db(e)) if e.contains("not_handed_in") => Ok(false),
        Err(e) => Err(e),
    }
}

/// A teacher's change to a grade: the criteria named get the teacher's score.
pub async fn regrade(
    db: &Db,
    a: &Assignment,
    s: &Submission,
    scores: &[(Criterion, u8)],
    comment: Option<String>,
    by: &str,
) -> ApiResult<Grade> {
    let base: Vec<CriterionScore> = match &s.grade {
        Some(g) => g.criteria.clone(),
        None => Vec::new(),
    };
    let mut criteria = Vec::new();
    for c in Criterion::ALL {
        let teacher = scores.iter().find(|(k, _)| *k == c).map(|(_, v)| *v);
        let current = base.iter().find(|x| x.criterion == c).cloned();
        criteria.push(match (teacher, current) {
            (Some(score), _) => CriterionScore {
                criterion: c,
                score,
                reason: "Set by the teacher.".to_string(),
                source: ScoreSource::Teacher,
            },
            (None, Some(mut kept)) => {
                // Seen and kept by the teacher: no longer an unreviewed estimate.
                if kept.source == ScoreSource::Analysis {
                    kept.source = ScoreSource::Teacher;
                }
                kept
            }
            (None, None) => {
                return Err(ApiError::invalid(
                    "scores",
                    format!(
                        "this submission has no score yet: give all four criteria ({} is missing)",
                        c.as_str()
                    ),
                ));
            }
        });
    }
    let comment = comment.or_else(|| s.grade.as_ref().and_then(|g| g.comment.clone()));
    let grade = Grade::new(criteria, comment, by.to_string(), now_ms());
    let stored = store_grade(
        db,
        a,
        s,
        &grade,
        "status = 'graded', grade = $g_grade",
        "['submitted', 'graded']",
    )
    .await?;
    if !stored {
        return Err(ApiError::Conflict(
            "the learner has not handed this in yet".into(),
        ));
    }
    metrics::counter!("penpal_submissions_graded_total", "by" => "teacher").increment(1);
    Ok(grade)
}

/// Scores submissions handed in but left unscored (a crash between hand-in and grade).
pub struct Scorer {
    /// What scoring uses.
    pub scoring: Scoring,
    /// How often to look.
    pub every: Duration,
}

impl Scorer {
    /// Scores what waits, every `every`, until `shutdown`.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(self.every) => {}
            }
            if let Err(e) = self.pass().await {
                tracing::warn!(error = %e, "could not score waiting submissions");
            }
        }
    }

    /// One pass: submissions handed in over a minute ago and still unscored.
    pub async fn pass(&self) -> StoreResult<usize> {
        let db = &self.scoring.db;
        let waiting: Vec<Submission> = db
            .rows(
                &format!(
                    "{SUBMISSION} submission WHERE status = 'submitted' AND submitted_at < $before LIMIT 20"
                ),
                json!({"before": now_ms() - 60_000}),
            )
            .await?;
        let mut n = 0;
        for s in waiting {
            if let Some(a) = get(db, &s.assignment).await?
                && self.scoring.score(&a, &s).await?.is_some()
            {
                n += 1;
            }
        }
        Ok(n)
    }
}
