//! The assignment rubric and how a submission is scored against it.
//!
//! Four criteria — task completion, accuracy, range, fluency — each scored 0–4. The bands are
//! aligned to the CEFR: for an assignment at level L, band 3 describes L, band 4 the level
//! above, band 2 the level below, band 1 two below, band 0 no ratable evidence. The
//! descriptors paraphrase the CEFR's qualitative aspects of spoken interaction.
//!
//! Scoring reads two things: the **tutor's analysis** of each turn (corrections, words, the
//! role-play debrief — [`Evidence`]) and one **assessment request** to the model, which sees
//! the rubric, the evidence and the transcript and answers JSON. A criterion the model does
//! not answer usably is estimated from the evidence alone, and the grade is flagged for the
//! teacher's review.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::plugins::types::{ChatMessage, CompletionRequest, Role};
use crate::tutoring::conversations::{ChatMode, Message, Speaker};
use crate::tutoring::profile::Cefr;

/// A rubric criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Criterion {
    /// Did the learner do what the task asked (reach the scenario's goal, cover the topic)?
    TaskCompletion,
    /// Grammatical control.
    Accuracy,
    /// Breadth of vocabulary and structures.
    Range,
    /// Ease and length of what the learner produced.
    Fluency,
}

impl Criterion {
    /// Every criterion, in the rubric's order.
    pub const ALL: [Criterion; 4] = [
        Criterion::TaskCompletion,
        Criterion::Accuracy,
        Criterion::Range,
        Criterion::Fluency,
    ];

    /// Its name, as stored and in the model's answer.
    pub fn as_str(self) -> &'static str {
        match self {
            Criterion::TaskCompletion => "task_completion",
            Criterion::Accuracy => "accuracy",
            Criterion::Range => "range",
            Criterion::Fluency => "fluency",
        }
    }

    /// Its name for people.
    pub fn title(self) -> &'static str {
        match self {
            Criterion::TaskCompletion => "Task completion",
            Criterion::Accuracy => "Accuracy",
            Criterion::Range => "Range",
            Criterion::Fluency => "Fluency",
        }
    }

    /// What a learner at each level (A1 … C2) shows on this criterion.
    fn levels(self) -> [&'static str; 6] {
        match self {
            Criterion::TaskCompletion => [
                "completes the simplest part of the task with help, answering direct questions with words or set phrases",
                "completes a routine, simple exchange, though the partner has to help it along",
                "carries out the task in a familiar situation, keeping the exchange going and reaching its goal with some hesitation",
                "reaches the task's goal with ease, taking the initiative, explaining and answering the partner's moves",
                "handles the task fluently and strategically, unexpected turns included, and reaches the goal convincingly",
                "handles the task with full command, adapting to the partner and situation as a skilled speaker would",
            ],
            Criterion::Accuracy => [
                "shows limited control of a few memorised patterns",
                "uses some simple structures correctly but still makes basic mistakes systematically",
                "uses frequent routines and patterns reasonably accurately; errors occur but the meaning stays clear",
                "shows good grammatical control; errors rarely cause misunderstanding and are often self-corrected",
                "keeps a high degree of accuracy throughout; errors are rare and hard to spot",
                "keeps consistent control of complex language, even while attending to other things",
            ],
            Criterion::Range => [
                "uses a very basic repertoire of words and phrases about personal details and concrete situations",
                "uses basic sentence patterns and memorised phrases to exchange limited information in everyday situations",
                "has enough language to get by on familiar topics, with some hesitation and circumlocution",
                "describes clearly and gives viewpoints on most general topics, using some complex sentences",
                "has a broad range that lets them say what they want without restricting it",
                "reformulates ideas flexibly to convey finer shades of meaning precisely",
            ],
            Criterion::Fluency => [
                "manages very short, isolated, mainly pre-packaged messages",
                "makes themselves understood in very short messages, though pauses and false starts are evident",
                "keeps going comprehensibly, though pausing to plan grammar and vocabulary is evident in longer stretches",
                "produces stretches of language at a fairly even tempo, with few noticeably long pauses",
                "expresses themselves fluently and spontaneously, almost effortlessly",
                "expresses themselves at length with a natural, effortless flow",
            ],
        }
    }

    /// The five band descriptors (0 … 4) of this criterion for an assignment at `level`.
    pub fn bands(self, level: Cefr) -> [String; 5] {
        let at = level.rank();
        let levels = self.levels();
        let name = |rank: usize| Cefr::ALL[rank].as_str();
        let above = if at + 1 < 6 {
            format!(
                "Above {}: {} ({}).",
                level.as_str(),
                levels[at + 1],
                name(at + 1)
            )
        } else {
            format!("Beyond the task: {}, with ease throughout.", levels[5])
        };
        let below = |steps: usize| match at.checked_sub(steps) {
            Some(rank) => format!(
                "{} {}: {} ({}).",
                if steps == 1 {
                    "Approaching"
                } else {
                    "Well below"
                },
                level.as_str(),
                levels[rank],
                name(rank)
            ),
            None => format!(
                "Below A1: isolated words, mostly with help{}.",
                if steps == 1 {
                    ", yet some of the task is done"
                } else {
                    " or in another language"
                }
            ),
        };
        [
            "No ratable evidence: the learner did not attempt this.".to_string(),
            below(2),
            below(1),
            format!("At {}: {}.", level.as_str(), levels[at]),
            above,
        ]
    }
}

/// A criterion's descriptors, as a rubric shows them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RubricRow {
    /// The criterion.
    pub criterion: Criterion,
    /// Its name for people.
    pub title: &'static str,
    /// What each band, 0 to 4, means at the assignment's level.
    pub bands: Vec<String>,
}

/// The rubric of an assignment at `level`.
pub fn rubric(level: Cefr) -> Vec<RubricRow> {
    Criterion::ALL
        .iter()
        .map(|c| RubricRow {
            criterion: *c,
            title: c.title(),
            bands: c.bands(level).to_vec(),
        })
        .collect()
}

/// The best total a submission can get.
pub const MAX_SCORE: u32 = 4 * Criterion::ALL.len() as u32;

/// Where a criterion's score came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScoreSource {
    /// The model's assessment against the rubric.
    Model,
    /// Estimated from the tutor's turn-by-turn analysis (the model gave nothing usable).
    Analysis,
    /// Set by a teacher.
    Teacher,
}

/// One criterion's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CriterionScore {
    /// The criterion.
    pub criterion: Criterion,
    /// 0 to 4.
    #[schema(minimum = 0, maximum = 4)]
    pub score: u8,
    /// Why, briefly.
    pub reason: String,
    /// Who scored it.
    pub source: ScoreSource,
}

/// A submission's grade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Grade {
    /// One score per criterion, in the rubric's order.
    pub criteria: Vec<CriterionScore>,
    /// The sum of the criteria.
    pub total: u32,
    /// The best possible total (16).
    pub max: u32,
    /// A teacher's comment, or the model's summary.
    #[serde(default)]
    pub comment: Option<String>,
    /// `penpal`, or the id of the teacher who set it.
    pub graded_by: String,
    /// When (ms).
    pub graded_at: i64,
    /// Whether a teacher should look at it: a criterion had to be estimated.
    pub needs_review: bool,
}

impl Grade {
    /// A grade from `criteria`.
    pub fn new(
        criteria: Vec<CriterionScore>,
        comment: Option<String>,
        graded_by: String,
        graded_at: i64,
    ) -> Grade {
        let needs_review = criteria.iter().any(|c| c.source == ScoreSource::Analysis);
        Grade {
            total: criteria.iter().map(|c| u32::from(c.score)).sum(),
            max: MAX_SCORE,
            criteria,
            comment,
            graded_by,
            graded_at,
            needs_review,
        }
    }
}

/// What the tutor's analysis saw over a submission's turns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Evidence {
    /// Learner messages that were answered.
    pub turns: u32,
    /// Words the learner wrote.
    pub words: u32,
    /// Different words the learner used.
    pub distinct_words: u32,
    /// Errors the tutor corrected.
    pub errors: u32,
    /// Errors by category (grammar, vocabulary, spelling…).
    pub categories: BTreeMap<String, u32>,
    /// The role-play's closing debrief, when the scene ended.
    #[serde(default)]
    pub debrief: Option<String>,
}

impl Evidence {
    /// The evidence in `messages` (a conversation's, oldest first).
    pub fn of(messages: &[Message]) -> Evidence {
        let mut e = Evidence::default();
        let mut seen = std::collections::BTreeSet::new();
        for m in messages {
            if m.debrief.is_some() {
                e.debrief = m.debrief.clone();
            }
            if m.role != Speaker::Learner || !m.status.settled() {
                continue;
            }
            e.turns += 1;
            for w in m.text.split(|c: char| !c.is_alphabetic() && c != '\'') {
                if w.is_empty() {
                    continue;
                }
                e.words += 1;
                seen.insert(w.to_lowercase());
            }
            e.errors += m.corrections.len() as u32;
            for c in &m.corrections {
                *e.categories.entry(c.category.clone()).or_default() += 1;
            }
        }
        e.distinct_words = seen.len() as u32;
        e
    }

    /// Errors per hundred words.
    pub fn error_rate(&self) -> f64 {
        if self.words == 0 {
            0.0
        } else {
            f64::from(self.errors) * 100.0 / f64::from(self.words)
        }
    }

    /// A criterion's score estimated from this evidence alone, for a task of `min_turns`.
    /// Estimates stay at 3 or below, except accuracy with no error at all: telling "above the
    /// level" apart takes the model or a teacher.
    pub fn estimate(&self, criterion: Criterion, min_turns: u32) -> CriterionScore {
        let (score, reason) = if self.turns == 0 {
            (0, "no answered turn".to_string())
        } else {
            match criterion {
                Criterion::TaskCompletion => {
                    let s = (3 * self.turns / min_turns.max(1)).min(3);
                    (
                        s,
                        format!("{} of the {} turns asked for", self.turns, min_turns),
                    )
                }
                Criterion::Accuracy => {
                    let rate = self.error_rate();
                    let s = match rate {
                        0.0 => 4,
                        r if r < 3.0 => 3,
                        r if r < 8.0 => 2,
                        r if r < 15.0 => 1,
                        _ => 0,
                    };
                    (
                        s,
                        format!(
                            "{} errors in {} words ({rate:.1} per 100)",
                            self.errors, self.words
                        ),
                    )
                }
                Criterion::Range => {
                    let s = match self.distinct_words {
                        n if n >= 60 => 3,
                        n if n >= 25 => 2,
                        n if n >= 8 => 1,
                        _ => 0,
                    };
                    (s, format!("{} different words", self.distinct_words))
                }
                Criterion::Fluency => {
                    let per_turn = self.words / self.turns;
                    let s = match per_turn {
                        n if n >= 9 => 3,
                        n if n >= 5 => 2,
                        n if n >= 2 => 1,
                        _ => 0,
                    };
                    (s, format!("{per_turn} words per message"))
                }
            }
        };
        CriterionScore {
            criterion,
            score: score as u8,
            reason: format!("Estimated from the tutor's analysis: {reason}."),
            source: ScoreSource::Analysis,
        }
    }
}

/// What an assessment is about.
pub struct Task<'a> {
    /// The assignment's title.
    pub title: &'a str,
    /// What the teacher asked.
    pub instructions: Option<&'a str>,
    /// How the conversation ran.
    pub mode: ChatMode,
    /// The scenario's goal or the topic, if any.
    pub goal: Option<String>,
    /// The target language.
    pub language: &'a str,
    /// The assignment's level.
    pub level: Cefr,
    /// Turns asked for.
    pub min_turns: u32,
}

/// The request asking the model to score `messages` against the rubric.
pub fn request(task: &Task<'_>, evidence: &Evidence, messages: &[Message]) -> CompletionRequest {
    let mut rubric_text = String::new();
    for row in rubric(task.level) {
        rubric_text.push_str(&format!("\n{} ({}):\n", row.title, row.criterion.as_str()));
        for (band, text) in row.bands.iter().enumerate() {
            rubric_text.push_str(&format!("  {band}: {text}\n"));
        }
    }
    let categories = evidence
        .categories
        .iter()
        .map(|(c, n)| format!("{c} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let system = format!(
        "You assess a language learner's written conversation against a rubric. The learner \
         practises `{language}` at CEFR level {level}. Score what the learner wrote, not the \
         tutor's messages, and judge each criterion by its band descriptors.\n\n\
         The task: {title} ({mode}). {instructions}{goal}It asked for at least {min_turns} turns.\n\
         Rubric:{rubric_text}\n\
         The tutor's analysis of the turns: {turns} turns, {words} words, {distinct} different \
         words, {errors} corrected errors{categories}.{debrief}\n\n\
         Answer with one JSON object and nothing else: {{\"task_completion\": {{\"score\": 0-4, \
         \"reason\": \"one sentence\"}}, \"accuracy\": {{…}}, \"range\": {{…}}, \"fluency\": {{…}}, \
         \"summary\": \"two sentences of feedback for the learner\"}}.",
        language = task.language,
        level = task.level.as_str(),
        title = task.title,
        mode = match task.mode {
            ChatMode::Tutor => "a lesson",
            ChatMode::Conversation => "a conversation",
            ChatMode::RolePlay => "a role-play",
        },
        instructions = task
            .instructions
            .map(|i| format!("The teacher's instructions: {i} "))
            .unwrap_or_default(),
        goal = task
            .goal
            .as_ref()
            .map(|g| format!("Its goal: {g}. "))
            .unwrap_or_default(),
        min_turns = task.min_turns,
        turns = evidence.turns,
        words = evidence.words,
        distinct = evidence.distinct_words,
        errors = evidence.errors,
        categories = if categories.is_empty() {
            String::new()
        } else {
            format!(" ({categories})")
        },
        debrief = evidence
            .debrief
            .as_ref()
            .map(|d| format!(" The role-play's debrief: {d}"))
            .unwrap_or_default(),
    );
    let transcript = messages
        .iter()
        .filter(|m| m.status.settled())
        .map(|m| {
            format!(
                "{}: {}",
                match m.role {
                    Speaker::Learner => "Learner",
                    Speaker::Tutor => "Tutor",
                },
                m.text.replace('\n', " ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    CompletionRequest {
        messages: vec![
            ChatMessage {
                role: Role::System,
                content: system,
            },
            ChatMessage {
                role: Role::User,
                content: transcript,
            },
        ],
        model: None,
        temperature: Some(0.0),
        max_tokens: Some(600),
        json: true,
    }
}

/// The model's answer read against the rubric: a score per criterion it answered usably
/// (0–4, with a reason), and its summary. Anything else in the answer is ignored.
pub fn read_answer(answer: &str) -> (BTreeMap<Criterion, CriterionScore>, Option<String>) {
    let mut out = BTreeMap::new();
    // Models wrap JSON in prose or fences now and then: read from the first brace.
    let body = answer
        .find('{')
        .and_then(|start| answer.rfind('}').map(|end| &answer[start..=end]));
    let Some(Ok(Value::Object(map))) = body.map(serde_json::from_str::<Value>) else {
        return (out, None);
    };
    for c in Criterion::ALL {
        let Some(entry) = map.get(c.as_str()) else {
            continue;
        };
        let score = entry.get("score").and_then(Value::as_f64);
        let Some(score) = score.filter(|s| (0.0..=4.0).contains(s) && s.fract() == 0.0) else {
            continue;
        };
        let reason = entry
            .get("reason")
            .and_then(Value::as_str)
            .map(|r| r.chars().take(500).collect::<String>())
            .filter(|r| !r.trim().is_empty())
            .unwrap_or_else(|| "(no reason given)".to_string());
        out.insert(
            c,
            CriterionScore {
                criterion: c,
                score: score as u8,
                reason,
                source: ScoreSource::Model,
            },
        );
    }
    let summary = map
        .get("summary")
        .and_then(Value::as_str)
        .map(|s| s.chars().take(1000).collect::<String>())
        .filter(|s| !s.trim().is_empty());
    (out, summary)
}

/// The grade from the model's `answer` (none when the request failed), every criterion it did
/// not answer usably estimated from `evidence`.
pub fn grade(answer: Option<&str>, evidence: &Evidence, min_turns: u32, at: i64) -> Grade {
    let (mut scored, summary) = answer.map(read_answer).unwrap_or_default();
    let criteria = Criterion::ALL
        .iter()
        .map(|c| {
            scored
                .remove(c)
                .unwrap_or_else(|| evidence.estimate(*c, min_turns))
        })
        .collect();
    Grade::new(criteria, summary, "penpal".to_string(), at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_follow_the_cefr_around_the_assignment_level() {
        let b = Criterion::Accuracy.bands(Cefr::B1);
        assert!(b[3].starts_with("At B1:"), "{}", b[3]);
        assert!(b[4].starts_with("Above B1:") && b[4].ends_with("(B2)."));
        assert!(b[2].ends_with("(A2).") && b[1].ends_with("(A1)."));
        assert!(Criterion::Range.bands(Cefr::A1)[1].starts_with("Below A1"));
        assert!(Criterion::Fluency.bands(Cefr::C2)[4].starts_with("Beyond"));
    }

    #[test]
    fn a_usable_answer_is_taken_and_the_rest_estimated() {
        let e = Evidence {
            turns: 4,
            words: 40,
            distinct_words: 30,
            errors: 2,
            ..Evidence::default()
        };
        let answer = r#"Here: {"task_completion": {"score": 4, "reason": "goal reached"},
            "accuracy": {"score": 7}, "range": {"score": 2.5}, "summary": "Bien joué."}"#;
        let g = grade(Some(answer), &e, 4, 1);
        assert_eq!(g.criteria[0].score, 4);
        assert_eq!(g.criteria[0].source, ScoreSource::Model);
        // Out of range, not whole, missing: estimated, and the teacher is asked to look.
        assert!(
            g.criteria[1..]
                .iter()
                .all(|c| c.source == ScoreSource::Analysis)
        );
        assert_eq!(g.criteria[1].score, 2, "5 errors per 100 words");
        assert!(g.needs_review);
        assert_eq!(g.comment.as_deref(), Some("Bien joué."));
        assert_eq!(
            g.total,
            g.criteria.iter().map(|c| u32::from(c.score)).sum::<u32>()
        );
        let nothing = grade(Some("not json"), &e, 4, 1);
        assert!(
            nothing
                .criteria
                .iter()
                .all(|c| c.source == ScoreSource::Analysis)
        );
    }

    #[test]
    fn no_turn_scores_nothing() {
        let g = grade(None, &Evidence::default(), 3, 1);
        assert_eq!(g.total, 0);
        assert_eq!(g.max, 16);
    }
}
