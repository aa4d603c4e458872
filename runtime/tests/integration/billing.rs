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

    // Role-play is not in the free plan, whatever the count.
    let scene = ana.conversation("role-play").await;
    let (status, err) = ana.say(&scene, "Une table pour deux.").await;
    assert_eq!(status, 402, "{err}");
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
