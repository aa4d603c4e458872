//! One plugin host, four worlds: every kind loads, is checked and is called through the same
//! path, each proven by a test guest; a tutor built against `penpal:plugin@0.1` runs beside the
//! 0.2 ones, on a host and in a server.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::common::*;
use penpal::billing::provider::{
    CheckoutRequest, EventKind, Interval, Money, PaymentsClient, SubscriptionStatus, Webhook,
};
use penpal::lms::platform::{AssignmentLink, CourseRole, Grade, GradingProgress, LmsClient};
use penpal::notify::notifier::{Category, Notification, NotifierClient};
use penpal::plugins::{
    CallError, Capabilities, Kind, Package, PluginConfig, PluginError, PluginHost, Secret,
    Services, WitVersion,
};
use penpal::tutoring::tutor::{CefrLevel, ChatMode, CorrectionIntensity, ErrorCategory};
use serde_json::{Value, json};

/// Installs the guest `name`, granting everything its manifest asks for.
fn install_granted(host: &PluginHost, name: &str) {
    let package = Package::open(&guest(name)).unwrap();
    let grants = package.manifest.capabilities.clone();
    host.install(host.load(&package, &grants).unwrap());
}

fn host_with_secret() -> Arc<PluginHost> {
    let config = PluginConfig {
        settings: BTreeMap::new(),
        secrets: BTreeMap::from([("webhook_secret".to_string(), Secret::new("whsec_42"))]),
    };
    let services = Services {
        config: Arc::new(HashMap::from([("payer".to_string(), config)])),
        ..Services::default()
    };
    host_with(penpal::plugins::Limits::default(), services)
}

fn plugin_error(e: CallError) -> PluginError {
    match e {
        CallError::Plugin { error, .. } => error,
        other => panic!("expected the plugin's own error, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_provider_checks_out_and_verifies_webhooks_with_its_granted_secret() {
    let host = host_with_secret();
    install_granted(&host, "payer");
    let payments = PaymentsClient::new(host.clone());
    let eur = |amount| Money {
        amount_minor: amount,
        currency: "EUR".into(),
    };

    let request = CheckoutRequest {
        customer_id: "u1".into(),
        provider_customer_id: None,
        customer_email: "ana@example.com".into(),
        plan_id: "yearly".into(),
        price: eur(20_000),
        interval: Some(Interval::Year),
        trial_days: 14,
        coupon: None,
        locale: "fr".into(),
        success_url: "https://penpal.test/ok".into(),
        cancel_url: "https://penpal.test/cancel".into(),
        idempotency_key: "k1".into(),
    };
    let checkout = within(10, "checkout", payments.create_checkout("payer", &request))
        .await
        .unwrap();
    assert_eq!(checkout.id, "cs_k1");
    assert_eq!(
        checkout.url,
        "https://pay.test/checkout/yearly?customer=u1&amount=20000EUR&every=year&trial=14"
    );

    let body = json!({"id": "evt_1", "type": "invoice.paid", "customer": "u1",
                      "subscription": "sub_9", "amount": 20000});
    let hook = |signature: &str| Webhook {
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-test-signature".into(), signature.into()),
        ],
        body: serde_json::to_vec(&body).unwrap(),
        received_at: 1_700_000_000,
    };
    let events = payments
        .verify_webhook("payer", &hook("whsec_42"))
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!((e.id.as_str(), e.kind), ("evt_1", EventKind::InvoicePaid));
    assert_eq!(e.customer_id.as_deref(), Some("u1"));
    assert_eq!(e.amount.as_ref().map(|m| m.amount_minor), Some(20_000));
    assert_eq!(e.subscription.as_ref().unwrap().id, "sub_9");
    assert_eq!(e.occurred_at, 1_700_000_000);

    assert!(matches!(
        plugin_error(
            payments
                .verify_webhook("payer", &hook("forged"))
                .await
                .unwrap_err()
        ),
        PluginError::Denied(_)
    ));
    let cancelled = payments
        .cancel_subscription("payer", "sub_9", false, "k2")
        .await
        .unwrap();
    assert_eq!(cancelled.status, SubscriptionStatus::Canceled);
    let scheduled = payments
        .cancel_subscription("payer", "sub_9", true, "k3")
        .await
        .unwrap();
    assert!(scheduled.cancel_at_period_end);
    let moved = payments
        .change_plan(
            "payer",
            "sub_9",
            "monthly",
            &eur(2_000),
            Interval::Month,
            "k4",
        )
        .await
        .unwrap();
    assert_eq!(moved.plan_id.as_deref(), Some("monthly"));
    assert!(matches!(
        plugin_error(
            payments
                .refund("payer", "pay_1", Some(&eur(-5)), "k5")
                .await
                .unwrap_err()
        ),
        PluginError::InvalidInput(_)
    ));
    assert!(payments.refund("payer", "pay_1", None, "k6").await.is_ok());

    // The same counters as every other world.
    let health = host.get("payer").unwrap().status().health;
    assert_eq!(health.calls, 8, "{health:?}");
    assert_eq!(health.guest_errors, 2, "{health:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_provider_without_its_secret_refuses_every_webhook() {
    // Installed without the grant: the secret never reaches it, so nothing verifies.
    let host = host_with_secret();
    install(&host, &guest("payer"));
    let payments = PaymentsClient::new(host.clone());
    let hook = Webhook {
        headers: vec![("x-test-signature".into(), "whsec_42".into())],
        body: br#"{"id":"evt_1","type":"invoice.paid"}"#.to_vec(),
        received_at: 1,
    };
    let error = plugin_error(payments.verify_webhook("payer", &hook).await.unwrap_err());
    assert!(
        matches!(&error, PluginError::Denied(m) if m.contains("webhook_secret")),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notifier_delivers_once_per_message_id_and_reports_an_outage_as_retryable() {
    let host = host();
    install_granted(&host, "courier");
    let notifier = NotifierClient::new(host.clone());
    let message = |id: &str, recipient: &str| Notification {
        id: id.into(),
        topic: "password-reset".into(),
        category: Category::Security,
        recipient: recipient.into(),
        locale: "fr".into(),
        subject: "Réinitialiser votre mot de passe".into(),
        text_body: "Suivez ce lien".into(),
        html_body: None,
        unsubscribe_url: None,
    };
    let first = notifier
        .send("courier", &message("m1", "device-1"))
        .await
        .unwrap();
    assert_eq!(first.provider_id.as_deref(), Some("new:m1:security"));
    let again = notifier
        .send("courier", &message("m1", "device-1"))
        .await
        .unwrap();
    assert_eq!(again.provider_id.as_deref(), Some("again:m1:security"));
    assert!(matches!(
        plugin_error(
            notifier
                .send("courier", &message("m2", "down"))
                .await
                .unwrap_err()
        ),
        PluginError::Unavailable(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_lms_plugin_reads_launches_and_shapes_grades() {
    let host = host();
    install_granted(&host, "campus");
    let lms = LmsClient::new(host.clone());
    let platform = lms.platform("campus").await.unwrap();
    assert_eq!(
        (platform.id.as_str(), platform.name.as_str()),
        ("campus", "Campus LMS")
    );

    let lti = "https://purl.imsglobal.org/spec/lti/claim/";
    let claims = json!({
        "sub": "u-77", "email": "prof@school.test", "name": "Prof",
        format!("{lti}roles"): ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
        format!("{lti}context"): {"id": "c-1", "title": "Français B1"},
        format!("{lti}resource_link"): {"id": "rl-1"},
        "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
            "lineitems": "https://lms.test/c-1/lineitems",
            "scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/score"]
        }
    });
    let launch = lms
        .read_launch("campus", &claims.to_string())
        .await
        .unwrap();
    assert_eq!(launch.user_id, "u-77");
    assert_eq!(launch.role, CourseRole::Teacher);
    assert_eq!(launch.context_title.as_deref(), Some("Français B1"));
    assert_eq!(launch.resource_link_id.as_deref(), Some("rl-1"));
    let grades = launch.grades.unwrap();
    assert_eq!(
        grades.line_items.as_deref(),
        Some("https://lms.test/c-1/lineitems")
    );
    assert_eq!(grades.scopes.len(), 1);

    let no_sub = json!({format!("{lti}context"): {"id": "c-1"}});
    assert!(matches!(
        plugin_error(lms.read_launch("campus", &no_sub.to_string()).await.unwrap_err()),
        PluginError::InvalidInput(m) if m.contains("sub")
    ));

    let grade = Grade {
        user_id: "u-1".into(),
        score_given: 3.0,
        score_maximum: 4.0,
        comment: Some("Bien".into()),
        timestamp: 1_700_000_000,
        grading: GradingProgress::FullyGraded,
        completed: true,
    };
    let score: Value = serde_json::from_str(&lms.score("campus", &grade).await.unwrap()).unwrap();
    assert_eq!(score["scoreGiven"], 3.0);
    assert_eq!(score["gradingProgress"], "FullyGraded");
    assert_eq!(score["activityProgress"], "Completed");
    let link = AssignmentLink {
        assignment_id: "a-1".into(),
        title: "Au café".into(),
        url: "https://penpal.test/lti/a-1".into(),
        score_maximum: 4.0,
    };
    let item: Value =
        serde_json::from_str(&lms.deep_link_item("campus", &link).await.unwrap()).unwrap();
    assert_eq!(item["custom"]["assignment"], "a-1");
    let roster = lms
        .read_roster(
            "campus",
            &json!({"members": [
                {"user_id": "u-1", "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]},
                {"user_id": "u-2", "status": "Inactive", "roles": []}
            ]})
            .to_string(),
        )
        .await
        .unwrap();
    assert_eq!(roster.len(), 2);
    assert_eq!(
        (roster[0].role, roster[0].active),
        (CourseRole::Learner, true)
    );
    assert_eq!(
        (roster[1].role, roster[1].active),
        (CourseRole::Other, false)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_asking_a_plugin_of_another_world_gets_a_clear_error() {
    let host = host();
    install_granted(&host, "courier");
    install(&host, &plugin("tutor"));
    let wrong = tutors(&host)
        .plan_turn("courier", &turn("Salut", CefrLevel::B1, ChatMode::Tutor))
        .await
        .unwrap_err();
    assert!(matches!(
        wrong,
        CallError::WrongWorld {
            wanted: Kind::Tutor,
            ..
        }
    ));
    assert_eq!(
        wrong.to_string(),
        "plugin `courier` is a notifier@0.2 plugin, not a tutor plugin"
    );
    let wrong = PaymentsClient::new(host.clone())
        .create_portal("tutor", "cus_1", "https://penpal.test")
        .await
        .unwrap_err();
    assert_eq!(
        wrong.to_string(),
        "plugin `tutor` is a tutor@0.2 plugin, not a payment-provider plugin"
    );
    // A component exporting another world than its manifest says never loads.
    let package = Package::open(&guest("notutor")).unwrap();
    let err = host
        .load(&package, &Capabilities::default())
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains(
            "the manifest says kind = \"tutor\", but the component implements the notifier world"
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tutor_built_for_0_1_runs_unchanged_beside_0_2_tutors() {
    let host = host();
    install(&host, &guest("legacy-tutor"));
    install(&host, &plugin("tutor"));
    assert_eq!(
        host.get("legacy-tutor").unwrap().world.wit,
        WitVersion::V0_1
    );
    assert_eq!(host.get("tutor").unwrap().world.wit, WitVersion::V0_2);
    let client = tutors(&host);

    let mut ctx = turn(
        "Je voudrais deux croissant",
        CefrLevel::B2,
        ChatMode::RolePlay,
    );
    ctx.profile.correction_intensity = CorrectionIntensity::Gentle;
    ctx.history = vec![
        penpal::plugins::types::ChatMessage {
            role: penpal::plugins::types::Role::Assistant,
            content: "Bonjour !".into(),
        },
        penpal::plugins::types::ChatMessage {
            role: penpal::plugins::types::Role::User,
            content: "Bonjour".into(),
        },
    ];
    let (old, new) = tokio::join!(
        client.plan_turn("legacy-tutor", &ctx),
        client.plan_turn("tutor", &ctx)
    );
    let old = old.unwrap();
    let system = &old.reply.messages[0].content;
    assert_eq!(
        system,
        "legacy 0.1 tutor at level B2; mode=ChatMode::RolePlay intensity=CorrectionIntensity::Gentle native=en target=fr history=2 turn=3"
    );
    // The history came through in order, then the message.
    let said: Vec<&str> = old.reply.messages[1..]
        .iter()
        .map(|m| m.content.as_str())
        .collect();
    assert_eq!(said, ["Bonjour !", "Bonjour", "Je voudrais deux croissant"]);
    assert_eq!(old.reply.max_tokens, Some(50));
    assert!(new.unwrap().reply.messages[0].content.contains("B2"));

    let review = client
        .review_turn("legacy-tutor", &ctx, "Voilà !", None)
        .await
        .unwrap();
    assert_eq!(review.corrections[0].category, ErrorCategory::WordOrder);
    assert_eq!(
        review.corrections[0].corrected,
        "Je voudrais deux croissant !"
    );
    assert_eq!(review.vocabulary[0].example.as_deref(), Some("Voilà !"));
    let level = review.level.unwrap();
    assert_eq!((level.observed, level.confidence), (CefrLevel::B2, 0.5));

    let scenarios = client.scenarios("legacy-tutor").await.unwrap();
    assert_eq!(scenarios[0].id, "bakery");
    let mut empty = ctx.clone();
    empty.message.clear();
    assert!(matches!(
        plugin_error(
            client
                .review_turn("legacy-tutor", &empty, "", None)
                .await
                .unwrap_err()
        ),
        PluginError::InvalidInput(_)
    ));
}

#[actix_rt::test]
async fn a_server_runs_a_0_1_tutor_and_a_0_2_tutor_side_by_side() {
    let data = tempfile::tempdir().unwrap();
    let mut args = serve_args(data.path(), None);
    args.plugins.plugin_dirs.push(guest("legacy-tutor"));
    let server = start(args).await;
    let http = http();
    let token = new_learner(&server.url(""), "B2").await;
    let send = |method: &str, path: &str, body: Value| {
        http.request(method.parse().unwrap(), server.url(path))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };

    let tutors: Value = http
        .get(server.url("/v1/tutors"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = tutors
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"legacy-tutor") && names.contains(&"tutor"),
        "{names:?}"
    );
    let legacy = tutors
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "legacy-tutor")
        .unwrap();
    assert_eq!(legacy["scenarios"][0]["id"], "bakery");

    for personality in ["legacy-tutor", "tutor"] {
        let conv: Value = send(
            "POST",
            "/v1/conversations",
            json!({"mode": "tutor", "personality": personality}),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        let id = conv["id"].as_str().unwrap_or_else(|| panic!("{conv}"));
        let turn = within(
            30,
            "a whole-reply turn",
            send(
                "POST",
                &format!("/v1/conversations/{id}/messages"),
                json!({"text": "Je va au cinema"}),
            ),
        )
        .await
        .unwrap();
        assert_eq!(turn.status(), 201);
        let turn: Value = turn.json().await.unwrap();
        let reply = turn["reply"]["text"].as_str().unwrap();
        assert!(reply.contains("level B2"), "{personality}: {turn}");
        if personality == "legacy-tutor" {
            assert_eq!(turn["corrections"][0]["category"], "word-order", "{turn}");
            assert_eq!(
                turn["corrections"][0]["corrected"], "Je va au cinema !",
                "{turn}"
            );
        }
    }
    server.stop().await;
}
