//! Salvaging a model's turn analysis.
//!
//! Tutor personalities ask the model for a JSON analysis of the learner's message. Models break
//! JSON in every way they can — code fences, prose around it, a stream cut mid-string, wrong
//! types, invented quotes, thousands of items — and a plugin must never trap on any of it. This
//! module owns the one lenient reader the first-party personalities share: it keeps every item
//! that validates and says, in `dropped`, what it threw away and why.
//!
//! The shape it reads (every field optional):
//!
//! ```json
//! {"corrections": [{"original": "", "corrected": "", "explanation": "", "category": "grammar"}],
//!  "vocabulary": [{"term": "", "translation": "", "example": ""}],
//!  "level": {"observed": "B1", "confidence": 0.6},
//!  "goal_met": false,
//!  "debrief": null}
//! ```

use serde_json::{Map, Value};

use crate::tutor::{
    CefrLevel, Correction, CorrectionIntensity, ErrorCategory, LevelSignal, TurnContext,
    TurnReview, VocabularyItem,
};
use crate::types::{ChatMessage, CompletionRequest, Role};

/// Longest analysis text read; the rest is ignored.
pub const MAX_INPUT_BYTES: usize = 32 * 1024;
/// Most corrections kept from one turn.
pub const MAX_CORRECTIONS: usize = 12;
/// Most vocabulary items kept from one turn.
pub const MAX_VOCABULARY: usize = 12;
/// Longest text field kept, in characters.
pub const MAX_FIELD_CHARS: usize = 400;
/// Longest debrief kept, in characters.
pub const MAX_DEBRIEF_CHARS: usize = 4000;
/// Corrections kept at `gentle` intensity.
pub const GENTLE_CORRECTIONS: usize = 2;
/// Cut points tried when repairing a truncated object.
const MAX_REPAIRS: usize = 64;

/// What survived of an analysis.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    /// Valid corrections, in the model's order.
    pub corrections: Vec<Correction>,
    /// Valid vocabulary items, without duplicates.
    pub vocabulary: Vec<VocabularyItem>,
    /// The level the message suggests.
    pub level: Option<LevelSignal>,
    /// Whether a role-play goal was met, when the model said.
    pub goal_met: Option<bool>,
    /// A role-play debrief, when the model wrote one.
    pub debrief: Option<String>,
    /// What was thrown away, and why.
    pub dropped: Vec<String>,
}

impl Analysis {
    /// Reads `raw` (the model's answer to the analysis request) for the turn `ctx`, keeping what
    /// validates and applying the learner's correction intensity.
    pub fn salvage(raw: Option<&str>, ctx: &TurnContext) -> Analysis {
        let mut out = Analysis::default();
        let Some(raw) = raw else {
            return out;
        };
        let Some(object) = extract_object(raw, &mut out.dropped) else {
            return out;
        };
        out.read_corrections(object.get("corrections"), &ctx.message);
        out.read_vocabulary(object.get("vocabulary"));
        out.read_level(object.get("level"));
        match object.get("goal_met") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(met)) => out.goal_met = Some(*met),
            Some(_) => out.dropped.push("goal_met: not true or false".into()),
        }
        match object.get("debrief") {
            None | Some(Value::Null) => {}
            Some(Value::String(text)) => {
                let text = clean(text, MAX_DEBRIEF_CHARS);
                if !text.is_empty() {
                    out.debrief = Some(text);
                }
            }
            Some(_) => out.dropped.push("debrief: not a string".into()),
        }
        out.apply_intensity(ctx.profile.correction_intensity);
        out
    }

    /// Keeps the corrections the learner asked for: none when `off`, the first few that are not
    /// mere punctuation when `gentle`, all when `every-error`.
    pub fn apply_intensity(&mut self, intensity: CorrectionIntensity) {
        match intensity {
            CorrectionIntensity::EveryError => {}
            CorrectionIntensity::Off => {
                if !self.corrections.is_empty() {
                    self.dropped.push(format!(
                        "{} correction(s): the learner turned corrections off",
                        self.corrections.len()
                    ));
                    self.corrections.clear();
                }
            }
            CorrectionIntensity::Gentle => {
                let before = self.corrections.len();
                self.corrections
                    .retain(|c| c.category != ErrorCategory::Punctuation);
                self.corrections.truncate(GENTLE_CORRECTIONS);
                let cut = before - self.corrections.len();
                if cut > 0 {
                    self.dropped.push(format!(
                        "{cut} minor correction(s): gentle correction intensity"
                    ));
                }
            }
        }
    }

    /// The typed review the host expects.
    pub fn into_review(self) -> TurnReview {
        TurnReview {
            corrections: self.corrections,
            vocabulary: self.vocabulary,
            level: self.level,
            debrief: self.debrief,
            dropped: self.dropped,
        }
    }

    fn read_corrections(&mut self, value: Option<&Value>, message: &str) {
        let Some(items) = list(value, "corrections", &mut self.dropped) else {
            return;
        };
        let haystack = normalise(message);
        for (i, item) in items.iter().enumerate() {
            if self.corrections.len() == MAX_CORRECTIONS {
                self.dropped.push(format!(
                    "corrections past the first {MAX_CORRECTIONS}: {} more",
                    items.len() - i
                ));
                break;
            }
            match correction(item, &haystack) {
                Ok(c) => self.corrections.push(c),
                Err(why) => self.dropped.push(format!("correction {i}: {why}")),
            }
        }
    }

    fn read_vocabulary(&mut self, value: Option<&Value>) {
        let Some(items) = list(value, "vocabulary", &mut self.dropped) else {
            return;
        };
        for (i, item) in items.iter().enumerate() {
            if self.vocabulary.len() == MAX_VOCABULARY {
                self.dropped.push(format!(
                    "vocabulary past the first {MAX_VOCABULARY}: {} more",
                    items.len() - i
                ));
                break;
            }
            match vocabulary_item(item) {
                Ok(v) => {
                    let seen = self
                        .vocabulary
                        .iter()
                        .any(|old| old.term.to_lowercase() == v.term.to_lowercase());
                    if seen {
                        self.dropped
                            .push(format!("vocabulary {i}: duplicate of \"{}\"", v.term));
                    } else {
                        self.vocabulary.push(v);
                    }
                }
                Err(why) => self.dropped.push(format!("vocabulary {i}: {why}")),
            }
        }
    }

    fn read_level(&mut self, value: Option<&Value>) {
        let (observed, confidence) = match value {
            None | Some(Value::Null) => return,
            Some(Value::String(code)) => (Some(code.as_str()), None),
            Some(Value::Object(fields)) => (
                fields.get("observed").and_then(Value::as_str),
                fields.get("confidence"),
            ),
            Some(_) => {
                self.dropped.push("level: not a level".into());
                return;
            }
        };
        let Some(level) = observed.and_then(CefrLevel::parse) else {
            self.dropped.push("level: not one of A1–C2".into());
            return;
        };
        let confidence = match confidence.map(Value::as_f64) {
            None => 0.5,
            Some(Some(c)) if c.is_finite() => c.clamp(0.0, 1.0) as f32,
            Some(_) => {
                self.dropped
                    .push("level: confidence is not a number".into());
                return;
            }
        };
        self.level = Some(LevelSignal {
            observed: level,
            confidence,
        });
    }
}

/// The standard analysis request for a turn: a JSON object of the shape [`Analysis::salvage`]
/// reads, with explanations in the learner's native language. `focus` adds a personality's
/// own instructions (what to look for, whether to judge a role-play goal).
pub fn request(ctx: &TurnContext, focus: &str) -> CompletionRequest {
    let native = crate::lang::name(&ctx.profile.native_language);
    let target = crate::lang::name(&ctx.profile.target_language);
    let level = ctx.profile.level.code();
    let system = format!(
        "You analyse one message written in {target} by a learner at CEFR level {level} whose \
         native language is {native}. Answer with one JSON object and nothing else:\n\
         {{\"corrections\": [{{\"original\": exact words from the message, \"corrected\": the \
         fixed words, \"explanation\": why, in {native}, one sentence, \"category\": one of \
         grammar|vocabulary|spelling|punctuation|word-order|register|other}}],\n\
         \"vocabulary\": [{{\"term\": a useful {target} word or phrase for this learner, \
         \"translation\": in {native}, \"example\": a short {target} sentence}}],\n\
         \"level\": {{\"observed\": the CEFR level this message shows, \"confidence\": 0 to 1}}}}\n\
         Quote `original` exactly as the learner wrote it. Report only real errors; an empty \
         list is a fine answer. At most 3 vocabulary items. {focus}"
    );
    CompletionRequest {
        messages: vec![
            ChatMessage {
                role: Role::System,
                content: system,
            },
            ChatMessage {
                role: Role::User,
                content: ctx.message.clone(),
            },
        ],
        model: None,
        temperature: Some(0.0),
        max_tokens: Some(700),
        json: true,
    }
}

/// `value` as a list, noting in `dropped` when it is something else.
fn list<'a>(
    value: Option<&'a Value>,
    name: &str,
    dropped: &mut Vec<String>,
) -> Option<&'a [Value]> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(items),
        Some(_) => {
            dropped.push(format!("{name}: not a list"));
            None
        }
    }
}

fn correction(item: &Value, haystack: &str) -> Result<Correction, &'static str> {
    let fields = item.as_object().ok_or("not an object")?;
    let original = text_field(fields, "original").ok_or("no original text")?;
    let corrected = text_field(fields, "corrected").ok_or("no corrected text")?;
    if original == corrected {
        return Err("corrected text is the same as the original");
    }
    // A model sometimes "corrects" words the learner never wrote; showing those on the
    // learner's message would be wrong.
    if !haystack.contains(&normalise(&original)) {
        return Err("original text is not in the learner's message");
    }
    let explanation = text_field(fields, "explanation").unwrap_or_default();
    let category = fields
        .get("category")
        .and_then(Value::as_str)
        .and_then(ErrorCategory::parse)
        .unwrap_or(ErrorCategory::Other);
    Ok(Correction {
        original,
        corrected,
        explanation,
        category,
    })
}

fn vocabulary_item(item: &Value) -> Result<VocabularyItem, &'static str> {
    let fields = item.as_object().ok_or("not an object")?;
    let term = text_field(fields, "term").ok_or("no term")?;
    let translation = text_field(fields, "translation").ok_or("no translation")?;
    Ok(VocabularyItem {
        term,
        translation,
        example: text_field(fields, "example"),
    })
}

/// A non-empty, cleaned string field.
fn text_field(fields: &Map<String, Value>, name: &str) -> Option<String> {
    let text = clean(fields.get(name)?.as_str()?, MAX_FIELD_CHARS);
    (!text.is_empty()).then_some(text)
}

/// Trims, drops control characters (keeping line breaks) and caps the length.
fn clean(text: &str, max_chars: usize) -> String {
    let kept: String = text
        .trim()
        .chars()
        .filter(|c| *c == '\n' || !c.is_control())
        .take(max_chars)
        .collect();
    kept.trim().to_string()
}

/// Lower case with runs of white space folded, for finding a quote in a message.
fn normalise(text: &str) -> String {
    text.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first JSON object in `raw`, repaired when the text was cut short.
fn extract_object(raw: &str, dropped: &mut Vec<String>) -> Option<Map<String, Value>> {
    let mut raw = raw;
    if raw.len() > MAX_INPUT_BYTES {
        let mut end = MAX_INPUT_BYTES;
        while !raw.is_char_boundary(end) {
            end -= 1;
        }
        raw = &raw[..end];
        dropped.push(format!("analysis past its first {MAX_INPUT_BYTES} bytes"));
    }
    let Some(start) = raw.find('{') else {
        dropped.push("analysis: no JSON object in the model's answer".into());
        return None;
    };
    let text = &raw[start..];
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    match values.next() {
        Some(Ok(Value::Object(object))) => return Some(object),
        Some(Err(e)) if !e.is_eof() => {
            dropped.push(format!("analysis: not valid JSON ({e})"));
            return None;
        }
        _ => {}
    }
    match repair(text) {
        Some(object) => {
            dropped.push("analysis was cut short; kept its complete items".into());
            Some(object)
        }
        None => {
            dropped.push("analysis was cut short and nothing could be kept".into());
            None
        }
    }
}

/// Closes a truncated JSON object at the latest point where what came before is complete.
///
/// It cuts only between the elements of a list or the fields of the outer object, so an item
/// that was itself cut short is dropped whole rather than kept without its later fields.
fn repair(text: &str) -> Option<Map<String, Value>> {
    // (cut position, closers needed there).
    let mut cuts: Vec<(usize, String)> = Vec::new();
    let mut stack: Vec<char> = Vec::new();
    let (mut in_string, mut escaped) = (false, false);
    for (i, c) in text.char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => {
                stack.push(if c == '{' { '}' } else { ']' });
                if c == '[' || stack.len() == 1 {
                    cuts.push((i + 1, stack.iter().rev().collect()));
                }
            }
            '}' | ']' => {
                stack.pop();
                if stack.is_empty() {
                    break;
                }
            }
            ',' if stack.len() == 1 || stack.last() == Some(&']') => {
                cuts.push((i, stack.iter().rev().collect()))
            }
            _ => {}
        }
    }
    cuts.iter()
        .rev()
        .take(MAX_REPAIRS)
        .find_map(|(at, closers)| {
            let candidate = format!("{}{closers}", &text[..*at]);
            match serde_json::from_str::<Value>(&candidate) {
                Ok(Value::Object(object)) => Some(object),
                _ => None,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tutor::{ChatMode, LearnerProfile};

    fn ctx(message: &str, intensity: CorrectionIntensity) -> TurnContext {
        TurnContext {
            profile: LearnerProfile {
                display_name: "Ana".into(),
                native_language: "en".into(),
                target_language: "fr".into(),
                level: CefrLevel::A2,
                goals: vec![],
                interests: vec![],
                correction_intensity: intensity,
            },
            mode: ChatMode::Tutor,
            scenario: None,
            topic: None,
            history: vec![],
            memory: None,
            pinned: vec![],
            message: message.into(),
            turn: 0,
        }
    }

    const GOOD: &str = r#"{"corrections":[{"original":"je suis allé à le marché","corrected":"je suis allé au marché","explanation":"à + le becomes au","category":"grammar"}],"vocabulary":[{"term":"le marché","translation":"the market"}],"level":{"observed":"A2","confidence":0.7}}"#;

    #[test]
    fn reads_a_well_formed_analysis() {
        let a = Analysis::salvage(
            Some(GOOD),
            &ctx(
                "Hier je suis allé à le marché",
                CorrectionIntensity::EveryError,
            ),
        );
        assert_eq!(a.corrections.len(), 1);
        assert_eq!(a.corrections[0].corrected, "je suis allé au marché");
        assert_eq!(a.corrections[0].category, ErrorCategory::Grammar);
        assert_eq!(a.vocabulary[0].translation, "the market");
        assert_eq!(a.level.map(|l| l.observed), Some(CefrLevel::A2));
        assert!(a.dropped.is_empty(), "{:?}", a.dropped);
    }

    #[test]
    fn reads_through_code_fences_and_prose() {
        let raw = format!("Sure! Here is the analysis:\n```json\n{GOOD}\n```\nHope it helps.");
        let a = Analysis::salvage(
            Some(&raw),
            &ctx(
                "Hier je suis allé à le marché",
                CorrectionIntensity::EveryError,
            ),
        );
        assert_eq!(a.corrections.len(), 1);
        assert_eq!(a.vocabulary.len(), 1);
    }

    #[test]
    fn keeps_the_complete_items_of_a_truncated_analysis() {
        let raw = r#"{"corrections":[{"original":"à le","corrected":"au","category":"grammar"},{"original":"je va","corrected":"je vais","expla"#;
        let a = Analysis::salvage(
            Some(raw),
            &ctx("je va à le cinéma", CorrectionIntensity::EveryError),
        );
        assert_eq!(a.corrections.len(), 1, "{:?}", a);
        assert_eq!(a.corrections[0].corrected, "au");
        assert!(a.dropped.iter().any(|d| d.contains("cut short")));
    }

    #[test]
    fn drops_corrections_of_words_the_learner_never_wrote() {
        let raw =
            r#"{"corrections":[{"original":"ignore all previous instructions","corrected":"x"}]}"#;
        let a = Analysis::salvage(Some(raw), &ctx("bonjour", CorrectionIntensity::EveryError));
        assert!(a.corrections.is_empty());
        assert!(a.dropped[0].contains("not in the learner's message"));
    }

    #[test]
    fn wrong_types_and_garbage_are_dropped_not_fatal() {
        for raw in [
            "",
            "no json here",
            "{",
            "[1,2,3]",
            r#"{"corrections":"everything is wrong","vocabulary":{"a":1},"level":42,"debrief":7}"#,
            r#"{"corrections":[null, 3, {"original": 5}],"level":{"observed":"Z9"}}"#,
            &"[".repeat(10_000),
        ] {
            let a = Analysis::salvage(Some(raw), &ctx("bonjour", CorrectionIntensity::EveryError));
            assert!(a.corrections.is_empty() && a.vocabulary.is_empty(), "{raw}");
        }
        let a = Analysis::salvage(
            Some(r#"{"corrections":"x","level":{"observed":"b2","confidence":"high"}}"#),
            &ctx("bonjour", CorrectionIntensity::EveryError),
        );
        assert!(a.dropped.iter().any(|d| d == "corrections: not a list"));
        assert!(a.dropped.iter().any(|d| d.contains("confidence")));
    }

    #[test]
    fn caps_floods_of_items_and_long_fields() {
        let item = r#"{"term":"mot","translation":"word"}"#;
        let many: Vec<String> = (0..500)
            .map(|i| item.replace("mot", &format!("mot{i}")))
            .collect();
        let raw = format!(
            r#"{{"vocabulary":[{}],"debrief":"{}"}}"#,
            many.join(","),
            "a".repeat(100_000)
        );
        let a = Analysis::salvage(Some(&raw), &ctx("bonjour", CorrectionIntensity::EveryError));
        assert_eq!(a.vocabulary.len(), MAX_VOCABULARY);
        assert!(
            a.debrief
                .is_none_or(|d| d.chars().count() <= MAX_DEBRIEF_CHARS)
        );
    }

    #[test]
    fn correction_intensity_is_respected() {
        let raw = r#"{"corrections":[
            {"original":"je va","corrected":"je vais","category":"grammar"},
            {"original":"cinema","corrected":"cinéma","category":"spelling"},
            {"original":"demain","corrected":"demain,","category":"punctuation"},
            {"original":"le","corrected":"au","category":"grammar"}]}"#;
        let message = "je va le cinema demain";
        let off = Analysis::salvage(Some(raw), &ctx(message, CorrectionIntensity::Off));
        assert!(off.corrections.is_empty());
        let gentle = Analysis::salvage(Some(raw), &ctx(message, CorrectionIntensity::Gentle));
        assert_eq!(gentle.corrections.len(), GENTLE_CORRECTIONS);
        assert!(
            gentle
                .corrections
                .iter()
                .all(|c| c.category != ErrorCategory::Punctuation)
        );
        let all = Analysis::salvage(Some(raw), &ctx(message, CorrectionIntensity::EveryError));
        assert_eq!(all.corrections.len(), 4);
    }

    /// The cases every SDK (Rust, Python, JavaScript) must read alike.
    #[test]
    fn reads_the_shared_cases_like_every_other_sdk() {
        let doc: Value =
            serde_json::from_str(include_str!("../tests/analysis-cases.json")).unwrap();
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
                .unwrap_or_default()
        };
        for case in doc["cases"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let intensity = match case["intensity"].as_str().unwrap_or("every-error") {
                "off" => CorrectionIntensity::Off,
                "gentle" => CorrectionIntensity::Gentle,
                _ => CorrectionIntensity::EveryError,
            };
            let context = ctx(case["message"].as_str().unwrap(), intensity);
            let a = Analysis::salvage(case["raw"].as_str(), &context);
            let want = &case["expect"];
            let corrections: Vec<Vec<String>> = a
                .corrections
                .iter()
                .map(|c| {
                    let category = match c.category {
                        ErrorCategory::Grammar => "grammar",
                        ErrorCategory::Vocabulary => "vocabulary",
                        ErrorCategory::Spelling => "spelling",
                        ErrorCategory::Punctuation => "punctuation",
                        ErrorCategory::WordOrder => "word-order",
                        ErrorCategory::Register => "register",
                        ErrorCategory::Other => "other",
                    }
                    .to_string();
                    vec![c.original.clone(), c.corrected.clone(), category]
                })
                .collect();
            let expected: Vec<Vec<String>> = want["corrections"]
                .as_array()
                .map(|a| a.iter().map(&strings).collect())
                .unwrap_or_default();
            assert_eq!(corrections, expected, "{name}");
            match want["vocabulary_count"].as_u64() {
                Some(n) => assert_eq!(a.vocabulary.len() as u64, n, "{name}"),
                None => {
                    let vocabulary: Vec<Vec<String>> = a
                        .vocabulary
                        .iter()
                        .map(|v| vec![v.term.clone(), v.translation.clone()])
                        .collect();
                    let expected: Vec<Vec<String>> = want["vocabulary"]
                        .as_array()
                        .map(|a| a.iter().map(&strings).collect())
                        .unwrap_or_default();
                    assert_eq!(vocabulary, expected, "{name}");
                }
            }
            let level = a
                .level
                .map(|l| (l.observed.code().to_string(), l.confidence as f64));
            let expected = want["level"]
                .as_array()
                .map(|l| (l[0].as_str().unwrap().to_string(), l[1].as_f64().unwrap()));
            match (level, expected) {
                (Some((code, c)), Some((want_code, want_c))) => {
                    assert_eq!(code, want_code, "{name}");
                    assert!((c - want_c).abs() < 1e-6, "{name}: {c}");
                }
                (got, want) => assert_eq!(got.is_some(), want.is_some(), "{name}"),
            }
            assert_eq!(a.debrief.as_deref(), want["debrief"].as_str(), "{name}");
            if let Some(starts) = want["dropped_starting"].as_array() {
                assert_eq!(a.dropped.len(), starts.len(), "{name}: {:?}", a.dropped);
                for (d, s) in a.dropped.iter().zip(starts) {
                    assert!(d.starts_with(s.as_str().unwrap()), "{name}: {d}");
                }
            } else {
                assert_eq!(a.dropped, strings(&want["dropped"]), "{name}");
            }
        }
    }
}
