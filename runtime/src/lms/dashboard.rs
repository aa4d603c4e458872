//! What a class's teachers see of it: each learner's activity in the class's language since
//! they joined, the class's accuracy week by week, its errors by category, each assignment's
//! progress, and the gradebook as CSV. Practice outside assignments reaches teachers only as
//! these figures — never a word of it.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::assignments::{self, Assignment, Submission, SubmissionStatus};
use super::classes::{self, Class, ClassRole};
use super::rubric::Criterion;
use crate::store::{Db, StoreResult, now_ms};
use crate::tutoring::progress::stats::turns_since;

const DAY_MS: i64 = 86_400_000;
const WEEKS: i64 = 8;

/// One learner's line on the dashboard.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LearnerLine {
    /// Their account id.
    pub user: String,
    /// Their address.
    pub email: String,
    /// Their display name.
    pub name: Option<String>,
    /// Turns in the class's language in the last 7 days.
    pub turns_7d: i64,
    /// … in the last 30 days.
    pub turns_30d: i64,
    /// Their last turn in the class's language (ms).
    pub last_active: Option<i64>,
    /// Errors per hundred words over the last 30 days (none without words).
    pub errors_per_100_words: Option<f64>,
    /// Assignments handed in.
    pub handed_in: i64,
    /// Their average grade, as a share of the best (none before a grade).
    pub average: Option<f64>,
}

/// One week of the class's accuracy.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WeekPoint {
    /// The week's first day (ms, UTC midnight).
    pub week_start: i64,
    /// Turns taken.
    pub turns: i64,
    /// Words written.
    pub words: i64,
    /// Errors corrected.
    pub errors: i64,
    /// Errors per hundred words (none without words).
    pub errors_per_100_words: Option<f64>,
}

/// One assignment's progress.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AssignmentLine {
    /// The assignment's id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Due (ms).
    pub due_at: Option<i64>,
    /// Learners who started it.
    pub started: i64,
    /// Learners who handed it in.
    pub handed_in: i64,
    /// Grades waiting for a teacher's look (a criterion was estimated).
    pub needs_review: i64,
    /// The average grade, as a share of the best (none before a grade).
    pub average: Option<f64>,
    /// The average score of each criterion (0–4), by its name.
    pub criteria: BTreeMap<String, f64>,
}

/// Errors of one category.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CategoryCount {
    /// grammar, vocabulary, spelling, punctuation, word-order, register, other.
    pub category: String,
    /// How many.
    pub errors: i64,
}

/// A class's dashboard.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Dashboard {
    /// The class.
    pub class: Class,
    /// Its learners.
    pub learners: Vec<LearnerLine>,
    /// The last eight weeks, oldest first.
    pub accuracy: Vec<WeekPoint>,
    /// Errors by category over the last 30 days, most frequent first.
    pub errors_by_category: Vec<CategoryCount>,
    /// Its assignments, newest first.
    pub assignments: Vec<AssignmentLine>,
}

fn rate(errors: i64, words: i64) -> Option<f64> {
    (words > 0).then(|| errors as f64 * 100.0 / words as f64)
}

fn share(grades: &[&Submission]) -> Option<f64> {
    let graded: Vec<_> = grades.iter().filter_map(|s| s.grade.as_ref()).collect();
    (!graded.is_empty()).then(|| {
        graded
            .iter()
            .map(|g| f64::from(g.total) / f64::from(g.max.max(1)))
            .sum::<f64>()
            / graded.len() as f64
    })
}

/// The dashboard of `class` as of now.
pub async fn build(db: &Db, class: Class) -> StoreResult<Dashboard> {
    let now = now_ms();
    // Weeks start on Monday; 1 January 1970 was a Thursday.
    let today = now.div_euclid(DAY_MS);
    let this_week = (today - (today + 3).rem_euclid(7)) * DAY_MS;
    let first_week = this_week - (WEEKS - 1) * 7 * DAY_MS;
    let members = classes::members(db, &class.id).await?;
    let submissions = assignments::class_submissions(db, &class.id).await?;
    let mut weeks: Vec<WeekPoint> = (0..WEEKS)
        .map(|i| WeekPoint {
            week_start: first_week + i * 7 * DAY_MS,
            turns: 0,
            words: 0,
            errors: 0,
            errors_per_100_words: None,
        })
        .collect();
    let mut categories: BTreeMap<String, i64> = BTreeMap::new();
    let mut learners = Vec::new();
    for m in members.iter().filter(|m| m.role == ClassRole::Learner) {
        let since = m.added_at.max(first_week);
        let facts = turns_since(db, &m.user, &class.language, since).await?;
        let (mut words_30, mut errors_30) = (0, 0);
        for f in &facts {
            if f.at >= first_week {
                let w =
                    &mut weeks[((f.at - first_week) / (7 * DAY_MS)).clamp(0, WEEKS - 1) as usize];
                w.turns += 1;
                w.words += f.words;
                w.errors += f.errors;
            }
            if f.at >= now - 30 * DAY_MS {
                words_30 += f.words;
                errors_30 += f.errors;
                for (c, n) in &f.categories {
                    *categories.entry(c.clone()).or_default() += n;
                }
            }
        }
        let mine: Vec<&Submission> = submissions.iter().filter(|s| s.user == m.user).collect();
        learners.push(LearnerLine {
            user: m.user.clone(),
            email: m.email.clone(),
            name: m.name.clone(),
            turns_7d: facts.iter().filter(|f| f.at >= now - 7 * DAY_MS).count() as i64,
            turns_30d: facts.iter().filter(|f| f.at >= now - 30 * DAY_MS).count() as i64,
            last_active: facts.last().map(|f| f.at),
            errors_per_100_words: rate(errors_30, words_30),
            handed_in: mine
                .iter()
                .filter(|s| s.status != SubmissionStatus::Started)
                .count() as i64,
            average: share(&mine),
        });
    }
    for w in &mut weeks {
        w.errors_per_100_words = rate(w.errors, w.words);
    }
    let mut errors_by_category: Vec<CategoryCount> = categories
        .into_iter()
        .map(|(category, errors)| CategoryCount { category, errors })
        .collect();
    errors_by_category.sort_by(|a, b| b.errors.cmp(&a.errors).then(a.category.cmp(&b.category)));
    let assignments = assignments::list(db, &class.id)
        .await?
        .into_iter()
        .map(|a| assignment_line(&a, &submissions))
        .collect();
    Ok(Dashboard {
        class,
        learners,
        accuracy: weeks,
        errors_by_category,
        assignments,
    })
}

fn assignment_line(a: &Assignment, submissions: &[Submission]) -> AssignmentLine {
    let these: Vec<&Submission> = submissions
        .iter()
        .filter(|s| s.assignment == a.id)
        .collect();
    let graded: Vec<_> = these.iter().filter_map(|s| s.grade.as_ref()).collect();
    let criteria = Criterion::ALL
        .iter()
        .filter(|_| !graded.is_empty())
        .map(|c| {
            let sum: u32 = graded
                .iter()
                .filter_map(|g| g.criteria.iter().find(|x| x.criterion == *c))
                .map(|x| u32::from(x.score))
                .sum();
            (c.as_str().to_string(), f64::from(sum) / graded.len() as f64)
        })
        .collect();
    AssignmentLine {
        id: a.id.clone(),
        title: a.title.clone(),
        due_at: a.due_at,
        started: these.len() as i64,
        handed_in: these
            .iter()
            .filter(|s| s.status != SubmissionStatus::Started)
            .count() as i64,
        needs_review: graded.iter().filter(|g| g.needs_review).count() as i64,
        average: share(&these),
        criteria,
    }
}

/// One CSV field: quoted when it must be, and a leading `=`, `+`, `-`, `@`, tab or CR
/// neutralised so a spreadsheet never runs a learner's text as a formula.
fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The gradebook of `class`: a row per learner and assignment.
pub async fn gradebook_csv(db: &Db, class: &Class) -> StoreResult<String> {
    let members = classes::members(db, &class.id).await?;
    let all = assignments::list(db, &class.id).await?;
    let submissions = assignments::class_submissions(db, &class.id).await?;
    let mut out = String::from(
        "learner,email,assignment,status,handed_in_at,late,task_completion,accuracy,range,fluency,total,max,graded_by,needs_review,comment\n",
    );
    for m in members.iter().filter(|m| m.role == ClassRole::Learner) {
        for a in all.iter().rev() {
            let s = submissions
                .iter()
                .find(|s| s.user == m.user && s.assignment == a.id);
            let status = s.map_or("not_started", |s| match s.status {
                SubmissionStatus::Started => "started",
                SubmissionStatus::Submitted => "handed_in",
                SubmissionStatus::Graded => "graded",
            });
            let grade = s.and_then(|s| s.grade.as_ref());
            let score = |c: Criterion| {
                grade
                    .and_then(|g| g.criteria.iter().find(|x| x.criterion == c))
                    .map(|x| x.score.to_string())
                    .unwrap_or_default()
            };
            let row = [
                field(m.name.as_deref().unwrap_or("")),
                field(&m.email),
                field(&a.title),
                status.to_string(),
                s.and_then(|s| s.submitted_at)
                    .map(crate::store::rfc3339)
                    .unwrap_or_default(),
                s.map(|s| s.late.to_string()).unwrap_or_default(),
                score(Criterion::TaskCompletion),
                score(Criterion::Accuracy),
                score(Criterion::Range),
                score(Criterion::Fluency),
                grade.map(|g| g.total.to_string()).unwrap_or_default(),
                grade.map(|g| g.max.to_string()).unwrap_or_default(),
                grade
                    .map(|g| {
                        if g.graded_by == "penpal" {
                            "penpal"
                        } else {
                            "teacher"
                        }
                    })
                    .unwrap_or_default()
                    .to_string(),
                grade
                    .map(|g| g.needs_review.to_string())
                    .unwrap_or_default(),
                field(grade.and_then(|g| g.comment.as_deref()).unwrap_or("")),
            ];
            out.push_str(&row.join(","));
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("-2+3"), "'-2+3");
    }
}
