//! Schools as tenants, end to end: an operator creates a school, its admin joins through the
//! mailed invitation, staff and learners join by link, seats hold and give the school's plan,
//! roles change, members leave — and one school never sees another's data.

use crate::common::*;
use serde_json::{Value, json};

/// A signed-in client of one server.
pub(crate) struct Client {
    pub(crate) base: String,
    pub(crate) token: String,
}

impl Client {
    pub(crate) async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = http()
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
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
}

/// Signs up `email` on the server at `base`.
pub(crate) async fn account(base: &str, email: &str) -> Client {
    let resp = http()
        .post(format!("{base}/v1/auth/register"))
        .json(&json!({"email": email, "password": "correct horse battery", "display_name": email.split('@').next()}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let body: Value = resp.json().await.unwrap();
    Client {
        base: base.to_string(),
        token: body["access_token"].as_str().unwrap().to_string(),
    }
}

/// The token in an invitation link.
pub(crate) fn token(url: &str) -> String {
    url.split("token=").nth(1).unwrap().to_string()
}

const PLANS: &str = r#"
[billing.plans.free]
turns_per_day = 5
[billing.plans.premium]
interval = "month"
prices = { EUR = 2000 }
"#;

/// A server with plans and mail, and an operator.
pub(crate) async fn server(data: &std::path::Path) -> (Running, penpal::store::Db, Sink, Client) {
    server_every(data, 300).await
}

/// [`server`] whose background work (the scorer, sweeps) runs every `secs` seconds.
pub(crate) async fn server_every(
    data: &std::path::Path,
    secs: u64,
) -> (Running, penpal::store::Db, Sink, Client) {
    server_with(data, secs, |_| {}).await
}

/// [`server_every`] with `tweak` applied to its arguments.
pub(crate) async fn server_with(
    data: &std::path::Path,
    secs: u64,
    tweak: impl FnOnce(&mut penpal::config::ServeArgs),
) -> (Running, penpal::store::Db, Sink, Client) {
    let file = data.join("penpal.toml");
    std::fs::write(&file, PLANS).unwrap();
    let sink = Sink::start();
    let mut args = serve_args(data, None);
    args.plugins.config = Some(file);
    args.mail.smtp_url = Some(penpal::plugins::Secret::new(sink.url()));
    args.mail.public_url = Some("https://penpal.test".into());
    args.mail.schedule_secs = secs;
    tweak(&mut args);
    let db = penpal::store::Db::connect("mem://", None).await.unwrap();
    let server = start_on(args, db.clone()).await;
    let ops = Client {
        base: server.url(""),
        token: operator_token(server.addr, &db).await,
    };
    (server, db, sink, ops)
}

/// The first link to penpal in `text`.
pub(crate) fn link(text: &str) -> String {
    let at = text.find("https://penpal.test/join?token=").unwrap();
    text[at..]
        .split(|c: char| c.is_whitespace() || c == '>' || c == ')')
        .next()
        .unwrap()
        .to_string()
}

/// A school made by the operator with `seats`, and its admin (`admin`) joined.
pub(crate) async fn school(
    base: &str,
    ops: &Client,
    sink: &Sink,
    name: &str,
    admin: &str,
    seats: i64,
) -> (String, Client) {
    let (status, made) = ops
        .call(
            "POST",
            "/v1/admin/schools",
            Some(json!({"name": name, "seats": seats, "plan": "premium", "admin_email": admin})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().unwrap().to_string();
    let text = mail(sink, admin, "You are invited to a school on Penpal").await;
    assert!(
        text.contains(&format!("to join {name} on Penpal as an administrator")),
        "{text}"
    );
    let url = link(&text);
    assert_eq!(url, made["admin_invitation_url"]);
    let who = account(base, admin).await;
    let (status, joined) = who
        .call(
            "POST",
            &format!("/v1/invitations/{}/accept", token(&url)),
            None,
        )
        .await;
    assert_eq!(status, 201, "{joined}");
    assert_eq!(joined["role"], "admin");
    (id, who)
}

#[actix_rt::test]
async fn a_school_admits_staff_and_learners_by_invitation_and_its_seats_hold() {
    let data = tempfile::tempdir().unwrap();
    let (server, _db, sink, ops) = server(data.path()).await;
    let base = server.url("");
    let learner = account(&base, "ana@example.com").await;
    for (body, status) in [
        (
            json!({"name": " ", "seats": 1, "admin_email": "roux@example.com"}),
            422,
        ),
        (
            json!({"name": "X", "seats": -1, "admin_email": "roux@example.com"}),
            422,
        ),
        (
            json!({"name": "X", "seats": 1, "plan": "gold", "admin_email": "roux@example.com"}),
            422,
        ),
        (json!({"name": "X", "seats": 1, "admin_email": "roux"}), 422),
    ] {
        let (got, err) = ops
            .call("POST", "/v1/admin/schools", Some(body.clone()))
            .await;
        assert_eq!(got, status, "{body}: {err}");
    }
    assert_eq!(
        learner
            .call(
                "POST",
                "/v1/admin/schools",
                Some(json!({"name": "X", "seats": 1, "admin_email": "a@example.com"}))
            )
            .await
            .0,
        403
    );
    let (id, admin) = school(&base, &ops, &sink, "Lycée Hugo", "roux@example.com", 1).await;
    let at = |rest: &str| format!("/v1/schools/{id}{rest}");

    // A learners' link (no address, many uses) and a teacher's invitation by mail.
    let (status, open) = admin
        .call(
            "POST",
            &at("/invitations"),
            Some(json!({"role": "learner"})),
        )
        .await;
    assert_eq!(status, 201, "{open}");
    assert_eq!(open["invitation"]["max_uses"], 50);
    let learners_link = token(open["url"].as_str().unwrap());
    let (status, _) = admin
        .call(
            "POST",
            &at("/invitations"),
            Some(json!({"role": "teacher", "email": "Dupont@Example.com"})),
        )
        .await;
    assert_eq!(status, 201);
    for (body, field) in [
        (json!({"role": "learner", "days": 0}), "days"),
        (json!({"role": "learner", "max_uses": 1001}), "max_uses"),
        (json!({"role": "learner", "email": "nobody"}), "email"),
    ] {
        let (status, err) = admin.call("POST", &at("/invitations"), Some(body)).await;
        assert_eq!(
            (status, &err["error"]["field"]),
            (422, &json!(field)),
            "{err}"
        );
    }
    let anonymous = http()
        .get(format!("{base}/v1/invitations/{learners_link}"))
        .send()
        .await
        .unwrap();
    let preview: Value = anonymous.json().await.unwrap();
    assert_eq!(preview, json!({"school": "Lycée Hugo", "role": "learner"}));

    // Ana takes the one seat: the school's plan is hers.
    let (status, joined) = learner
        .call(
            "POST",
            &format!("/v1/invitations/{learners_link}/accept"),
            None,
        )
        .await;
    assert_eq!(status, 201, "{joined}");
    assert_eq!(
        (joined["seats"].clone(), joined["seats_used"].clone()),
        (json!(1), json!(1))
    );
    let (_, plan) = learner.call("GET", "/v1/billing/subscription", None).await;
    assert_eq!(plan["plan"]["id"], "premium", "{plan}");
    assert_eq!(plan["source"], json!({"kind": "school", "id": id}));
    let (status, again) = learner
        .call(
            "POST",
            &format!("/v1/invitations/{learners_link}/accept"),
            None,
        )
        .await;
    assert_eq!(status, 409, "a member already: {again}");
    let bob = account(&base, "bob@example.com").await;
    let (status, full) = bob
        .call(
            "POST",
            &format!("/v1/invitations/{learners_link}/accept"),
            None,
        )
        .await;
    assert_eq!(status, 409, "{full}");
    assert!(
        full["error"]["message"].as_str().unwrap().contains("seats"),
        "{full}"
    );

    // The teacher's invitation works only for the address it was sent to.
    let text = mail(
        &sink,
        "dupont@example.com",
        "You are invited to a school on Penpal",
    )
    .await;
    assert!(text.contains("as a teacher"), "{text}");
    let teachers_link = token(&link(&text));
    let (status, _) = bob
        .call(
            "POST",
            &format!("/v1/invitations/{teachers_link}/accept"),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let teacher = account(&base, "dupont@example.com").await;
    let (status, joined) = teacher
        .call(
            "POST",
            &format!("/v1/invitations/{teachers_link}/accept"),
            None,
        )
        .await;
    assert_eq!(
        (status, &joined["role"]),
        (201, &json!("teacher")),
        "{joined}"
    );

    // What each role may do.
    let (status, members) = teacher.call("GET", &at("/members"), None).await;
    assert_eq!(status, 200, "{members}");
    let roles: Vec<(&str, &str)> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["email"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert_eq!(
        roles,
        [
            ("roux@example.com", "admin"),
            ("ana@example.com", "learner"),
            ("dupont@example.com", "teacher")
        ]
    );
    assert_eq!(learner.call("GET", &at("/members"), None).await.0, 403);
    assert_eq!(
        learner
            .call(
                "POST",
                &at("/invitations"),
                Some(json!({"role": "learner"}))
            )
            .await
            .0,
        403
    );
    assert_eq!(
        teacher
            .call(
                "POST",
                &at("/invitations"),
                Some(json!({"role": "teacher"}))
            )
            .await
            .0,
        403,
        "teachers invite learners only"
    );
    assert_eq!(
        teacher
            .call(
                "POST",
                &at("/invitations"),
                Some(json!({"role": "learner"}))
            )
            .await
            .0,
        201
    );
    assert_eq!(teacher.call("GET", &at("/invitations"), None).await.0, 403);
    let (_, list) = admin.call("GET", &at("/invitations"), None).await;
    assert_eq!(
        list.as_array().unwrap().len(),
        4,
        "the admin's own, two learners' links, the teacher's: {list}"
    );
    assert!(
        list.to_string().find("token").is_none(),
        "no token is ever shown again"
    );

    // Roles: Ana becomes a teacher, her seat is free for Bob; the last admin stays.
    let ana_id = roles_id(&members, "ana@example.com");
    let (status, _) = teacher
        .call(
            "PATCH",
            &at(&format!("/members/{ana_id}")),
            Some(json!({"role": "teacher"})),
        )
        .await;
    assert_eq!(status, 403, "only admins change roles");
    let (status, _) = admin
        .call(
            "PATCH",
            &at(&format!("/members/{ana_id}")),
            Some(json!({"role": "teacher"})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, plan) = learner.call("GET", "/v1/billing/subscription", None).await;
    assert_eq!(
        plan["plan"]["id"], "free",
        "a teacher takes no seat: {plan}"
    );
    let (status, _) = bob
        .call(
            "POST",
            &format!("/v1/invitations/{learners_link}/accept"),
            None,
        )
        .await;
    assert_eq!(status, 201);
    let (_, me) = admin.call("GET", "/v1/me", None).await;
    let admin_id = me["id"].as_str().unwrap().to_string();
    let (status, err) = admin
        .call("DELETE", &at(&format!("/members/{admin_id}")), None)
        .await;
    assert_eq!(status, 409, "{err}");
    let (status, err) = admin
        .call(
            "PATCH",
            &at(&format!("/members/{admin_id}")),
            Some(json!({"role": "teacher"})),
        )
        .await;
    assert_eq!(status, 409, "{err}");

    // Bob leaves: his seat and his plan go.
    let (_, me) = bob.call("GET", "/v1/me", None).await;
    let bob_id = me["id"].as_str().unwrap().to_string();
    assert_eq!(
        bob.call("DELETE", &at(&format!("/members/{bob_id}")), None)
            .await
            .0,
        204
    );
    let (_, plan) = bob.call("GET", "/v1/billing/subscription", None).await;
    assert_eq!(plan["plan"]["id"], "free");
    let (_, mine) = bob.call("GET", "/v1/schools", None).await;
    assert_eq!(mine, json!([]));
    let (_, export) = learner.call("GET", "/v1/me/export", None).await;
    assert_eq!(export["schools"][0]["name"], "Lycée Hugo", "{export}");
}

pub(crate) fn roles_id(members: &Value, email: &str) -> String {
    members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == email)
        .unwrap()["user"]
        .as_str()
        .unwrap()
        .to_string()
}

#[actix_rt::test]
async fn one_school_sees_and_changes_nothing_of_another() {
    let data = tempfile::tempdir().unwrap();
    let (server, _db, sink, ops) = server(data.path()).await;
    let base = server.url("");
    let (a, admin_a) = school(&base, &ops, &sink, "School A", "a@example.com", 5).await;
    let (b, admin_b) = school(&base, &ops, &sink, "School B", "b@example.com", 5).await;
    let (_, made) = admin_a
        .call(
            "POST",
            &format!("/v1/schools/{a}/invitations"),
            Some(json!({"role": "learner"})),
        )
        .await;
    let invitation = made["invitation"]["id"].as_str().unwrap().to_string();
    let (_, me) = admin_a.call("GET", "/v1/me", None).await;
    let member = me["id"].as_str().unwrap().to_string();
    let routes = [
        ("GET", format!("/v1/schools/{a}"), None),
        ("GET", format!("/v1/schools/{a}/members"), None),
        (
            "PATCH",
            format!("/v1/schools/{a}/members/{member}"),
            Some(json!({"role": "learner"})),
        ),
        ("DELETE", format!("/v1/schools/{a}/members/{member}"), None),
        (
            "POST",
            format!("/v1/schools/{a}/invitations"),
            Some(json!({"role": "admin"})),
        ),
        ("GET", format!("/v1/schools/{a}/invitations"), None),
        (
            "DELETE",
            format!("/v1/schools/{a}/invitations/{invitation}"),
            None,
        ),
        // B's own path with A's invitation: not B's to revoke.
        (
            "DELETE",
            format!("/v1/schools/{b}/invitations/{invitation}"),
            None,
        ),
        // B's own path with A's member: not B's member.
        (
            "PATCH",
            format!("/v1/schools/{b}/members/{member}"),
            Some(json!({"role": "learner"})),
        ),
        ("DELETE", format!("/v1/schools/{b}/members/{member}"), None),
    ];
    for (method, path, body) in routes {
        let (status, answer) = admin_b.call(method, &path, body).await;
        assert_eq!(status, 404, "{method} {path}: {answer}");
        let text = answer.to_string();
        assert!(
            !text.contains("School A") && !text.contains("a@example.com"),
            "{method} {path} leaks: {text}"
        );
    }
    // A is as it was.
    let (_, members) = admin_a
        .call("GET", &format!("/v1/schools/{a}/members"), None)
        .await;
    assert_eq!(members.as_array().unwrap().len(), 1);
    assert_eq!(members[0]["role"], "admin");
    let (_, list) = admin_a
        .call("GET", &format!("/v1/schools/{a}/invitations"), None)
        .await;
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    let (_, mine) = admin_b.call("GET", "/v1/schools", None).await;
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["name"], "School B");
}
