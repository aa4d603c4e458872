//! Billing, end to end: plans from the operator's file, the limit a free learner meets before
//! a message is stored, an operator's complimentary plan lifting it.

use crate::common::*;
use serde_json::{Value, json};

/// A signed-in client of one server.
struct Client {
    base: String,
    token: Option<String>,
}

impl Client {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = http().request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn conversation(&self, mode: &str) -> String {
        let mut body = json!({"mode": mode});
        if mode == "role-play" {
            body["scenario"] = json!("restaurant");
        }
        let (status, conv) = self.call("POST", "/v1/conversations", Some(body)).await;
        assert_eq!(status, 201, "{conv}");
        conv["id"].as_str().unwrap().to_string()
    }

    async fn say(&self, conv: &str, text: &str) -> (u16, Value) {
        self.call(
            "POST",
            &format!("/v1/conversations/{conv}/messages"),
            Some(json!({"text": text})),
        )
        .await
    }
}

const PLANS: &str = r#"
[billing.plans.free]
names = { en = "Free", fr = "Gratuit" }
turns_per_day = 2
modes = ["tutor", "conversation"]

[billing.plans.premium]
names = { en = "Premium", fr = "Premium" }
interval = "month"
trial_days = 30
prices = { EUR = 2000, USD = 2200 }
"#;

#[actix_rt::test]
async fn a_free_learner_meets_the_limit_before_the_message_is_stored_and_a_grant_lifts_it() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("penpal.toml");
    std::fs::write(&file, PLANS).unwrap();
    let mut args = serve_args(data.path(), None);
    args.plugins.config = Some(file);
    let db = penpal::store::Db::connect("mem://", None).await.unwrap();
    let server = start_on(args, db.clone()).await;
    let base = server.url("");
    let visitor = Client {
        base: base.clone(),
        token: None,
    };

    // The pricing page's data: public, in the asked currency, free first.
    let (status, list) = visitor
        .call("GET", "/v1/billing/plans?currency=usd&lang=fr", None)
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        (&list["billing"], &list["currency"]),
        (&json!(true), &json!("USD"))
    );
    assert_eq!(list["plans"][0]["id"], "free");
    assert_eq!(list["plans"][0]["name"], "Gratuit");
    assert_eq!(list["plans"][0]["turns_per_day"], 2);
    assert_eq!(
        list["plans"][1]["price"],
        json!({"amount_minor": 2200, "currency": "USD"})
    );
    assert_eq!(list["plans"][1]["trial_days"], 30);
    for bad in ["currency=EURO", "lang=true"] {
        let (status, err) = visitor
            .call("GET", &format!("/v1/billing/plans?{bad}"), None)
            .await;
        assert_eq!(status, 422, "{bad} → {err}");
    }
    let (status, err) = visitor
        .call("GET", "/v1/billing/plans?currency=JPY", None)
        .await;
    assert_eq!(status, 422, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("EUR, USD"),
        "{err}"
    );

    let ana = Client {
        base: base.clone(),
        token: Some(new_learner(&base, "B1").await),
    };
    let (_, mine) = ana.call("GET", "/v1/billing/subscription", None).await;
    assert_eq!(mine["plan"]["id"], "free", "{mine}");
    assert_eq!(mine["source"], json!({"kind": "free"}));

    let conv = ana.conversation("tutor").await;
    for text in ["Bonjour !", "Je suis allé au marché."] {
        assert_eq!(ana.say(&conv, text).await.0, 201);
    }
    let (status, err) = ana.say(&conv, "Une troisième phrase.").await;
    assert_eq!(status, 402, "{err}");
    assert_eq!(err["error"]["code"], "plan_limit");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("today's 2 messages"),
        "{err}"
    );
    let (_, messages) = ana
        .call("GET", &format!("/v1/conversations/{conv}/messages"), None)
        .await;
    let texts: Vec<&str> = messages["items"]
        .as_array()
        .unwrap_or_else(|| messages.as_array().unwrap())
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert!(
        !texts.contains(&"Une troisième phrase."),
        "a refused message is not stored: {texts:?}"
    );
    let (_, mine) = ana.call("GET", "/v1/billing/subscription", None).await;
    assert_eq!(mine["turns_today"], 2);

    // Role-play is not in the free plan: opening one is refused, saying what to do.
    let (status, err) = ana
        .call(
            "POST",
            "/v1/conversations",
            Some(json!({"mode": "role-play", "scenario": "restaurant"})),
        )
        .await;
    assert_eq!(status, 402, "{err}");
    assert_eq!(err["error"]["code"], "plan_limit");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Role-play"),
        "{err}"
    );

    // An operator gives Ana premium for 30 days: the limits are gone at the next message.
    let ops = Client {
        base: base.clone(),
        token: Some(operator_token(server.addr, &db).await),
    };
    for (body, status) in [
        (json!({"email": "ana@example.com", "plan": "gold"}), 422),
        (
            json!({"email": "ana@example.com", "plan": "premium", "days": 0}),
            422,
        ),
        (
            json!({"email": "nobody@example.com", "plan": "premium"}),
            404,
        ),
    ] {
        assert_eq!(
            ops.call("POST", "/v1/admin/billing/grants", Some(body.clone()))
                .await
                .0,
            status,
            "{body}"
        );
    }
    assert_eq!(
        ana.call(
            "POST",
            "/v1/admin/billing/grants",
            Some(json!({"email": "ana@example.com", "plan": "premium"}))
        )
        .await
        .0,
        403,
        "learners cannot grant plans"
    );
    let (status, granted) = ops
        .call(
            "POST",
            "/v1/admin/billing/grants",
            Some(json!({"email": "ana@example.com", "plan": "premium", "days": 30})),
        )
        .await;
    assert_eq!(status, 201, "{granted}");
    assert_eq!(granted["plan"]["id"], "premium");
    assert_eq!(granted["source"]["kind"], "complimentary");
    assert!(granted["until"].as_i64().unwrap() > penpal::store::now_ms());
    assert_eq!(ana.say(&conv, "Une troisième phrase.").await.0, 201);
    let scene = ana.conversation("role-play").await;
    assert_eq!(ana.say(&scene, "Une table pour deux.").await.0, 201);

    let (_, export) = ana.call("GET", "/v1/me/export", None).await;
    assert_eq!(export["plans"][0]["plan"], "premium", "{export}");
}

#[actix_rt::test]
async fn without_a_billing_section_nothing_is_limited() {
    let data = tempfile::tempdir().unwrap();
    let db = penpal::store::Db::connect("mem://", None).await.unwrap();
    let server = start_on(serve_args(data.path(), None), db.clone()).await;
    let base = server.url("");
    let ana = Client {
        base: base.clone(),
        token: Some(new_learner(&base, "B1").await),
    };
    let (_, list) = ana.call("GET", "/v1/billing/plans", None).await;
    assert_eq!(list["billing"], false);
    let (_, mine) = ana.call("GET", "/v1/billing/subscription", None).await;
    assert_eq!(
        (&mine["plan"], &mine["source"]),
        (&Value::Null, &json!({"kind": "unlimited"}))
    );
    let scene = ana.conversation("role-play").await;
    assert_eq!(ana.say(&scene, "Une table pour deux.").await.0, 201);
    let ops = Client {
        base,
        token: Some(operator_token(server.addr, &db).await),
    };
    let (status, err) = ops
        .call(
            "POST",
            "/v1/admin/billing/grants",
            Some(json!({"email": "ana@example.com", "plan": "premium"})),
        )
        .await;
    assert_eq!(status, 409, "{err}");
}

/// A server taking payments through the `stripe` plugin, against the Stripe simulator.
async fn with_stripe(
    data: &std::path::Path,
    plans: &str,
) -> (
    Running,
    penpal::store::Db,
    penpal::billing::simulator::Simulator,
    Sink,
) {
    use penpal::billing::simulator::Simulator;
    let sim = Simulator::start("sk_test_penpal", "whsec_sim", "http://127.0.0.1:9/")
        .await
        .unwrap();
    let port = sim.addr.port();
    let file = data.join("penpal.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[billing]
provider = "stripe"
{plans}
[plugins.stripe]
grant = {{ http = ["http://localhost:{port}"], secrets = ["api_key", "webhook_secret"] }}
settings = {{ api_base = "http://localhost:{port}" }}
secrets = {{ api_key = "sk_test_penpal", webhook_secret = "whsec_sim" }}
"#
        ),
    )
    .unwrap();
    let sink = Sink::start();
    let mut args = serve_args(data, None);
    args.plugins.config = Some(file);
    args.plugins.plugin_allow_networks =
        vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
    args.mail.smtp_url = Some(penpal::plugins::Secret::new(sink.url()));
    args.mail.public_url = Some("https://penpal.test".into());
    let db = penpal::store::Db::connect("mem://", None).await.unwrap();
    let server = start_on(args, db.clone()).await;
    sim.send_to(&server.url("/v1/billing/webhooks/stripe"));
    (server, db, sim, sink)
}

const PAID: &str = r#"
[billing.plans.free]
turns_per_day = 1
[billing.plans.premium]
interval = "month"
prices = { EUR = 2000 }
"#;

async fn plan_of(c: &Client) -> Value {
    c.call("GET", "/v1/billing/subscription", None).await.1
}

/// Waits until `c`'s plan is `id`.
async fn until_plan(c: &Client, id: &str) -> Value {
    within(20, &format!("the plan becomes {id}"), async {
        loop {
            let p = plan_of(c).await;
            if p["plan"]["id"] == id {
                return p;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
}

#[actix_rt::test]
async fn a_learner_at_the_limit_pays_through_stripe_and_the_webhook_lifts_it() {
    let data = tempfile::tempdir().unwrap();
    let (server, _db, sim, sink) = with_stripe(data.path(), PAID).await;
    let base = server.url("");
    let ana = Client {
        base: base.clone(),
        token: Some(new_learner(&base, "B1").await),
    };
    let conv = ana.conversation("tutor").await;
    assert_eq!(ana.say(&conv, "Bonjour !").await.0, 201);
    assert_eq!(ana.say(&conv, "Encore une phrase.").await.0, 402);
    let (status, err) = ana.call("POST", "/v1/billing/portal", None).await;
    assert_eq!(status, 404, "nothing to manage before paying: {err}");
    for (body, status) in [
        (json!({"plan": "free"}), 422),
        (json!({"plan": "premium", "currency": "USD"}), 422),
    ] {
        assert_eq!(
            ana.call("POST", "/v1/billing/checkout", Some(body.clone()))
                .await
                .0,
            status,
            "{body}"
        );
    }

    let (status, page) = ana
        .call(
            "POST",
            "/v1/billing/checkout",
            Some(json!({"plan": "premium"})),
        )
        .await;
    assert_eq!(status, 201, "{page}");
    let url = page["url"].as_str().unwrap();
    assert!(url.starts_with(&sim.url()), "{url}");
    let session = url.rsplit('/').next().unwrap();
    let sub = sim
        .complete_checkout(session)
        .await
        .expect("a subscription");
    let mine = until_plan(&ana, "premium").await;
    assert_eq!(
        mine["source"],
        json!({"kind": "subscription", "id": format!("stripe:{sub}")})
    );
    assert_eq!(ana.say(&conv, "Encore une phrase.").await.0, 201);
    let receipt = mail(&sink, "ana@example.com", "Your Penpal receipt").await;
    assert!(
        receipt.contains("we received 20.00 EUR for premium"),
        "{receipt}"
    );
    let (status, _) = ana
        .call(
            "POST",
            "/v1/billing/checkout",
            Some(json!({"plan": "premium"})),
        )
        .await;
    assert_eq!(status, 409, "one subscription at a time");
    let (status, portal) = ana.call("POST", "/v1/billing/portal", None).await;
    assert_eq!(status, 201, "{portal}");
    assert!(
        portal["url"].as_str().unwrap().contains("/portal/cus_"),
        "{portal}"
    );

    // A failed renewal keeps access during the provider's retries; cancellation ends it.
    sim.fail_payment(&sub).await.unwrap();
    let failed = mail(
        &sink,
        "ana@example.com",
        "Your Penpal payment did not go through",
    )
    .await;
    assert!(failed.contains("20.00 EUR"), "{failed}");
    let mine = plan_of(&ana).await;
    assert_eq!(mine["subscription"]["status"], "past_due", "{mine}");
    assert_eq!(mine["plan"]["id"], "premium", "grace while past due");
    // The provider's retry goes through: active again, with a second receipt.
    sim.renew(&sub).await.unwrap();
    within(20, "the subscription recovers", async {
        while plan_of(&ana).await["subscription"]["status"] != "active" {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;
    let (_, paid) = ana.call("GET", "/v1/billing/invoices", None).await;
    assert_eq!(paid.as_array().unwrap().len(), 2, "{paid}");
    sim.update(&sub, |s| *s.status = "canceled".into())
        .await
        .unwrap();
    until_plan(&ana, "free").await;
    assert_eq!(ana.say(&conv, "Et maintenant ?").await.0, 402);
}

#[actix_rt::test]
async fn only_webhooks_signed_now_with_the_secret_are_applied_once_and_in_order() {
    use penpal::billing::simulator::Delivery;
    let data = tempfile::tempdir().unwrap();
    let (server, db, sim, _sink) = with_stripe(data.path(), PAID).await;
    let base = server.url("");
    let ana = Client {
        base: base.clone(),
        token: Some(new_learner(&base, "B1").await),
    };
    let (_, me) = ana.call("GET", "/v1/me", None).await;
    let user = me["id"].as_str().unwrap();
    let subscription = |status: &str| {
        json!({"id": "sub_hand", "object": "subscription", "customer": "cus_hand", "status": status,
               "metadata": {"penpal_customer": user, "penpal_plan": "premium"},
               "cancel_at_period_end": false, "items": {"data": [{"current_period_end": 1_900_000_000u64}]}})
    };
    let active = sim.event("customer.subscription.created", subscription("active"));
    let now = (penpal::store::now_ms() / 1000) as u64;
    for (how, why) in [
        (
            Delivery {
                secrets: Some(vec!["whsec_wrong".into()]),
                ..Delivery::default()
            },
            "another secret",
        ),
        (
            Delivery {
                timestamp: Some(now - 400),
                ..Delivery::default()
            },
            "older than 300 s",
        ),
        (
            Delivery {
                tamper: true,
                ..Delivery::default()
            },
            "altered after signing",
        ),
        (
            Delivery {
                body: Some(active.to_string()[..40].to_string()),
                ..Delivery::default()
            },
            "truncated",
        ),
        (
            Delivery {
                body: Some(serde_json::to_string_pretty(&active).unwrap()),
                ..Delivery::default()
            },
            "the same JSON, re-encoded",
        ),
    ] {
        assert_eq!(sim.deliver(&active, &how).await, 400, "{why}");
    }
    let unsigned = http()
        .post(server.url("/v1/billing/webhooks/stripe"))
        .body(active.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 400, "no signature");
    assert_eq!(plan_of(&ana).await["plan"]["id"], "free", "nothing changed");
    let stored: Vec<Value> = db
        .rows("SELECT * FROM billing_event", json!({}))
        .await
        .unwrap();
    assert!(
        stored.is_empty(),
        "nothing unverified is stored: {stored:?}"
    );

    // During a rotation Stripe signs with both secrets: ours is among them. Five deliveries of
    // one event apply it once.
    let rotated = Delivery {
        secrets: Some(vec!["whsec_old".into(), "whsec_sim".into()]),
        ..Delivery::default()
    };
    for _ in 0..5 {
        assert_eq!(sim.deliver(&active, &rotated).await, 200);
    }
    assert_eq!(plan_of(&ana).await["plan"]["id"], "premium");
    let stored: Vec<Value> = db
        .rows("SELECT status FROM billing_event", json!({}))
        .await
        .unwrap();
    assert_eq!(stored, vec![json!({"status": "applied"})]);

    // A newer cancellation, then an older update arriving late: the late one changes nothing.
    sim.skew(60);
    let canceled = sim.event("customer.subscription.deleted", subscription("canceled"));
    sim.skew(30);
    let late = sim.event("customer.subscription.updated", subscription("active"));
    assert_eq!(sim.deliver(&canceled, &Delivery::default()).await, 200);
    assert_eq!(sim.deliver(&late, &Delivery::default()).await, 200);
    assert_eq!(plan_of(&ana).await["plan"]["id"], "free");
    let held: Vec<Value> = db
        .rows("SELECT VALUE status FROM subscription", json!({}))
        .await
        .unwrap();
    assert_eq!(held, vec![json!("canceled")]);
    let (_, export) = ana.call("GET", "/v1/me/export", None).await;
    assert_eq!(export["subscriptions"][0]["status"], "canceled", "{export}");

    // Operators see every event with what became of it.
    let ops = Client {
        base,
        token: Some(operator_token(server.addr, &db).await),
    };
    let (status, events) = ops.call("GET", "/v1/admin/billing/events", None).await;
    assert_eq!(status, 200, "{events}");
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["provider_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "customer.subscription.updated",
            "customer.subscription.deleted",
            "customer.subscription.created"
        ]
    );
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["status"] == "applied" && e["user"] == user)
    );
    assert_eq!(
        ops.call("GET", "/v1/admin/billing/events?status=lost", None)
            .await
            .0,
        422
    );
}

#[actix_rt::test]
async fn penpal_simulate_stripe_serves_checkouts_to_the_right_key_only() {
    use std::io::BufRead;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_penpal"))
        .args([
            "simulate-stripe",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--api-key",
            "sk_test_cli",
        ])
        .env("PENPAL_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(
        first.contains(&format!(":{port}")) && first.contains("charges nothing"),
        "{first}"
    );
    let session = |key: &'static str| {
        http()
            .post(format!("http://127.0.0.1:{port}/v1/checkout/sessions"))
            .bearer_auth(key)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                "mode=subscription&success_url=http%3A%2F%2Fx%2Fok&cancel_url=http%3A%2F%2Fx%2Fno",
            )
            .send()
    };
    assert_eq!(session("sk_wrong").await.unwrap().status(), 401);
    let ok = session("sk_test_cli").await.unwrap();
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert!(
        body["url"].as_str().unwrap().contains("/checkout/cs_"),
        "{body}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

const TRIAL: &str = r#"
[billing.plans.free]
turns_per_day = 1
[billing.plans.premium]
names = { en = "Premium", fr = "Premium" }
interval = "month"
trial_days = 30
prices = { EUR = 2000 }
"#;

#[actix_rt::test]
async fn a_trial_is_reminded_cancels_at_period_end_resumes_and_ends_with_the_account() {
    let data = tempfile::tempdir().unwrap();
    let (server, _db, sim, sink) = with_stripe(data.path(), TRIAL).await;
    let base = server.url("");
    let ana = Client {
        base: base.clone(),
        token: Some(new_learner(&base, "B1").await),
    };
    let (_, page) = ana
        .call(
            "POST",
            "/v1/billing/checkout",
            Some(json!({"plan": "premium"})),
        )
        .await;
    let session = page["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let sub = sim.complete_checkout(&session).await.unwrap();
    let mine = until_plan(&ana, "premium").await;
    assert_eq!(mine["subscription"]["status"], "trialing", "{mine}");
    assert!(
        mine["subscription"]["trial_end"].as_i64().unwrap()
            > penpal::store::now_ms() / 1000 + 29 * 86_400
    );

    // Three days before its end, a reminder says when and what it will cost.
    sim.trial_will_end(&sub).await.unwrap();
    let reminder = mail(&sink, "ana@example.com", "Your Penpal trial ends soon").await;
    assert!(
        reminder.contains("Your Premium trial ends on"),
        "{reminder}"
    );
    assert!(reminder.contains("20.00 EUR"), "{reminder}");

    // Cancel at the period's end: access stays; resume: renewal is back.
    let (status, changed) = ana
        .call("POST", "/v1/billing/subscription/cancel", Some(json!({})))
        .await;
    assert_eq!(status, 202, "{changed}");
    assert_eq!(changed["cancel_at_period_end"], true);
    within(20, "the cancellation is held", async {
        while plan_of(&ana).await["subscription"]["cancel_at_period_end"] != true {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;
    assert_eq!(plan_of(&ana).await["plan"]["id"], "premium");
    let (status, changed) = ana
        .call("POST", "/v1/billing/subscription/resume", None)
        .await;
    assert_eq!(
        (status, &changed["cancel_at_period_end"]),
        (202, &json!(false))
    );
    // The provider's webhook follows its answer.
    within(20, "the resumption is held", async {
        while plan_of(&ana).await["subscription"]["cancel_at_period_end"] != false {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;

    // A trial that ends without a card pauses: the learner is back on the free plan.
    sim.update(&sub, |s| *s.status = "paused".into())
        .await
        .unwrap();
    let mine = until_plan(&ana, "free").await;
    assert_eq!(mine["subscription"]["status"], "paused");
    // A second checkout has no trial: one per account.
    let (status, _) = ana
        .call(
            "POST",
            "/v1/billing/checkout",
            Some(json!({"plan": "premium"})),
        )
        .await;
    assert_eq!(status, 201);

    // Deleting the account cancels the subscription at the provider first.
    sim.update(&sub, |s| *s.status = "active".into())
        .await
        .unwrap();
    until_plan(&ana, "premium").await;
    let (status, _) = ana
        .call(
            "DELETE",
            "/v1/me",
            Some(json!({"password": "correct horse battery"})),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(sim.status_of(&sub).as_deref(), Some("canceled"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_racing_redemptions_of_a_ten_use_coupon_take_exactly_ten() {
    use penpal::billing::coupons::{self, Coupon, Refused};
    let db = penpal::store::Db::connect("mem://", None).await.unwrap();
    let coupon: Coupon = serde_json::from_value(
        json!({"code": "TEN", "percent_off": 50, "duration": "once", "max_redemptions": 10}),
    )
    .unwrap();
    assert!(coupons::create(&db, &coupon).await.unwrap());
    // No lock of penpal's: fifty transactions race on the database itself, as fifty nodes would.
    let tries = (0..50).map(|i| {
        let db = db.clone();
        tokio::spawn(async move {
            coupons::redeem(&db, "ten", &format!("u{i}"), "premium", 2000, "EUR", true).await
        })
    });
    let mut won = 0;
    let mut exhausted = 0;
    for t in tries {
        match t.await.unwrap().unwrap() {
            Ok(price) => {
                assert_eq!(price, 1000);
                won += 1;
            }
            Err(Refused::Exhausted(_)) => exhausted += 1,
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!((won, exhausted), (10, 40));
    let (_, redeemed) = coupons::find(&db, "TEN").await.unwrap().unwrap();
    assert_eq!(redeemed, 10);
    let uses: Vec<Value> = db
        .rows("SELECT * FROM coupon_redemption", json!({}))
        .await
        .unwrap();
    assert_eq!(uses.len(), 10);
}

#[actix_rt::test]
async fn a_coupon_is_checked_taken_once_and_passed_to_the_provider() {
    let data = tempfile::tempdir().unwrap();
    let (server, db, sim, _sink) = with_stripe(data.path(), PAID).await;
    let base = server.url("");
    let ana = Client {
        base: base.clone(),
        token: Some(new_learner(&base, "B1").await),
    };
    let ops = Client {
        base,
        token: Some(operator_token(server.addr, &db).await),
    };
    let spring = json!({"code": "spring-26", "percent_off": 20, "duration": "repeating", "months": 3,
                        "max_redemptions": 1, "plans": ["premium"]});
    let (status, made) = ops
        .call("POST", "/v1/admin/billing/coupons", Some(spring.clone()))
        .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["coupon"]["code"], "SPRING-26");
    assert_eq!(
        ops.call("POST", "/v1/admin/billing/coupons", Some(spring))
            .await
            .0,
        409
    );
    let (status, err) = ops
        .call(
            "POST",
            "/v1/admin/billing/coupons",
            Some(
                json!({"code": "NOPLAN", "percent_off": 5, "duration": "once", "plans": ["gold"]}),
            ),
        )
        .await;
    assert_eq!(
        (status, &err["error"]["field"]),
        (422, &json!("plans")),
        "{err}"
    );

    let checkout = |coupon: &str| {
        ana.call(
            "POST",
            "/v1/billing/checkout",
            Some(json!({"plan": "premium", "coupon": coupon})),
        )
    };
    let (status, err) = checkout("WINTER").await;
    assert_eq!(
        (status, &err["error"]["field"]),
        (422, &json!("coupon")),
        "{err}"
    );
    let (status, page) = checkout("spring-26").await;
    assert_eq!(status, 201, "{page}");
    let session = page["url"].as_str().unwrap().rsplit('/').next().unwrap();
    let params = sim.session(session).unwrap();
    assert!(
        params.contains(&("discounts[0][promotion_code]".into(), "SPRING-26".into())),
        "{params:?}"
    );
    let (status, err) = checkout("SPRING-26").await;
    assert_eq!(status, 409, "its one use is taken: {err}");
    let (_, list) = ops.call("GET", "/v1/admin/billing/coupons", None).await;
    assert_eq!(list[0]["redeemed"], 1, "{list}");

    // That checkout is abandoned: days later the sweep gives the use back.
    let later = penpal::store::now_ms() + penpal::billing::sweep::ABANDONED_AFTER_MS + 1;
    assert_eq!(
        penpal::billing::coupons::release_stale(&db, later)
            .await
            .unwrap(),
        1
    );
    let (_, list) = ops.call("GET", "/v1/admin/billing/coupons", None).await;
    assert_eq!(list[0]["redeemed"], 0, "{list}");
    // Taken again, and this time paid: a completed checkout keeps its use for good.
    let (status, page) = checkout("SPRING-26").await;
    assert_eq!(status, 201, "{page}");
    let session = page["url"].as_str().unwrap().rsplit('/').next().unwrap();
    sim.complete_checkout(session).await.unwrap();
    until_plan(&ana, "premium").await;
    let later = penpal::store::now_ms() + penpal::billing::sweep::ABANDONED_AFTER_MS + 1;
    assert_eq!(
        penpal::billing::coupons::release_stale(&db, later)
            .await
            .unwrap(),
        0
    );
    let (_, list) = ops.call("GET", "/v1/admin/billing/coupons", None).await;
    assert_eq!(list[0]["redeemed"], 1, "{list}");
}

const MONTHLY_AND_YEARLY: &str = r#"
[billing.plans.free]
turns_per_day = 1
[billing.plans.premium-monthly]
interval = "month"
prices = { EUR = 2000 }
[billing.plans.premium-yearly]
interval = "year"
prices = { EUR = 20000 }
"#;

/// Waits until `c`'s only invoice satisfies `ok`.
async fn until_invoice(c: &Client, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    within(20, what, async {
        loop {
            let (status, list) = c.call("GET", "/v1/billing/invoices", None).await;
            assert_eq!(status, 200, "{list}");
            if let Some(first) = list.get(0)
                && ok(first)
            {
                return first.clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
}

#[actix_rt::test]
async fn payments_are_invoiced_refunded_by_operators_disputed_and_switched_to_yearly() {
    use penpal::billing::simulator::Delivery;
    let data = tempfile::tempdir().unwrap();
    let (server, db, sim, sink) = with_stripe(data.path(), MONTHLY_AND_YEARLY).await;
    let base = server.url("");
    let ana = Client {
        base: base.clone(),
        token: Some(new_learner(&base, "B1").await),
    };
    let (status, list) = ana.call("GET", "/v1/billing/invoices", None).await;
    assert_eq!((status, list), (200, json!([])));
    // Consumers' prices include VAT: the pricing page shows its part for their country.
    let (_, offer) = ana.call("GET", "/v1/billing/plans?country=de", None).await;
    assert_eq!(
        offer["plans"][1]["price"]["tax"],
        json!({"country": "DE", "rate_bp": 1900, "included": true, "tax_minor": 319, "total_minor": 2000}),
        "{offer}"
    );
    let (_, offer) = ana.call("GET", "/v1/billing/plans?country=US", None).await;
    assert!(offer["plans"][1]["price"].get("tax").is_none(), "{offer}");
    assert_eq!(
        ana.call(
            "POST",
            "/v1/billing/checkout",
            Some(json!({"plan": "premium-monthly", "country": "DEU"}))
        )
        .await
        .0,
        422
    );
    let (status, page) = ana
        .call(
            "POST",
            "/v1/billing/checkout",
            Some(json!({"plan": "premium-monthly", "country": "de"})),
        )
        .await;
    assert_eq!(status, 201, "{page}");
    let session = page["url"].as_str().unwrap().rsplit('/').next().unwrap();
    let sub = sim.complete_checkout(session).await.unwrap();
    until_plan(&ana, "premium-monthly").await;
    let invoice = until_invoice(&ana, "the first invoice", |_| true).await;
    let payment = sim.payments().pop().unwrap();
    assert_eq!(invoice["payment_id"], payment);
    assert_eq!(invoice["amount_minor"], 2000);
    assert_eq!(invoice["currency"], "EUR");
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["plan"], "premium-monthly");
    assert_eq!(
        invoice["tax"],
        json!({"country": "DE", "rate_bp": 1900, "amount_minor": 319, "source": "penpal"})
    );
    assert_eq!(plan_of(&ana).await["country"], "DE");

    // Operators see the whole history, and refund part of it, then the rest.
    let ops = Client {
        base: base.clone(),
        token: Some(operator_token(server.addr, &db).await),
    };
    assert_eq!(
        ana.call(
            "GET",
            "/v1/admin/billing/customer?email=ana@example.com",
            None
        )
        .await
        .0,
        403
    );
    let (status, history) = ops
        .call(
            "GET",
            "/v1/admin/billing/customer?email=ana@example.com",
            None,
        )
        .await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["plan"]["plan"]["id"], "premium-monthly");
    assert_eq!(history["subscriptions"][0]["status"], "active");
    assert_eq!(history["invoices"][0]["payment_id"], payment);
    assert_eq!(history["events"].as_array().unwrap().len(), 3, "{history}");
    assert_eq!(
        ops.call(
            "GET",
            "/v1/admin/billing/customer?email=nobody@example.com",
            None
        )
        .await
        .0,
        404
    );
    for (body, status) in [
        (
            json!({"provider": "stripe", "payment_id": "pi_unknown"}),
            404,
        ),
        (
            json!({"provider": "stripe", "payment_id": payment, "amount_minor": 0}),
            422,
        ),
        (
            json!({"provider": "stripe", "payment_id": payment, "amount_minor": 2001}),
            422,
        ),
    ] {
        let (got, err) = ops
            .call("POST", "/v1/admin/billing/refunds", Some(body.clone()))
            .await;
        assert_eq!(got, status, "{body}: {err}");
    }
    assert_eq!(
        ana.call(
            "POST",
            "/v1/admin/billing/refunds",
            Some(json!({"provider": "stripe", "payment_id": payment}))
        )
        .await
        .0,
        403
    );
    let (status, asked) = ops
        .call(
            "POST",
            "/v1/admin/billing/refunds",
            Some(json!({"provider": "stripe", "payment_id": payment, "amount_minor": 500})),
        )
        .await;
    assert_eq!(status, 202, "{asked}");
    let invoice = until_invoice(&ana, "a partial refund", |i| i["refunded_minor"] == 500).await;
    assert_eq!(invoice["status"], "partially_refunded");
    let notice = mail(&sink, "ana@example.com", "Your Penpal refund").await;
    assert!(
        notice.contains(&format!("We refunded 5.00 EUR of your payment {payment}")),
        "{notice}"
    );
    // Without an amount: what is left.
    let (status, asked) = ops
        .call(
            "POST",
            "/v1/admin/billing/refunds",
            Some(json!({"provider": "stripe", "payment_id": payment})),
        )
        .await;
    assert_eq!(
        (status, &asked["amount_minor"]),
        (202, &json!(1500)),
        "{asked}"
    );
    let invoice = until_invoice(&ana, "the whole refund", |i| i["status"] == "refunded").await;
    assert_eq!(invoice["refunded_minor"], 2000);
    let (status, err) = ops
        .call(
            "POST",
            "/v1/admin/billing/refunds",
            Some(json!({"provider": "stripe", "payment_id": payment})),
        )
        .await;
    assert_eq!(status, 409, "{err}");

    // The payer disputes the payment at their bank: it shows on the invoice.
    sim.dispute(&payment).await.unwrap();
    let invoice = until_invoice(&ana, "the dispute", |i| !i["dispute"].is_null()).await;
    assert_eq!(invoice["dispute"]["amount_minor"], 2000);

    // A refund that arrives before its payment waits for it: refused (the provider retries),
    // then applied once the payment is known.
    let customer = history["events"][0]["user"].clone();
    let early = sim.event(
        "charge.refunded",
        json!({"id": "ch_early", "object": "charge", "payment_intent": "pi_early",
               "customer": null, "metadata": {"penpal_customer": customer},
               "amount": 2000, "amount_refunded": 2000, "currency": "eur", "refunded": true}),
    );
    assert_eq!(sim.deliver(&early, &Delivery::default()).await, 503);
    let paid = sim.event(
        "invoice.paid",
        json!({"id": "in_early", "object": "invoice", "subscription": sub,
               "amount_paid": 2000, "currency": "eur", "payment_intent": "pi_early",
               "parent": {"subscription_details": {"metadata": {"penpal_customer": customer, "penpal_plan": "premium-monthly"}}}}),
    );
    assert_eq!(sim.deliver(&paid, &Delivery::default()).await, 200);
    assert_eq!(sim.deliver(&early, &Delivery::default()).await, 200);
    let (_, list) = ana.call("GET", "/v1/billing/invoices", None).await;
    let early = list
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["payment_id"] == "pi_early")
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(early["status"], "refunded", "{list}");

    // Monthly to yearly: the provider prorates; the plan follows its webhook.
    for (body, status) in [
        (json!({"plan": "free"}), 422),
        (json!({"plan": "premium-monthly"}), 409),
    ] {
        assert_eq!(
            ana.call("POST", "/v1/billing/subscription/plan", Some(body.clone()))
                .await
                .0,
            status,
            "{body}"
        );
    }
    let (status, changed) = ana
        .call(
            "POST",
            "/v1/billing/subscription/plan",
            Some(json!({"plan": "premium-yearly"})),
        )
        .await;
    assert_eq!(status, 202, "{changed}");
    until_plan(&ana, "premium-yearly").await;
    let (_, export) = ana.call("GET", "/v1/me/export", None).await;
    assert_eq!(export["invoices"].as_array().unwrap().len(), 2, "{export}");
}

/// A server taking payments through the `paddle` plugin, against the Paddle simulator.
async fn with_paddle(
    data: &std::path::Path,
    plans: &str,
) -> (
    Running,
    penpal::store::Db,
    penpal::billing::simulator::paddle::Paddle,
    Sink,
) {
    use penpal::billing::simulator::paddle::Paddle;
    let sim = Paddle::start("pdl_test_penpal", "pdl_ntfset_sim", "http://127.0.0.1:9/")
        .await
        .unwrap();
    let port = sim.addr.port();
    let file = data.join("penpal.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[billing]
provider = "paddle"
{plans}
[plugins.paddle]
grant = {{ http = ["http://localhost:{port}"], secrets = ["api_key", "webhook_secret"], kv = true }}
settings = {{ api_base = "http://localhost:{port}" }}
secrets = {{ api_key = "pdl_test_penpal", webhook_secret = "pdl_ntfset_sim" }}
"#
        ),
    )
    .unwrap();
    let sink = Sink::start();
    let mut args = serve_args(data, None);
    args.plugins.config = Some(file);
    args.plugins.plugin_allow_networks =
        vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
    args.mail.smtp_url = Some(penpal::plugins::Secret::new(sink.url()));
    args.mail.public_url = Some("https://penpal.test".into());
    // The billing sweep looks every second.
    args.mail.schedule_secs = 1;
    let db = penpal::store::Db::connect("mem://", None).await.unwrap();
    let server = start_on(args, db.clone()).await;
    sim.send_to(&server.url("/v1/billing/webhooks/paddle"));
    (server, db, sim, sink)
}

#[actix_rt::test]
async fn paddle_takes_the_same_journey_with_its_own_signatures_refunds_and_plan_changes() {
    use penpal::billing::simulator::Delivery;
    let data = tempfile::tempdir().unwrap();
    let (server, db, sim, _sink) = with_paddle(data.path(), MONTHLY_AND_YEARLY).await;
    let base = server.url("");
    let ana = Client {
        base: base.clone(),
        token: Some(new_learner(&base, "B1").await),
    };
    let (status, page) = ana
        .call(
            "POST",
            "/v1/billing/checkout",
            Some(json!({"plan": "premium-monthly"})),
        )
        .await;
    assert_eq!(status, 201, "{page}");
    let url = page["url"].as_str().unwrap();
    assert!(url.starts_with(&sim.url()), "{url}");
    let txn = url.rsplit('/').next().unwrap();
    let sub = sim.complete_checkout(txn).await.unwrap();
    let mine = until_plan(&ana, "premium-monthly").await;
    assert_eq!(
        mine["source"],
        json!({"kind": "subscription", "id": format!("paddle:{sub}")})
    );
    let invoice = until_invoice(&ana, "the Paddle transaction", |_| true).await;
    assert_eq!(invoice["payment_id"], txn);
    assert_eq!(invoice["provider"], "paddle");
    assert_eq!(invoice["amount_minor"], 2000);

    // Paddle's signature scheme: `ts=…;h1=…` over "ts:body", 300 s, every h1 tried.
    let probe = sim.event(
        "subscription.updated",
        json!({"id": sub, "status": "past_due", "custom_data": {"penpal_plan": "premium-monthly"}}),
    );
    let now = (penpal::store::now_ms() / 1000) as u64;
    for (how, why) in [
        (
            Delivery {
                tamper: true,
                ..Default::default()
            },
            "altered after signing",
        ),
        (
            Delivery {
                timestamp: Some(now - 301),
                ..Default::default()
            },
            "signed too long ago",
        ),
        (
            Delivery {
                secrets: Some(vec!["pdl_ntfset_other".into()]),
                ..Default::default()
            },
            "signed with another secret",
        ),
        (
            Delivery {
                body: Some(probe.to_string()[..30].to_string()),
                ..Default::default()
            },
            "truncated",
        ),
        (
            Delivery {
                body: Some(serde_json::to_string_pretty(&probe).unwrap()),
                ..Default::default()
            },
            "re-encoded",
        ),
    ] {
        assert_eq!(sim.deliver(&probe, &how).await, 400, "{why}");
    }
    assert_eq!(plan_of(&ana).await["subscription"]["status"], "active");
    let stripe_style = http()
        .post(server.url("/v1/billing/webhooks/paddle"))
        .header(
            "stripe-signature",
            format!(
                "t={now},v1={}",
                penpal::billing::simulator::sign("pdl_ntfset_sim", now, &probe.to_string())
            ),
        )
        .body(probe.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        stripe_style.status().as_u16(),
        400,
        "another provider's scheme"
    );
    let rotated = Delivery {
        secrets: Some(vec!["pdl_ntfset_old".into(), "pdl_ntfset_sim".into()]),
        ..Default::default()
    };
    for _ in 0..5 {
        assert_eq!(sim.deliver(&probe, &rotated).await, 200);
    }
    let applied: Vec<Value> = db
        .rows(
            "SELECT VALUE status FROM billing_event WHERE event_id = $id",
            json!({"id": probe["event_id"]}),
        )
        .await
        .unwrap();
    assert_eq!(
        applied,
        vec![json!("applied")],
        "five deliveries, one event"
    );
    assert_eq!(plan_of(&ana).await["subscription"]["status"], "past_due");
    sim.update(&sub, "active").await.unwrap();

    // A refund needs Paddle's approval: the invoice moves when it is approved.
    let ops = Client {
        base: base.clone(),
        token: Some(operator_token(server.addr, &db).await),
    };
    let (status, asked) = ops
        .call(
            "POST",
            "/v1/admin/billing/refunds",
            Some(json!({"provider": "paddle", "payment_id": txn, "amount_minor": 500})),
        )
        .await;
    assert_eq!(status, 202, "{asked}");
    let invoice = until_invoice(&ana, "the approved refund", |i| i["refunded_minor"] == 500).await;
    assert_eq!(invoice["status"], "partially_refunded");
    sim.chargeback(txn).await.unwrap();
    until_invoice(&ana, "the chargeback", |i| !i["dispute"].is_null()).await;

    // Cancel at the period's end, resume, switch to yearly, then end it now.
    let (status, changed) = ana
        .call("POST", "/v1/billing/subscription/cancel", Some(json!({})))
        .await;
    assert_eq!(
        (status, &changed["cancel_at_period_end"]),
        (202, &json!(true))
    );
    assert_eq!(sim.cancel_scheduled(&sub), Some(true));
    within(20, "the scheduled cancellation", async {
        while plan_of(&ana).await["subscription"]["cancel_at_period_end"] != true {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;
    let (status, changed) = ana
        .call("POST", "/v1/billing/subscription/resume", None)
        .await;
    assert_eq!(
        (status, &changed["cancel_at_period_end"]),
        (202, &json!(false))
    );
    // The provider's webhook follows its answer.
    within(20, "the resumption is held", async {
        while plan_of(&ana).await["subscription"]["cancel_at_period_end"] != false {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;
    let (status, changed) = ana
        .call(
            "POST",
            "/v1/billing/subscription/plan",
            Some(json!({"plan": "premium-yearly"})),
        )
        .await;
    assert_eq!(status, 202, "{changed}");
    until_plan(&ana, "premium-yearly").await;
    let (status, _) = ana
        .call(
            "POST",
            "/v1/billing/subscription/cancel",
            Some(json!({"at_period_end": false})),
        )
        .await;
    assert_eq!(status, 202);
    until_plan(&ana, "free").await;
}

#[actix_rt::test]
async fn businesses_see_prices_without_vat_and_what_is_added() {
    let data = tempfile::tempdir().unwrap();
    let plans = format!("sells_to = \"businesses\"\n{MONTHLY_AND_YEARLY}");
    let (server, _db, _sim, _sink) = with_stripe(data.path(), &plans).await;
    let anyone = Client {
        base: server.url(""),
        token: None,
    };
    let (status, offer) = anyone
        .call("GET", "/v1/billing/plans?country=FI&currency=EUR", None)
        .await;
    assert_eq!(status, 200, "{offer}");
    assert_eq!(
        offer["plans"][2]["price"],
        json!({"amount_minor": 20000, "currency": "EUR",
               "tax": {"country": "FI", "rate_bp": 2550, "included": false, "tax_minor": 5100, "total_minor": 25100}}),
        "{offer}"
    );
    for bad in ["France", "F1", "f"] {
        let (status, err) = anyone
            .call("GET", &format!("/v1/billing/plans?country={bad}"), None)
            .await;
        assert_eq!(status, 422, "{bad}: {err}");
        assert_eq!(err["error"]["field"], "country", "{err}");
    }
}

#[actix_rt::test]
async fn a_trial_with_a_card_converts_to_paid_with_a_receipt() {
    let data = tempfile::tempdir().unwrap();
    let (server, _db, sim, sink) = with_stripe(data.path(), TRIAL).await;
    let base = server.url("");
    let ana = Client {
        base: base.clone(),
        token: Some(new_learner(&base, "B1").await),
    };
    let (_, page) = ana
        .call(
            "POST",
            "/v1/billing/checkout",
            Some(json!({"plan": "premium"})),
        )
        .await;
    let session = page["url"].as_str().unwrap().rsplit('/').next().unwrap();
    let sub = sim.complete_checkout(session).await.unwrap();
    let mine = until_plan(&ana, "premium").await;
    assert_eq!(mine["subscription"]["status"], "trialing");
    let (_, paid) = ana.call("GET", "/v1/billing/invoices", None).await;
    assert_eq!(paid, json!([]), "a trial charges nothing");

    // With a card on file the trial converts: the first charge, a receipt, an invoice.
    let payment = sim.renew(&sub).await.unwrap();
    within(20, "the trial converts", async {
        while plan_of(&ana).await["subscription"]["status"] != "active" {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;
    let receipt = mail(&sink, "ana@example.com", "Your Penpal receipt").await;
    assert!(receipt.contains("20.00 EUR"), "{receipt}");
    let (_, paid) = ana.call("GET", "/v1/billing/invoices", None).await;
    assert_eq!(
        (&paid[0]["payment_id"], &paid[0]["amount_minor"]),
        (&json!(payment), &json!(2000)),
        "{paid}"
    );
    let mine = plan_of(&ana).await;
    assert_eq!(mine["plan"]["id"], "premium");
    assert!(
        mine["subscription"]["period_end"].as_i64().unwrap()
            > penpal::store::now_ms() / 1000 + 29 * 86_400
    );
}

/// Nodes sharing a database apply events about one subscription at the same moment: whatever
/// the interleaving, the newest event's state is the one kept (a stale write fails and is
/// applied again on the provider's next delivery, when it changes nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_applies_on_several_nodes_never_keep_an_older_state() {
    use penpal::billing::provider::{EventKind, PaymentEvent, Subscription, SubscriptionStatus};
    use penpal::billing::webhooks::{self, Applied, Mailing};
    let db = penpal::store::Db::connect("mem://", None).await.unwrap();
    db.exec(
        "CREATE type::record('user', 'u1') CONTENT { email: 'u1@example.com', password_hash: 'x', role: 'learner', created_at: 0, password_changed_at: 0, profile: {} }",
        json!({}),
    )
    .await
    .unwrap();
    let event = |i: u64| PaymentEvent {
        id: format!("evt_{i}"),
        kind: EventKind::SubscriptionUpdated,
        provider_type: "customer.subscription.updated".into(),
        customer_id: Some("u1".into()),
        provider_customer_id: Some("cus_1".into()),
        subscription: Some(Subscription {
            id: "sub_1".into(),
            status: if i.is_multiple_of(2) {
                SubscriptionStatus::Active
            } else {
                SubscriptionStatus::PastDue
            },
            plan_id: Some("premium".into()),
            current_period_end: Some(1_900_000_000 + i),
            trial_end: None,
            cancel_at_period_end: false,
        }),
        payment_id: None,
        amount: None,
        occurred_at: 1_800_000_000 + i,
    };
    let routing = penpal::store::outbox::Routing::default();
    // Each of 24 events as a provider delivers it: until one delivery applies or recognises it.
    let deliveries = (1..=24u64).map(|i| {
        let db = db.clone();
        let routing = routing.clone();
        let e = event(i);
        tokio::spawn(async move {
            let mailing = Mailing {
                routing: &routing,
                public_url: "https://penpal.test",
                plans: None,
            };
            for attempt in 0..20 {
                if !webhooks::store(&db, "stripe", &e).await.unwrap() {
                    return attempt;
                }
                match webhooks::apply(&db, "stripe", &e, mailing).await {
                    Ok(Applied::Applied) => return attempt,
                    Ok(other) => panic!("{other:?}"),
                    Err(err) => webhooks::failed(&db, "stripe", &e.id, &err.to_string())
                        .await
                        .unwrap(),
                }
            }
            panic!("event {} never applied", e.id)
        })
    });
    for d in deliveries.collect::<Vec<_>>() {
        d.await.unwrap();
    }
    let held: Vec<Value> = db
        .rows(
            "SELECT status, period_end, as_of FROM subscription",
            json!({}),
        )
        .await
        .unwrap();
    assert_eq!(
        held,
        vec![
            json!({"status": "active", "period_end": 1_900_000_024i64, "as_of": 1_800_000_024i64})
        ],
        "the newest event's state"
    );
}

#[actix_rt::test]
async fn a_paddle_trial_about_to_end_is_reminded_once_by_penpal_itself() {
    let data = tempfile::tempdir().unwrap();
    // A one-day trial: inside the reminder's window from the start.
    let plans = TRIAL.replace("trial_days = 30", "trial_days = 1");
    let (server, db, sim, sink) = with_paddle(data.path(), &plans).await;
    let base = server.url("");
    let ana = Client {
        base: base.clone(),
        token: Some(new_learner(&base, "B1").await),
    };
    let (_, page) = ana
        .call(
            "POST",
            "/v1/billing/checkout",
            Some(json!({"plan": "premium"})),
        )
        .await;
    let txn = page["url"].as_str().unwrap().rsplit('/').next().unwrap();
    let sub = sim.complete_checkout(txn).await.unwrap();
    let mine = until_plan(&ana, "premium").await;
    assert_eq!(mine["subscription"]["status"], "trialing");
    // Paddle sends no "trial will end": the sweep reminds, once, however often it runs.
    let reminder = mail(&sink, "ana@example.com", "Your Penpal trial ends soon").await;
    assert!(reminder.contains("20.00 EUR"), "{reminder}");
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let sent: Vec<Value> = db
        .rows(
            "SELECT VALUE template FROM outbox WHERE template = 'trial_ending'",
            json!({}),
        )
        .await
        .unwrap();
    assert_eq!(sent.len(), 1, "one reminder for {sub}");
}

/// A provider made with `penpal plugin new --kind payment-provider`, built, and run by the
/// server as its payment provider against a small JSON API: its checkout reaches the API with
/// the key, the idempotency key and whose it is; a webhook signed with the secret makes the
/// learner premium, and one signed with another secret changes nothing.
#[actix_rt::test]
async fn a_payment_provider_made_from_the_template_takes_a_checkout_and_a_signed_webhook() {
    use axum::routing::post;
    use std::sync::{Arc, Mutex};
    let author = tempfile::tempdir().unwrap();
    let dir = author.path().to_str().unwrap();
    let (ok, out, err) = crate::marketplace::cli(
        &[
            "plugin",
            "new",
            "coin-pay",
            "--kind",
            "payment-provider",
            "--dir",
            dir,
        ],
        &[],
    )
    .await;
    assert!(ok, "{out}{err}");
    let target = repo().join("target").join("wasm");
    let (ok, out, err) = crate::marketplace::cli(
        &[
            "plugin",
            "build",
            author.path().join("coin-pay").to_str().unwrap(),
        ],
        &[("CARGO_TARGET_DIR", target.to_str().unwrap())],
    )
    .await;
    assert!(ok, "{out}{err}");

    // The provider's API: answers a checkout, remembers what it was sent.
    type Seen = Arc<Mutex<Vec<(axum::http::HeaderMap, Value)>>>;
    let seen: Seen = Arc::default();
    let api = axum::Router::new()
        .route(
            "/checkouts",
            post(
                |axum::extract::State(seen): axum::extract::State<Seen>,
                 headers: axum::http::HeaderMap,
                 axum::Json(body): axum::Json<Value>| async move {
                    seen.lock().unwrap().push((headers, body));
                    axum::Json(json!({"id": "co_1", "url": "https://pay.example/co_1"}))
                },
            ),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, api).await });

    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("penpal.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[billing]
provider = "coin-pay"
{PAID}
[plugins.coin-pay]
grant = {{ http = ["http://localhost:{port}"], secrets = ["api_key", "webhook_secret"] }}
settings = {{ api_base = "http://localhost:{port}" }}
secrets = {{ api_key = "sk_coin", webhook_secret = "whsec_coin" }}
"#
        ),
    )
    .unwrap();
    let mut args = serve_args(data.path(), None);
    args.plugins.config = Some(file);
    args.plugins.plugin_dirs.push(author.path().to_path_buf());
    args.plugins.plugin_allow_networks = vec!["127.0.0.0/8".parse().unwrap()];
    let db = penpal::store::Db::connect("mem://", None).await.unwrap();
    let server = start_on(args, db.clone()).await;
    let base = server.url("");
    let ana = Client {
        base: base.clone(),
        token: Some(new_learner(&base, "B1").await),
    };
    let (_, me) = ana.call("GET", "/v1/me", None).await;
    let user = me["id"].as_str().unwrap().to_string();

    let (status, page) = ana
        .call(
            "POST",
            "/v1/billing/checkout",
            Some(json!({"plan": "premium"})),
        )
        .await;
    assert_eq!(status, 201, "{page}");
    assert_eq!(page["url"], "https://pay.example/co_1");
    let (headers, body) = seen.lock().unwrap()[0].clone();
    assert_eq!(headers["authorization"], "Bearer sk_coin");
    assert!(headers.contains_key("idempotency-key"), "{headers:?}");
    assert_eq!(
        (&body["amount_minor"], &body["currency"], &body["interval"]),
        (&json!(2000), &json!("EUR"), &json!("month"))
    );
    assert_eq!(
        body["metadata"],
        json!({"penpal_customer": user, "penpal_plan": "premium"})
    );

    // The provider's webhook, signed `t=…,v1=…` over "{t}.{body}".
    let now = (penpal::store::now_ms() / 1000) as u64;
    let event = json!({
        "id": "evt_1", "type": "subscription.created", "created": now,
        "data": {"customer": "cus_1", "metadata": {"penpal_customer": user},
                 "subscription": {"id": "sub_1", "status": "active",
                                  "metadata": {"penpal_plan": "premium"},
                                  "current_period_end": now + 30 * 86_400}}
    })
    .to_string();
    let deliver = |secret: &str| {
        let signature = penpal::billing::simulator::sign(secret, now, &event);
        http()
            .post(server.url("/v1/billing/webhooks/coin-pay"))
            .header("webhook-signature", format!("t={now},v1={signature}"))
            .body(event.clone())
            .send()
    };
    let refused = deliver("whsec_other").await.unwrap();
    assert_eq!(refused.status(), 400);
    assert_eq!(plan_of(&ana).await["plan"]["id"], "free");
    let taken = deliver("whsec_coin").await.unwrap();
    assert_eq!(taken.status(), 200, "{}", taken.text().await.unwrap());
    let plan = until_plan(&ana, "premium").await;
    assert_eq!(plan["source"]["kind"], "subscription", "{plan}");
}
