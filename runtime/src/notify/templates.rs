//! Message templates: one minijinja source per message, rendered twice — as HTML (escaped)
//! and as plain text — so both parts always say the same; the words come from Fluent files,
//! one per language (`locales/*.ftl`). The learner's interface language picks the words; a
//! message or language with no translation falls back to English, and the gap is logged.

use std::collections::HashMap;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use minijinja::value::{Kwargs, Value as JValue};
use minijinja::{AutoEscape, Environment, State};
use serde_json::Value;

/// The languages messages are written in; the first is the fallback.
pub const LANGUAGES: &[&str] = &["en", "fr"];

const LOCALES: &[(&str, &str)] = &[
    ("en", include_str!("locales/en.ftl")),
    ("fr", include_str!("locales/fr.ftl")),
];

/// The frame of every message, one per part.
const LAYOUTS: &[(&str, &str)] = &[
    ("layout.html", include_str!("templates/layout.html.j2")),
    ("layout.txt", include_str!("templates/layout.txt.j2")),
];

/// One source per message, rendered as each part.
const SOURCES: &[(&str, &str)] = &[
    ("verify_email", include_str!("templates/verify_email.j2")),
    (
        "password_reset",
        include_str!("templates/password_reset.j2"),
    ),
    (
        "password_changed",
        include_str!("templates/password_changed.j2"),
    ),
    ("welcome", include_str!("templates/welcome.j2")),
    ("weekly_digest", include_str!("templates/weekly_digest.j2")),
    (
        "streak_reminder",
        include_str!("templates/streak_reminder.j2"),
    ),
    ("new_sign_in", include_str!("templates/new_sign_in.j2")),
    ("email_change", include_str!("templates/email_change.j2")),
    ("email_changed", include_str!("templates/email_changed.j2")),
    // For billing: values `plan`, `date`, `amount` (formatted), `link`.
    ("trial_ending", include_str!("templates/trial_ending.j2")),
    // For billing: `amount`, `plan`, `link`.
    (
        "payment_failed",
        include_str!("templates/payment_failed.j2"),
    ),
    // For billing: `amount`, `plan`, `date`, `reference`, `link`.
    ("receipt", include_str!("templates/receipt.j2")),
    // For billing: `amount` (this refund), `reference`, `link`.
    ("refund", include_str!("templates/refund.j2")),
    // For schools: `inviter`, `school`, `role` (admin, teacher, learner), `days`, `link`.
    (
        "school_invitation",
        include_str!("templates/school_invitation.j2"),
    ),
    // For schools: `teacher`, `class`, `school`, `days`, `link`.
    (
        "class_invitation",
        include_str!("templates/class_invitation.j2"),
    ),
];

/// A message ready for a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The subject line.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
}

/// Why a message could not be rendered: a fault of ours (a template or a value missing), so
/// retrying cannot help.
#[derive(Debug, thiserror::Error)]
#[error("template `{template}`: {reason}")]
pub struct RenderError {
    template: String,
    reason: String,
}

type Bundle = FluentBundle<FluentResource>;

/// Every template and translation, parsed once.
pub struct Templates {
    env: Environment<'static>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").finish_non_exhaustive()
    }
}

impl Templates {
    /// Parses the built-in templates and translations (a broken one is an error here, which
    /// the unit tests would catch).
    pub fn new() -> Result<Templates, RenderError> {
        let mut bundles: HashMap<&'static str, Bundle> = HashMap::new();
        for (lang, source) in LOCALES {
            let resource =
                FluentResource::try_new((*source).to_string()).map_err(|(_, e)| RenderError {
                    template: format!("locales/{lang}.ftl"),
                    reason: format!("{e:?}"),
                })?;
            let id = lang.parse().map_err(|_| RenderError {
                template: format!("locales/{lang}.ftl"),
                reason: "not a language tag".into(),
            })?;
            let mut bundle = Bundle::new_concurrent(vec![id]);
            // No Unicode isolation marks: they show as stray characters in plain-text mail.
            bundle.set_use_isolating(false);
            bundle.add_resource(resource).map_err(|e| RenderError {
                template: format!("locales/{lang}.ftl"),
                reason: format!("{e:?}"),
            })?;
            bundles.insert(lang, bundle);
        }
        let bundles = std::sync::Arc::new(bundles);
        let mut env = Environment::new();
        // The same source is registered as `.html` (escaped) and `.txt` (as written).
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, source) in LAYOUTS {
            env.add_template_owned(*name, *source)
                .map_err(|e| RenderError {
                    template: (*name).to_string(),
                    reason: e.to_string(),
                })?;
        }
        for (name, source) in SOURCES {
            for ext in ["html", "txt"] {
                env.add_template_owned(format!("{name}.{ext}"), *source)
                    .map_err(|e| RenderError {
                        template: (*name).to_string(),
                        reason: e.to_string(),
                    })?;
            }
        }
        let words = bundles.clone();
        env.add_function("t", move |state: &State, key: &str, kwargs: Kwargs| {
            let lang = state
                .lookup("lang")
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| "en".into());
            let mut args = FluentArgs::new();
            for name in kwargs.args() {
                let value: JValue = kwargs.get(name)?;
                let value = match value.as_i64() {
                    Some(n) => FluentValue::from(n),
                    None => FluentValue::from(value.to_string()),
                };
                args.set(name.to_string(), value);
            }
            translate(&words, &lang, key, &args).ok_or_else(|| {
                minijinja::Error::new(
                    minijinja::ErrorKind::UndefinedError,
                    format!("no translation of `{key}`"),
                )
            })
        });
        env.add_function("p", |state: &State, text: &str| -> JValue {
            if is_html(state) {
                JValue::from_safe_string(format!("<p>{}</p>", escape(text)))
            } else {
                JValue::from(format!("{text}\n"))
            }
        });
        env.add_function("action", |state: &State, label: &str, url: &str| -> JValue {
            if is_html(state) {
                JValue::from_safe_string(format!(
                    "<p><a href=\"{}\" style=\"display:inline-block;background:#2f5bea;color:#fff;\
                     padding:10px 18px;border-radius:8px;text-decoration:none;font-weight:600\">{}</a></p>",
                    escape(url),
                    escape(label)
                ))
            } else {
                JValue::from(format!("{label}:\n{url}\n"))
            }
        });
        Ok(Templates { env })
    }

    /// `template` in `lang` (English if it has no translation) with `vars`; `unsubscribe`, a
    /// one-click link, goes in the footer.
    pub fn render(
        &self,
        template: &str,
        lang: &str,
        vars: &Value,
        unsubscribe: Option<&str>,
    ) -> Result<Rendered, RenderError> {
        let lang = if LANGUAGES.contains(&lang) {
            lang
        } else {
            tracing::warn!(
                lang,
                template,
                "no translation in this language: English is used"
            );
            "en"
        };
        let fail = |e: minijinja::Error| RenderError {
            template: template.to_string(),
            reason: e.to_string(),
        };
        let subject_key = format!("{}-subject", template.replace('_', "-"));
        let subject = self
            .env
            .render_str(
                "{{ t(key) }}",
                minijinja::context! { lang => lang, key => subject_key },
            )
            .map_err(fail)?;
        let mut parts = Vec::with_capacity(2);
        for format in ["html", "txt"] {
            let tmpl = self
                .env
                .get_template(&format!("{template}.{format}"))
                .map_err(fail)?;
            let ctx = minijinja::context! {
                format => format,
                layout => format!("layout.{format}"),
                lang => lang,
                subject => subject.clone(),
                unsubscribe => unsubscribe,
                ..JValue::from_serialize(vars)
            };
            parts.push(tmpl.render(ctx).map_err(fail)?);
        }
        let text = parts.pop().unwrap_or_default();
        let html = parts.pop().unwrap_or_default();
        Ok(Rendered {
            subject,
            text: tidy(&text),
            html,
        })
    }
}

fn is_html(state: &State) -> bool {
    state
        .lookup("format")
        .is_some_and(|f| f.as_str() == Some("html"))
}

/// `key` in `lang`, or in English when `lang` lacks it (logged).
fn translate(
    bundles: &HashMap<&'static str, Bundle>,
    lang: &str,
    key: &str,
    args: &FluentArgs,
) -> Option<String> {
    let find = |lang: &str| {
        let bundle = bundles.get(lang)?;
        let pattern = bundle.get_message(key)?.value()?;
        let mut errors = Vec::new();
        let text = bundle.format_pattern(pattern, Some(args), &mut errors);
        if !errors.is_empty() {
            tracing::warn!(lang, key, ?errors, "a translation did not format cleanly");
        }
        Some(text.into_owned())
    };
    find(lang).or_else(|| {
        if lang != "en" {
            tracing::warn!(lang, key, "missing translation: English is used");
        }
        find("en")
    })
}

/// `text` made safe inside HTML text and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// Plain text with at most one blank line in a row and no trailing spaces.
fn tidy(text: &str) -> String {
    let mut out = String::new();
    let mut blank = false;
    for line in text.lines().map(str::trim_end) {
        if line.is_empty() {
            if !blank && !out.is_empty() {
                out.push('\n');
            }
            blank = true;
        } else {
            out.push_str(line);
            out.push('\n');
            blank = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn templates() -> Templates {
        Templates::new().unwrap()
    }

    #[test]
    fn both_parts_say_the_same_and_html_is_escaped() {
        let r = templates()
            .render(
                "verify_email",
                "en",
                &json!({"name": "<b>Ana</b> & co", "link": "https://penpal.test/verify-email?token=a&b", "hours": 48}),
                None,
            )
            .unwrap();
        assert_eq!(r.subject, "Confirm your email address");
        assert!(r.text.contains("Hello <b>Ana</b> & co,"), "{}", r.text);
        assert!(
            r.text
                .contains("Confirm my address:\nhttps://penpal.test/verify-email?token=a&b")
        );
        assert!(r.text.contains("for 48 hours"));
        assert!(
            r.html.contains("Hello &lt;b&gt;Ana&lt;/b&gt; &amp; co,"),
            "{}",
            r.html
        );
        assert!(
            r.html
                .contains("href=\"https://penpal.test/verify-email?token=a&amp;b\"")
        );
        assert!(!r.html.contains("<b>Ana"));
        assert!(r.html.starts_with("<!doctype html>"));
        assert!(
            !r.text.contains("<p>") && !r.text.contains("<a "),
            "no markup in the text part: {}",
            r.text
        );
    }

    #[test]
    fn the_learners_language_picks_the_words_and_others_fall_back_to_english() {
        let vars = json!({"name": "Ana", "link": "https://x.test/r?token=t", "minutes": 30});
        let fr = templates()
            .render("password_reset", "fr", &vars, None)
            .unwrap();
        assert_eq!(fr.subject, "Réinitialisez votre mot de passe Penpal");
        assert!(fr.text.contains("Bonjour Ana,"));
        assert!(fr.html.contains("lang=\"fr\""));
        let de = templates()
            .render("password_reset", "de", &vars, None)
            .unwrap();
        assert_eq!(de.subject, "Reset your Penpal password");
    }

    #[test]
    fn a_missing_value_is_an_error_not_an_empty_link() {
        let err = templates()
            .render(
                "verify_email",
                "en",
                &json!({"name": "Ana", "hours": 48}),
                None,
            )
            .unwrap_err();
        assert!(err.to_string().contains("verify_email"), "{err}");
    }

    #[test]
    fn every_message_has_every_word_in_every_language() {
        for lang in LANGUAGES {
            let bundle_text = LOCALES.iter().find(|(l, _)| l == lang).unwrap().1;
            for (en_key, _) in LOCALES[0]
                .1
                .lines()
                .filter_map(|l| l.split_once(" = "))
                .filter(|(k, _)| !k.starts_with('#'))
            {
                assert!(
                    bundle_text.contains(&format!("{en_key} = ")),
                    "{lang} lacks `{en_key}`"
                );
            }
        }
    }

    #[test]
    fn every_message_renders_in_every_language_and_the_previews_are_written() {
        let values = json!({
            "name": "Ana", "link": "https://penpal.test/x", "hours": 48, "minutes": 30,
            "when": "2027-01-11 17:30", "turns": 12, "accuracy": 75, "streak": 4, "learned": 31,
            "due": 6, "device": "Firefox on Linux", "ip": "203.0.113.9", "new": "ana@new.example",
            "old": "ana@old.example", "plan": "Penpal Plus", "date": "2027-02-01",
            "amount": "9.99 EUR", "reference": "in_123", "teacher": "M. Dupont",
            "class": "B1 evening", "school": "Lycée Hugo", "days": 14, "inviter": "Mme Roux",
            "role": "teacher",
        });
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/mail-previews");
        let _ = std::fs::create_dir_all(&dir);
        let t = templates();
        for (name, _) in SOURCES {
            for lang in LANGUAGES {
                let r = t
                    .render(
                        name,
                        lang,
                        &values,
                        Some("https://penpal.test/unsubscribe?token=t"),
                    )
                    .unwrap_or_else(|e| panic!("{name} in {lang}: {e}"));
                assert!(
                    !r.subject.is_empty() && !r.subject.contains('{'),
                    "{name}: {}",
                    r.subject
                );
                for part in [&r.text, &r.html] {
                    assert!(
                        !part.contains("{ $") && !part.contains("{$"),
                        "{name}/{lang}: {part}"
                    );
                    assert!(part.contains("Ana"), "{name}/{lang} greets: {part}");
                }
                let _ = std::fs::write(dir.join(format!("{name}.{lang}.html")), &r.html);
                let _ = std::fs::write(dir.join(format!("{name}.{lang}.txt")), &r.text);
            }
        }
        let digest = t.render("weekly_digest", "fr", &values, None).unwrap();
        assert!(digest.text.contains("12 messages"), "{}", digest.text);
        assert!(digest.text.contains("4 jours d’affilée"), "{}", digest.text);
        let one = t
            .render("weekly_digest", "en", &json!({"name": "Ana", "link": "l", "turns": 1, "accuracy": null, "streak": 1, "learned": 0, "due": 0}), None)
            .unwrap();
        assert!(
            one.text.contains("one message"),
            "plural forms: {}",
            one.text
        );
        assert!(
            !one.text.contains('%'),
            "no accuracy line without one: {}",
            one.text
        );
    }
}
