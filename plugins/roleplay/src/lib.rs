//! Stage, the role-play coach: plays one scene with the learner, stays in character, and steps
//! out to debrief when the learner asks (`/end`) or the scene has run its course.

use penpal_host_api::analysis::{self, Analysis};
use penpal_host_api::lang;
use penpal_host_api::prompt;
use penpal_host_api::tutor::CefrLevel;
use penpal_host_api::tutor::{Scenario, TurnContext, TurnPlan, TurnReview, Tutor};
use penpal_host_api::types::PluginError;

/// A scene ends at the latest after this many learner turns.
const MAX_TURNS: u32 = 12;
/// What a learner types to end the scene.
const END_COMMANDS: [&str; 4] = ["/end", "/debrief", "/fin", "/stop"];

struct Stage;

fn scenarios() -> Vec<Scenario> {
    let s =
        |id: &str, title: &str, setting: &str, learner: &str, tutor: &str, goal: &str| Scenario {
            id: id.into(),
            title: title.into(),
            setting: setting.into(),
            learner_role: learner.into(),
            tutor_role: tutor.into(),
            goal: goal.into(),
        };
    vec![
        s(
            "restaurant",
            "At the restaurant",
            "A busy bistro on a Friday evening.",
            "a guest",
            "the waiter",
            "Order a starter, a main course and a drink, ask about one dish, and ask for the bill.",
        ),
        s(
            "job-interview",
            "Job interview",
            "The office of a company hiring for the learner's field.",
            "the candidate",
            "the hiring manager",
            "Present your experience, answer two questions about yourself and ask one question about the job.",
        ),
        s(
            "travel",
            "At the train station",
            "A ticket office; the learner's train was cancelled.",
            "a traveller",
            "the ticket agent",
            "Find out why the train was cancelled, get a ticket for the next train and ask which platform it leaves from.",
        ),
        s(
            "business-meeting",
            "Business meeting",
            "A video call with a supplier who is late with a delivery.",
            "the customer",
            "the supplier's account manager",
            "Explain the problem politely but firmly, agree on a new delivery date and a discount.",
        ),
        s(
            "doctor",
            "At the doctor's",
            "A general practitioner's consulting room.",
            "the patient",
            "the doctor",
            "Describe your symptoms and how long you have had them, understand the treatment and ask how often to take it.",
        ),
    ]
}

fn is_end(ctx: &TurnContext) -> bool {
    let said = ctx.message.trim().to_lowercase();
    END_COMMANDS.contains(&said.as_str()) || ctx.turn + 1 >= MAX_TURNS
}

impl Tutor for Stage {
    fn scenarios() -> Vec<Scenario> {
        scenarios()
    }

    fn plan_turn(ctx: TurnContext) -> Result<TurnPlan, PluginError> {
        let all = scenarios();
        let scenario = match ctx.scenario.as_deref() {
            Some(id) => all.iter().find(|s| s.id == id).ok_or_else(|| {
                let ids: Vec<&str> = all.iter().map(|s| s.id.as_str()).collect();
                PluginError::InvalidInput(format!(
                    "unknown scenario `{id}`; choose one of: {}",
                    ids.join(", ")
                ))
            })?,
            None => {
                return Err(PluginError::InvalidInput(
                    "role-play needs a scenario; choose one from the list".into(),
                ));
            }
        };
        let target = lang::name(&ctx.profile.target_language);
        let native = lang::name(&ctx.profile.native_language);
        let scene = format!(
            "Scene: {} Setting: {} The learner plays {}; you play {}. The learner's goal: {}",
            scenario.title,
            scenario.setting,
            scenario.learner_role,
            scenario.tutor_role,
            scenario.goal
        );
        let simple = if ctx.profile.level <= CefrLevel::A2 {
            " Use short sentences and common words; if the learner is stuck, offer two choices."
        } else {
            ""
        };
        let (system, focus) = if is_end(&ctx) {
            let debrief_language = if ctx.profile.level <= CefrLevel::B1 {
                native
            } else {
                target
            };
            (
                format!(
                    "You are a language coach. The role-play is over; step out of your role. \
                     {scene} {} In {debrief_language}, debrief the learner: say whether they \
                     reached the goal, two things they did well, and up to three phrases they \
                     should learn, each with an example.",
                    prompt::learner_summary(&ctx)
                ),
                "The scene is over: also set \"goal_met\" (true or false) for the whole \
                 conversation and write a short \"debrief\" of it.",
            )
        } else {
            (
                format!(
                    "You are an actor in a language-learning role-play. {scene} Stay in \
                     character and answer only in {target}, as {} would, in one to three \
                     sentences, moving the scene towards the learner's goal without reaching it \
                     for them.{simple} Never correct the learner; never mention that this is an \
                     exercise. {}",
                    scenario.tutor_role,
                    prompt::learner_summary(&ctx)
                ),
                "Judge the message as something said by the learner's character in the scene.",
            )
        };
        Ok(TurnPlan {
            reply: prompt::reply(prompt::messages(system, &ctx), 0.8, 350),
            analysis: Some(analysis::request(&ctx, focus)),
        })
    }

    fn review_turn(
        ctx: TurnContext,
        reply: String,
        analysis: Option<String>,
    ) -> Result<TurnReview, PluginError> {
        let ending = is_end(&ctx);
        let mut review = Analysis::salvage(analysis.as_deref(), &ctx).into_review();
        if ending {
            // The reply of the last turn is itself the debrief; the analysis's own debrief
            // (if the model wrote one) is the more structured of the two.
            if review.debrief.is_none() {
                review.debrief = Some(reply);
            }
        } else if review.debrief.take().is_some() {
            review
                .dropped
                .push("debrief: the scene is still running".into());
        }
        Ok(review)
    }
}

penpal_host_api::export_tutor!(Stage);
