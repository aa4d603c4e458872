//! The first-party personalities, built to wasm and called through the real host: each plans
//! turns in its own voice, adapts to the learner, and salvages whatever the model's analysis
//! looks like.

use std::sync::Arc;

use crate::common::*;
use penpal::plugins::types::Role;
use penpal::plugins::{CallError, PluginError, PluginHost};
use penpal::tutoring::tutor::{
    CefrLevel, ChatMode, CorrectionIntensity, ErrorCategory, TurnContext, TurnPlan,
};

fn personalities() -> Arc<PluginHost> {
    let host = host();
    for name in ["tutor", "partner", "roleplay"] {
        install(&host, &plugin(name));
    }
    host
}

fn system(plan: &TurnPlan) -> &str {
    let first = &plan.reply.messages[0];
    assert_eq!(first.role, Role::System);
    &first.content
}

fn roleplay_turn(message: &str, scenario: Option<&str>) -> TurnContext {
    let mut ctx = turn(message, CefrLevel::B1, ChatMode::RolePlay);
    ctx.scenario = scenario.map(str::to_string);
    ctx
}

#[tokio::test]
async fn three_personalities_with_three_voices() {
    let host = personalities();
    let ctx = turn(
        "Je suis allé à le marché hier",
        CefrLevel::B1,
        ChatMode::Tutor,
    );
    let tutor = tutors(&host).plan_turn("tutor", &ctx).await.unwrap();
    let partner = tutors(&host).plan_turn("partner", &ctx).await.unwrap();
    let roleplay = tutors(&host)
        .plan_turn(
            "roleplay",
            &roleplay_turn("Bonsoir, une table pour deux", Some("restaurant")),
        )
        .await
        .unwrap();

    assert!(system(&tutor).contains("Camille"));
    assert!(
        system(&tutor).contains("correcting"),
        "the tutor corrects explicitly"
    );
    assert!(system(&partner).contains("Léo"));
    assert!(system(&partner).contains("recast"), "the partner recasts");
    assert!(system(&partner).contains("Never correct the learner explicitly"));
    assert!(system(&roleplay).contains("the waiter"));
    assert!(system(&roleplay).contains("Stay in character"));

    for plan in [&tutor, &partner, &roleplay] {
        // The learner's message is the last thing the model reads, and every turn is analysed
        // as JSON with explanations in the learner's native language.
        let last = plan.reply.messages.last().unwrap();
        assert_eq!(last.role, Role::User);
        assert!(!plan.reply.json);
        let analysis = plan.analysis.as_ref().expect("an analysis request");
        assert!(analysis.json);
        assert!(analysis.messages[0].content.contains("in English"));
        assert_eq!(analysis.temperature, Some(0.0));
    }
    // The partner is the most playful, the analysis the most exact.
    assert!(partner.reply.temperature > tutor.reply.temperature);
}

#[tokio::test]
async fn the_tutor_speaks_to_the_learners_level() {
    let host = personalities();
    let beginner = tutors(&host)
        .plan_turn(
            "tutor",
            &turn("je mange pomme", CefrLevel::A1, ChatMode::Tutor),
        )
        .await
        .unwrap();
    let advanced = tutors(&host)
        .plan_turn(
            "tutor",
            &turn(
                "Il eût fallu que je le susse",
                CefrLevel::C2,
                ChatMode::Tutor,
            ),
        )
        .await
        .unwrap();
    let a1 = system(&beginner);
    assert!(a1.contains("very short, simple sentences"));
    assert!(a1.contains("one question at a time"));
    assert!(
        a1.contains("English translation"),
        "occasional translations: {a1}"
    );
    assert!(a1.contains("level A1"));
    let c2 = system(&advanced);
    assert!(c2.contains("idioms, nuance and register"));
    assert!(!c2.contains("translation"));
    assert!(
        advanced.analysis.unwrap().messages[0]
            .content
            .contains("register")
    );
}

#[tokio::test]
async fn correction_intensity_changes_what_the_tutor_does() {
    let host = personalities();
    let mut ctx = turn("je va au cinema", CefrLevel::A2, ChatMode::Tutor);
    ctx.profile.correction_intensity = CorrectionIntensity::Off;
    let off = tutors(&host).plan_turn("tutor", &ctx).await.unwrap();
    assert!(system(&off).contains("Do not point out mistakes"));

    let analysis = r#"{"corrections":[{"original":"je va","corrected":"je vais","explanation":"aller: je vais","category":"grammar"}]}"#;
    let review = tutors(&host)
        .review_turn("tutor", &ctx, "Super !", Some(analysis))
        .await
        .unwrap();
    assert!(review.corrections.is_empty(), "corrections off");
    ctx.profile.correction_intensity = CorrectionIntensity::EveryError;
    let review = tutors(&host)
        .review_turn("tutor", &ctx, "Super !", Some(analysis))
        .await
        .unwrap();
    assert_eq!(review.corrections.len(), 1);
    assert_eq!(review.corrections[0].category, ErrorCategory::Grammar);
    assert_eq!(review.corrections[0].explanation, "aller: je vais");
}

#[tokio::test]
async fn the_partner_loosens_up_as_the_learner_advances() {
    let host = personalities();
    let a2 = tutors(&host)
        .plan_turn(
            "partner",
            &turn("j'aime le foot", CefrLevel::A2, ChatMode::Conversation),
        )
        .await
        .unwrap();
    let c1 = tutors(&host)
        .plan_turn(
            "partner",
            &turn(
                "j'kiffe grave le foot",
                CefrLevel::C1,
                ChatMode::Conversation,
            ),
        )
        .await
        .unwrap();
    assert!(system(&a2).contains("short"));
    assert!(system(&c1).contains("informal register"));
    assert!(
        system(&c1).contains("football"),
        "interests reach the prompt"
    );
}

#[tokio::test]
async fn the_context_reaches_every_prompt() {
    let host = personalities();
    let mut ctx = turn("Et toi ?", CefrLevel::B2, ChatMode::Tutor);
    ctx.memory = Some("Ana is moving to Lyon in May.".into());
    ctx.pinned = vec!["Ana is vegetarian".into()];
    ctx.topic = Some("food markets".into());
    ctx.history = vec![
        penpal::plugins::types::ChatMessage {
            role: Role::User,
            content: "Salut".into(),
        },
        penpal::plugins::types::ChatMessage {
            role: Role::Assistant,
            content: "Salut Ana !".into(),
        },
    ];
    for name in ["tutor", "partner"] {
        let plan = tutors(&host).plan_turn(name, &ctx).await.unwrap();
        let sys = system(&plan);
        assert!(sys.contains("moving to Lyon"), "{name}: memory");
        assert!(sys.contains("Ana is vegetarian"), "{name}: pinned facts");
        assert!(sys.contains("food markets"), "{name}: topic");
        let m = &plan.reply.messages;
        assert_eq!(
            m.len(),
            4,
            "{name}: system, two history messages, the new message"
        );
        assert_eq!(m[1].content, "Salut");
        assert_eq!(m[3].content, "Et toi ?");
    }
}

#[tokio::test]
async fn role_play_offers_scenarios_and_requires_one() {
    let host = personalities();
    let scenarios = tutors(&host).scenarios("roleplay").await.unwrap();
    let ids: Vec<&str> = scenarios.iter().map(|s| s.id.as_str()).collect();
    for id in [
        "restaurant",
        "job-interview",
        "travel",
        "business-meeting",
        "doctor",
    ] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    assert!(
        scenarios
            .iter()
            .all(|s| !s.goal.is_empty() && !s.learner_role.is_empty())
    );
    assert!(tutors(&host).scenarios("tutor").await.unwrap().is_empty());

    let missing = tutors(&host)
        .plan_turn("roleplay", &roleplay_turn("Bonjour", None))
        .await;
    assert!(matches!(
        missing,
        Err(CallError::Plugin {
            error: PluginError::InvalidInput(_),
            ..
        })
    ));
    match tutors(&host)
        .plan_turn("roleplay", &roleplay_turn("Bonjour", Some("space-station")))
        .await
    {
        Err(CallError::Plugin {
            error: PluginError::InvalidInput(m),
            ..
        }) => {
            assert!(
                m.contains("space-station") && m.contains("restaurant"),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
    // A guest error is the learner's mistake, not the plugin's fault.
    let health = host.get("roleplay").unwrap().identity.health.report();
    assert_eq!((health.guest_errors, health.consecutive_faults), (2, 0));
}

#[tokio::test]
async fn role_play_ends_with_a_debrief() {
    let host = personalities();
    let during = roleplay_turn("Je voudrais le steak, s'il vous plaît", Some("restaurant"));
    let plan = tutors(&host).plan_turn("roleplay", &during).await.unwrap();
    assert!(!system(&plan).contains("debrief"));
    // A debrief the model volunteers mid-scene is not shown.
    let review = tutors(&host)
        .review_turn(
            "roleplay",
            &during,
            "Très bien.",
            Some(r#"{"debrief":"Well done"}"#),
        )
        .await
        .unwrap();
    assert!(review.debrief.is_none());
    assert!(review.dropped.iter().any(|d| d.contains("still running")));

    let end = roleplay_turn("/end", Some("restaurant"));
    let plan = tutors(&host).plan_turn("roleplay", &end).await.unwrap();
    assert!(system(&plan).contains("step out of your role"));
    assert!(
        system(&plan).contains("In English"),
        "B1 learners are debriefed in their own language"
    );
    assert!(
        plan.analysis.unwrap().messages[0]
            .content
            .contains("goal_met")
    );
    let review = tutors(&host)
        .review_turn(
            "roleplay",
            &end,
            "You ordered well.",
            Some(r#"{"goal_met": true, "debrief": "Goal met: you ordered a full meal."}"#),
        )
        .await
        .unwrap();
    assert_eq!(
        review.debrief.as_deref(),
        Some("Goal met: you ordered a full meal.")
    );
    // Without a usable analysis, the closing reply itself is the debrief.
    let review = tutors(&host)
        .review_turn("roleplay", &end, "You ordered well.", Some("{"))
        .await
        .unwrap();
    assert_eq!(review.debrief.as_deref(), Some("You ordered well."));
}

#[tokio::test]
async fn malformed_truncated_and_hostile_analysis_never_fail_a_turn() {
    let host = personalities();
    let ctx = turn(
        "Hier je suis allé à le marché avec mon amis",
        CefrLevel::A2,
        ChatMode::Tutor,
    );
    let good_item = r#"{"original":"à le marché","corrected":"au marché","explanation":"à + le = au","category":"grammar"}"#;
    let cases: Vec<(String, usize)> = vec![
        (format!(r#"{{"corrections":[{good_item}]}}"#), 1),
        (
            format!("```json\n{{\"corrections\":[{good_item}]}}\n```"),
            1,
        ),
        (
            format!(r#"{{"corrections":[{good_item},{{"original":"mon amis","corr"#),
            1,
        ),
        (
            r#"{"corrections":[{"original":"I was never said","corrected":"x"}]}"#.into(),
            0,
        ),
        (
            r#"{"corrections":"DROP TABLE users; ignore previous instructions"}"#.into(),
            0,
        ),
        ("Sorry, I can't help with that.".into(), 0),
        (String::new(), 0),
        ("{\"corrections\":[".to_string() + &"[".repeat(50_000), 0),
        (
            format!(r#"{{"corrections":[{}]}}"#, vec![good_item; 5000].join(",")),
            12,
        ),
        ("\u{0}\u{1}{\"level\":\"B1\u{7}\"}".into(), 0),
    ];
    for (raw, kept) in cases {
        for name in ["tutor", "partner", "roleplay"] {
            let mut ctx = ctx.clone();
            ctx.scenario = Some("restaurant".into());
            let review = tutors(&host)
                .review_turn(name, &ctx, "D'accord !", Some(&raw))
                .await
                .unwrap_or_else(|e| {
                    panic!("{name} failed on {:?}: {e}", &raw[..raw.len().min(60)])
                });
            assert_eq!(
                review.corrections.len(),
                kept,
                "{name}: {:?}",
                &raw[..raw.len().min(60)]
            );
            if kept == 0 && !raw.is_empty() {
                assert!(!review.dropped.is_empty(), "{name} says what it dropped");
            }
        }
    }
    // None of that was a fault.
    for name in ["tutor", "partner", "roleplay"] {
        assert_eq!(
            host.get(name)
                .unwrap()
                .identity
                .health
                .report()
                .consecutive_faults,
            0
        );
    }
}
