//! Mail, end to end: a real SMTP server on loopback (aiosmtpd, `runtime/tests/smtp/sink.py`,
//! installed by `cargo xtask test` into `target/smtp`) receives what penpal sends; each message
//! is parsed as a mail client would, and its link is followed against the real server.

use std::path::Path;
use std::time::Duration;

use crate::common::*;
use mail_parser::Message;
use serde_json::{Value, json};

fn header<'a>(m: &'a Message<'a>, name: &str) -> Option<String> {
    m.header_raw(name).map(|v| v.trim().to_string())
}

/// The link in the text part that leads to `page`, and its token.
fn link(m: &Message<'_>, page: &str) -> (String, String) {
    let text = m.body_text(0).expect("a text part");
    let url = text
        .split_whitespace()
        .find(|w| w.contains(&format!("/{page}#token=")))
        .unwrap_or_else(|| panic!("no /{page} link in:\n{text}"))
        .to_string();
    let token = url.split("#token=").nth(1).unwrap().to_string();
    (url, token)
}

fn mail_args(smtp: Option<String>) -> penpal::config::MailArgs {
    penpal::config::MailArgs {
        smtp_url: smtp.map(|u| penpal::plugins::Secret::new(&u)),
        mail_from: "Penpal <no-reply@penpal.test>".into(),
        public_url: Some("https://penpal.test".into()),
        outbox_retry_ms: 100,
        outbox_attempts: 3,
        outbox_lease_secs: 120,
        smtp_timeout_secs: 2,
        // Digests are looked for at start, then hourly: only the schedule's test asks sooner.
        schedule_secs: 3600,
    }
}

async fn server(data: &Path, smtp: Option<String>) -> Running {
    let mut args = serve_args(data, None);
    args.mail = mail_args(smtp);
    start(args).await
}

async fn call(
    server: &Running,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    lang: Option<&str>,
) -> (u16, Value) {
    let mut req = http().request(method.parse().unwrap(), server.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    if let Some(l) = lang {
        req = req.header("accept-language", l);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// `POST path` with a JSON `body`, no credentials.
async fn post(server: &Running, path: &str, body: Value) -> (u16, Value) {
    call(server, "POST", path, None, Some(body), None).await
}

/// The outbox's messages with `status`, as an operator sees them.
async fn outbox(server: &Running, ops: &str, status: &str) -> Vec<Value> {
    let path = format!("/v1/admin/outbox?status={status}");
    let (code, rows) = call(server, "GET", &path, Some(ops), None, None).await;
    assert_eq!(code, 200, "{rows}");
    rows.as_array().cloned().unwrap_or_default()
}

/// Waits for the outbox to hold a message with `status` that `pick` accepts, and returns it.
async fn row_with(
    server: &Running,
    ops: &str,
    status: &str,
    pick: impl Fn(&Value) -> bool,
) -> Value {
    within(30, &format!("a {status} message"), async {
        loop {
            if let Some(row) = outbox(server, ops, status).await.into_iter().find(&pick) {
                return row;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
}

/// Waits for a message titled `subject` and returns it.
async fn mail_titled(sink: &Sink, subject: &str) -> Message<'static> {
    within(30, &format!("a mail titled {subject:?}"), async {
        loop {
            let found = sink.files().iter().find_map(|f| {
                let raw = std::fs::read(f).unwrap();
                let m = parse(&raw);
                (m.subject() == Some(subject)).then(|| m.into_owned())
            });
            if let Some(m) = found {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
}

async fn sign_up(server: &Running, email: &str, lang: Option<&str>) -> Value {
    let (status, body) = call(
        server,
        "POST",
        "/v1/auth/register",
        None,
        Some(json!({"email": email, "password": "correct horse battery", "display_name": "Ana"})),
        lang,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body
}

#[actix_rt::test]
async fn sign_up_sends_a_verification_mail_whose_link_verifies_once() {
    let sink = Sink::start();
    let data = tempfile::tempdir().unwrap();
    let server = server(data.path(), Some(sink.url())).await;
    let tokens = sign_up(&server, "ana@example.com", None).await;
    let access = tokens["access_token"].as_str().unwrap();
    let (_, me) = call(&server, "GET", "/v1/me", Some(access), None, None).await;
    assert_eq!(me["email_verified"], false, "{me}");

    let raw = sink.wait_for(1).await;
    let mail = parse(&raw[0]);
    assert_eq!(mail.subject(), Some("Confirm your email address"));
    assert_eq!(
        mail.from()
            .and_then(|a| a.first())
            .and_then(|a| a.address()),
        Some("no-reply@penpal.test")
    );
    assert_eq!(
        mail.to().and_then(|a| a.first()).and_then(|a| a.address()),
        Some("ana@example.com")
    );
    let id = mail.message_id().expect("a Message-ID");
    assert!(id.ends_with("@penpal.test"), "{id}");
    assert_eq!(mail.text_body_count(), 1, "a text part");
    assert_eq!(mail.html_body_count(), 1, "an HTML part");
    let html = mail.body_html(0).unwrap();
    assert!(html.contains("Hello Ana,"), "{html}");
    assert!(
        header(&mail, "List-Unsubscribe").is_none(),
        "account mail has no unsubscribe header"
    );
    let (url, token) = link(&mail, "verify-email");
    assert!(
        url.starts_with("https://penpal.test/verify-email#token="),
        "{url}"
    );
    assert!(html.contains(&url), "the HTML part carries the same link");

    let (status, body) = post(&server, "/v1/auth/verify-email", json!({"token": token})).await;
    assert_eq!(
        (status, &body["email_verified"]),
        (200, &json!(true)),
        "{body}"
    );
    let (_, me) = call(&server, "GET", "/v1/me", Some(access), None, None).await;
    assert_eq!(me["email_verified"], true);
    let (status, body) = post(&server, "/v1/auth/verify-email", json!({"token": token})).await;
    assert_eq!(status, 401, "a link works once: {body}");
    assert_eq!(body["error"]["code"], "link_invalid");
    let (status, _) = call(
        &server,
        "POST",
        "/v1/auth/verify-email/resend",
        Some(access),
        None,
        None,
    )
    .await;
    assert_eq!(status, 409, "nothing to re-send once verified");
    server.stop().await;
}

#[actix_rt::test]
async fn a_french_learner_gets_french_mail_and_resends_are_throttled() {
    let sink = Sink::start();
    let data = tempfile::tempdir().unwrap();
    let server = server(data.path(), Some(sink.url())).await;
    let tokens = sign_up(&server, "zoe@example.com", Some("fr-FR,fr;q=0.9")).await;
    let access = tokens["access_token"].as_str().unwrap();
    let raw = sink.wait_for(1).await;
    let mail = parse(&raw[0]);
    assert_eq!(mail.subject(), Some("Confirmez votre adresse e-mail"));
    assert!(mail.body_text(0).unwrap().contains("Bonjour Ana,"));

    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            call(
                &server,
                "POST",
                "/v1/auth/verify-email/resend",
                Some(access),
                None,
                None,
            )
            .await
            .0,
        );
    }
    assert_eq!(statuses, [202, 202, 202, 429]);
    let raw = sink.wait_for(4).await;
    let tokens: Vec<String> = raw
        .iter()
        .map(|r| link(&parse(r), "verify-email").1)
        .collect();
    // Every link sent works (the newest as well as the first).
    let (status, _) = post(
        &server,
        "/v1/auth/verify-email",
        json!({"token": tokens[3]}),
    )
    .await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[actix_rt::test]
async fn a_password_reset_answers_alike_for_every_address_and_ends_every_session() {
    let sink = Sink::start();
    let data = tempfile::tempdir().unwrap();
    let server = server(data.path(), Some(sink.url())).await;
    let tokens = sign_up(&server, "ana@example.com", None).await;
    sink.wait_for(1).await; // the verification mail
    let old_refresh = tokens["refresh_token"].as_str().unwrap();

    let known = post(
        &server,
        "/v1/auth/password-reset/request",
        json!({"email": "Ana@Example.com"}),
    )
    .await;
    let unknown = post(
        &server,
        "/v1/auth/password-reset/request",
        json!({"email": "nobody@example.com"}),
    )
    .await;
    assert_eq!(known.0, 202);
    assert_eq!(
        known, unknown,
        "the same answer whether or not the address has an account"
    );

    let raw = sink.wait_for(2).await;
    let mail = parse(&raw[1]);
    assert_eq!(mail.subject(), Some("Reset your Penpal password"));
    assert!(
        header(&mail, "List-Unsubscribe").is_none(),
        "never on security mail"
    );
    let (_, token) = link(&mail, "reset-password");

    // A weak password is refused without spending the link.
    let (status, body) = post(
        &server,
        "/v1/auth/password-reset",
        json!({"token": token, "new_password": "password123"}),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["field"]),
        (422, &json!("new_password")),
        "{body}"
    );
    let (status, body) = post(
        &server,
        "/v1/auth/password-reset",
        json!({"token": token, "new_password": "a new battery staple"}),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, _) = post(
        &server,
        "/v1/auth/password-reset",
        json!({"token": token, "new_password": "another battery staple"}),
    )
    .await;
    assert_eq!(status, 401, "a reset link works once");

    // Every session ended; the new password works, the old one does not.
    let (status, _) = post(
        &server,
        "/v1/auth/refresh",
        json!({"refresh_token": old_refresh}),
    )
    .await;
    assert_eq!(status, 401);
    let login = |password: &'static str| {
        post(
            &server,
            "/v1/auth/login",
            json!({"email": "ana@example.com", "password": password}),
        )
    };
    assert_eq!(login("correct horse battery").await.0, 401);
    let (status, fresh) = login("a new battery staple").await;
    assert_eq!(status, 200);
    // Resetting through the mailed link proved the address too.
    let (_, me) = call(
        &server,
        "GET",
        "/v1/me",
        fresh["access_token"].as_str(),
        None,
        None,
    )
    .await;
    assert_eq!(me["email_verified"], true);

    // And the owner is told, on the security channel.
    let raw = sink.wait_for(3).await;
    let notice = parse(&raw[2]);
    assert_eq!(notice.subject(), Some("Your Penpal password was changed"));
    assert!(
        notice
            .body_text(0)
            .unwrap()
            .contains("https://penpal.test/forgot-password")
    );
    assert_eq!(
        sink.files().len(),
        3,
        "nothing was sent for the unknown address"
    );
    server.stop().await;
}

#[actix_rt::test]
async fn a_refusing_server_is_retried_then_given_up_and_an_operator_sees_and_retries_it() {
    let sink = Sink::start();
    let data = tempfile::tempdir().unwrap();
    let db = penpal::store::Db::connect("mem://", None).await.unwrap();
    let mut args = serve_args(data.path(), None);
    args.mail = mail_args(Some(sink.url()));
    let server = start_on(args, db.clone()).await;

    // Two 451s, then accepted: delivered on the third attempt.
    sign_up(&server, "ana+tempfail2@example.com", None).await;
    sink.wait_for_mail_to("ana+tempfail2@example.com").await;
    // A 550 is given up at once; three 451s use up the three attempts.
    sign_up(&server, "ben+reject@example.com", None).await;
    sign_up(&server, "cy+tempfail5@example.com", None).await;
    let ops = operator_token(server.addr, &db).await;
    let failed = within(30, "both failures are recorded", async {
        loop {
            let rows = outbox(&server, &ops, "failed").await;
            if rows.len() == 2 {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let by_to = |to: &str| failed.iter().find(|r| r["to"] == to).cloned().unwrap();
    let rejected = by_to("ben+reject@example.com");
    assert_eq!(rejected["attempts"], 1, "{rejected}");
    assert!(
        rejected["last_error"].as_str().unwrap().contains("550"),
        "{rejected}"
    );
    let busy = by_to("cy+tempfail5@example.com");
    assert_eq!(busy["attempts"], 3, "{busy}");
    assert!(
        busy["last_error"].as_str().unwrap().contains("451"),
        "{busy}"
    );
    assert!(
        busy.get("vars").is_none(),
        "an operator does not see a message's contents"
    );

    // The learner's own view of outbox: not theirs to see.
    let learner = sign_up(&server, "dee@example.com", None).await;
    let (status, _) = call(
        &server,
        "GET",
        "/v1/admin/outbox",
        learner["access_token"].as_str(),
        None,
        None,
    )
    .await;
    assert_eq!(status, 403);

    // An operator's retry starts the attempts afresh: the sink refuses twice more (its fourth
    // and fifth refusals), then takes the message.
    let id = busy["id"].as_str().unwrap();
    let (status, body) = call(
        &server,
        "POST",
        &format!("/v1/admin/outbox/{id}/retry"),
        Some(&ops),
        None,
        None,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    sink.wait_for_mail_to("cy+tempfail5@example.com").await;
    within(30, "the retried message is recorded as sent", async {
        while !outbox(&server, &ops, "sent")
            .await
            .iter()
            .any(|r| r["id"] == id)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let (status, _) = call(
        &server,
        "POST",
        &format!("/v1/admin/outbox/{id}/retry"),
        Some(&ops),
        None,
        None,
    )
    .await;
    assert_eq!(status, 404, "only a failed message can be retried");
    let (status, _) = call(
        &server,
        "POST",
        "/v1/admin/outbox/nonexistent/retry",
        Some(&ops),
        None,
        None,
    )
    .await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[actix_rt::test]
async fn a_server_killed_before_it_could_send_delivers_the_mail_once_after_a_restart() {
    let data = tempfile::tempdir().unwrap();
    // Nothing listens here yet: the verification mail cannot leave.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed = format!("smtp://127.0.0.1:{port}");
    let env = |smtp: &str| {
        vec![
            ("PENPAL_SMTP_URL", smtp.to_string()),
            (
                "PENPAL_MAIL_FROM",
                "Penpal <no-reply@penpal.test>".to_string(),
            ),
            ("PENPAL_OUTBOX_RETRY_MS", "100".to_string()),
            ("PENPAL_OUTBOX_ATTEMPTS", "100".to_string()),
            // A message the killed node held when it died is free again after this.
            ("PENPAL_OUTBOX_LEASE_SECS", "1".to_string()),
        ]
    };
    let first_env = env(&closed);
    let first_env: Vec<(&str, &str)> = first_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let first = Process::start(data.path(), &first_env).await;
    let (status, body) = post_json(
        first.addr,
        "/v1/auth/register",
        &json!({"email": "ana@example.com", "password": "correct horse battery"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // SIGKILL: no chance to flush or finish anything.
    drop(first);

    let sink = Sink::start();
    let second_env = env(&sink.url());
    let second_env: Vec<(&str, &str)> = second_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let second = Process::start(data.path(), &second_env).await;
    let raw = sink.wait_for(1).await;
    assert_eq!(parse(&raw[0]).subject(), Some("Confirm your email address"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.files().len(), 1, "sent exactly once");
    second.stop();
}

/// `PATCH /v1/me/notifications` with `body`.
async fn settings(server: &Running, token: &str, body: Value) -> (u16, Value) {
    call(
        server,
        "PATCH",
        "/v1/me/notifications",
        Some(token),
        Some(body),
        None,
    )
    .await
}

/// Whether `category` goes out on `channel` in `settings`.
fn enabled(settings: &Value, category: &str, channel: &str) -> bool {
    settings["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == category)
        .and_then(|c| {
            c["channels"]
                .as_array()
                .unwrap()
                .iter()
                .find(|ch| ch["channel"] == channel)
        })
        .unwrap_or_else(|| panic!("no {category}/{channel} in {settings}"))["enabled"]
        .as_bool()
        .unwrap()
}

#[actix_rt::test]
async fn notification_settings_are_checked_and_the_welcome_mail_unsubscribes_in_one_click() {
    let sink = Sink::start();
    let data = tempfile::tempdir().unwrap();
    let db = penpal::store::Db::connect("mem://", None).await.unwrap();
    let mut args = serve_args(data.path(), None);
    args.mail = mail_args(Some(sink.url()));
    let server = start_on(args, db.clone()).await;
    let (status, tokens) = post(
        &server,
        "/v1/auth/register",
        json!({"email": "ana@example.com", "password": "correct horse battery",
               "display_name": "Ana", "time_zone": "Europe/Paris"}),
    )
    .await;
    assert_eq!(status, 201, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();

    let (status, s) = call(
        &server,
        "GET",
        "/v1/me/notifications",
        Some(access),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["time_zone"], "Europe/Paris");
    assert_eq!(s["hour"], 18);
    assert_eq!(s["quiet_hours"], Value::Null);
    assert!(enabled(&s, "security", "email") && enabled(&s, "account", "email"));
    assert!(!enabled(&s, "marketing", "email"), "marketing is opt-in");
    let security = &s["categories"][0];
    assert_eq!(
        (&security["category"], &security["required"]),
        (&json!("security"), &json!(true))
    );

    // Each bad field is named, and nothing is stored.
    for (body, field) in [
        (json!({"time_zone": "Mars/Olympus_Mons"}), "time_zone"),
        (json!({"hour": 24}), "hour"),
        (
            json!({"quiet_hours": {"start": "22:00", "end": "22:00"}}),
            "quiet_hours",
        ),
        (
            json!({"quiet_hours": {"start": "10pm", "end": "07:00"}}),
            "quiet_hours",
        ),
        (
            json!({"channels": [{"category": "security", "channel": "email", "enabled": false}]}),
            "channels",
        ),
        (
            json!({"channels": [{"category": "progress", "channel": "sms", "enabled": true}]}),
            "channels",
        ),
    ] {
        let (status, err) = settings(&server, access, body.clone()).await;
        assert_eq!(status, 422, "{body} → {err}");
        assert_eq!(err["error"]["field"], field, "{err}");
    }
    let (status, err) = settings(&server, access, json!({"quiet": null})).await;
    assert_eq!(status, 400, "an unknown field is refused: {err}");

    let (status, s) = settings(
        &server,
        access,
        json!({"quiet_hours": {"start": "22:00", "end": "07:30"}, "hour": 8,
               "time_zone": "America/New_York",
               "channels": [{"category": "marketing", "channel": "email", "enabled": true}]}),
    )
    .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["quiet_hours"], json!({"start": "22:00", "end": "07:30"}));
    assert_eq!(
        (&s["hour"], &s["time_zone"]),
        (&json!(8), &json!("America/New_York"))
    );
    assert!(enabled(&s, "marketing", "email"));
    let (_, s) = settings(&server, access, json!({"quiet_hours": null})).await;
    assert_eq!(s["quiet_hours"], Value::Null, "null turns quiet hours off");
    assert_eq!(s["hour"], 8, "fields left out stay");

    // Verifying the address welcomes the learner: account mail, which says how to stop it.
    let verify = parse(&sink.wait_for_mail_to("ana@example.com").await).into_owned();
    let (_, token) = link(&verify, "verify-email");
    let (status, _) = post(&server, "/v1/auth/verify-email", json!({"token": token})).await;
    assert_eq!(status, 200);
    let welcome = mail_titled(&sink, "Welcome to Penpal").await;
    assert_eq!(
        header(&welcome, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let list = header(&welcome, "List-Unsubscribe").expect("a List-Unsubscribe header");
    let url = list
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string();
    assert!(
        url.starts_with("https://penpal.test/unsubscribe?token="),
        "{url}"
    );
    assert!(
        welcome.body_text(0).unwrap().contains(&url),
        "the footer carries the same link"
    );
    let query = url.split_once('?').unwrap().1.to_string();

    // A mail client's one-click POST (RFC 8058), without signing in.
    let one_click = |q: String| {
        http()
            .post(server.url(&format!("/unsubscribe?{q}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
    };
    let resp = one_click(query.clone()).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"category": "account", "channel": "email"}));
    let (_, s) = call(
        &server,
        "GET",
        "/v1/me/notifications",
        Some(access),
        None,
        None,
    )
    .await;
    assert!(!enabled(&s, "account", "email"), "{s}");
    assert!(enabled(&s, "marketing", "email"), "other choices stay");
    // Repeating it changes nothing; an altered link is refused.
    assert_eq!(one_click(query.clone()).await.unwrap().status(), 200);
    let forged = query.replace("token=", "token=x");
    let resp = one_click(forged).await.unwrap();
    assert_eq!(resp.status(), 401);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "link_invalid");
    // A browser opening the link gets the page that asks first (a GET changes nothing).
    let page = http()
        .get(server.url(&format!("/unsubscribe?{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<html"));

    // The export has the settings; deleting the account removes them.
    let (_, export) = call(&server, "GET", "/v1/me/export", Some(access), None, None).await;
    let part = &export["notification_settings"][0];
    assert_eq!(part["hour"], 8, "{export}");
    assert_eq!(part["channels"]["account"]["email"], false, "{export}");
    assert_eq!(
        export["account"]["time_zone"], "America/New_York",
        "{export}"
    );
    let (status, _) = call(
        &server,
        "DELETE",
        "/v1/me",
        Some(access),
        Some(json!({"password": "correct horse battery"})),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let prefs = || async {
        let rows: Vec<Value> = db
            .rows("SELECT * FROM notify_pref", json!({}))
            .await
            .unwrap();
        rows.len()
    };
    assert_eq!(prefs().await, 0, "deletion removes the settings");
    // A link that outlives the account changes nothing and stores nothing.
    assert_eq!(one_click(query.clone()).await.unwrap().status(), 200);
    assert_eq!(prefs().await, 0);
}

#[actix_rt::test]
async fn a_category_turned_off_is_not_sent_but_security_mail_always_is() {
    let sink = Sink::start();
    let data = tempfile::tempdir().unwrap();
    let db = penpal::store::Db::connect("mem://", None).await.unwrap();
    let mut args = serve_args(data.path(), None);
    args.mail = mail_args(Some(sink.url()));
    let server = start_on(args, db.clone()).await;
    let tokens = sign_up(&server, "ben@example.com", None).await;
    let access = tokens["access_token"].as_str().unwrap();
    let (status, _) = settings(
        &server,
        access,
        json!({"channels": [{"category": "account", "channel": "email", "enabled": false}]}),
    )
    .await;
    assert_eq!(status, 200);
    let verify = parse(&sink.wait_for_mail_to("ben@example.com").await).into_owned();
    let (_, token) = link(&verify, "verify-email");
    assert_eq!(
        post(&server, "/v1/auth/verify-email", json!({"token": token}))
            .await
            .0,
        200
    );
    let ops = operator_token(server.addr, &db).await;
    let skipped = row_with(&server, &ops, "skipped", |r| r["to"] == "ben@example.com").await;
    assert_eq!(skipped["template"], "welcome");
    assert_eq!(skipped["last_error"], "turned off by the learner");
    // A password change is a security notice: it goes whatever the settings say.
    let (status, _) = call(
        &server,
        "POST",
        "/v1/auth/password",
        Some(access),
        Some(json!({"current_password": "correct horse battery", "new_password": "another good passphrase"})),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let subjects = within(20, "the security notice", async {
        loop {
            let subjects: Vec<String> = sink
                .files()
                .iter()
                .map(|f| {
                    let raw = std::fs::read(f).unwrap();
                    parse(&raw).subject().unwrap_or_default().to_string()
                })
                .collect();
            if subjects
                .iter()
                .any(|s| s == "Your Penpal password was changed")
            {
                return subjects;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        !subjects.iter().any(|s| s.contains("Welcome")),
        "{subjects:?}"
    );
}

/// What a loopback receiver saw: each request's path, headers and body.
#[derive(Clone, Default)]
struct Received(std::sync::Arc<std::sync::Mutex<Vec<(String, axum::http::HeaderMap, String)>>>);

impl Received {
    fn to(&self, path: &str) -> Vec<(axum::http::HeaderMap, Value)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _, _)| p == path)
            .map(|(_, h, b)| (h.clone(), serde_json::from_str(b).unwrap()))
            .collect()
    }

    async fn wait(&self, path: &str, n: usize) -> Vec<(axum::http::HeaderMap, Value)> {
        within(30, &format!("{n} requests to {path}"), async {
            loop {
                let got = self.to(path);
                if got.len() >= n {
                    return got;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
    }
}

/// A receiver on loopback standing in for a mail API (checks its key, like SendGrid's
/// `mail/send`) and a webhook endpoint (down for its first two requests).
async fn receiver() -> (u16, Received) {
    use axum::http::{HeaderMap, StatusCode, Uri};
    let seen = Received::default();
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: String| {
        let log = log.clone();
        async move {
            let path = uri.path().to_string();
            let hooks_before = log.to("/hooks/penpal").len();
            log.0
                .lock()
                .unwrap()
                .push((path.clone(), headers.clone(), body));
            match path.as_str() {
                "/v3/mail/send" => {
                    if headers.get("authorization").and_then(|v| v.to_str().ok())
                        != Some("Bearer SG.test-key")
                    {
                        return (StatusCode::UNAUTHORIZED, HeaderMap::new(), "bad key");
                    }
                    let mut h = HeaderMap::new();
                    h.insert("x-message-id", "sg-1".parse().unwrap());
                    (StatusCode::ACCEPTED, h, "")
                }
                "/hooks/penpal" if hooks_before < 2 => {
                    (StatusCode::SERVICE_UNAVAILABLE, HeaderMap::new(), "busy")
                }
                "/hooks/penpal" => (StatusCode::OK, HeaderMap::new(), "ok"),
                "/hooks/down" => (StatusCode::SERVICE_UNAVAILABLE, HeaderMap::new(), "down"),
                _ => (StatusCode::NOT_FOUND, HeaderMap::new(), "no"),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, seen)
}

/// A server whose operator file is `config`, with loopback reachable by plugins.
async fn server_with(data: &Path, smtp: String, config: &str) -> (Running, penpal::store::Db) {
    let file = data.join("penpal.toml");
    std::fs::write(&file, config).unwrap();
    let db = penpal::store::Db::connect("mem://", None).await.unwrap();
    let mut args = serve_args(data, None);
    args.mail = mail_args(Some(smtp));
    args.plugins.config = Some(file);
    args.plugins.plugin_allow_networks =
        vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
    (start_on(args, db.clone()).await, db)
}

/// The operator's section for the webhook notifier: granted `http://localhost:{granted}`,
/// posting to `url`, signing with `whsec_test`.
fn webhook_section(granted: u16, url: &str) -> String {
    format!(
        r#"
[plugins.webhook]
grant = {{ http = ["http://localhost:{granted}"], secrets = ["signing_secret"], kv = true }}
settings = {{ url = "{url}" }}
secrets = {{ signing_secret = "whsec_test" }}
"#
    )
}

fn hmac_hex(secret: &str, signed: &str) -> String {
    use hmac::Mac;
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(signed.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[actix_rt::test]
async fn the_operator_routes_categories_to_a_mail_api_and_a_signed_webhook() {
    let (port, seen) = receiver().await;
    let sink = Sink::start();
    let data = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[plugins.mail-api]
grant = {{ http = ["http://localhost:{port}"], secrets = ["api_key"], kv = true }}
settings = {{ endpoint = "http://localhost:{port}/v3/mail/send", from = "Penpal <hello@penpal.test>" }}
secrets = {{ api_key = "SG.test-key" }}
{}
[notify.routes]
security = ["mail-api"]
account = ["email", "webhook"]
"#,
        webhook_section(port, &format!("http://localhost:{port}/hooks/penpal"))
    );
    let (server, db) = server_with(data.path(), sink.url(), &config).await;
    let tokens = sign_up(&server, "ana@example.com", None).await;
    let access = tokens["access_token"].as_str().unwrap();

    // Security mail goes through the mail API: its key, both parts, no unsubscribe headers.
    let (headers, body) = seen.wait("/v3/mail/send", 1).await.remove(0);
    assert_eq!(
        body["personalizations"][0]["to"][0]["email"],
        "ana@example.com"
    );
    assert_eq!(
        body["from"],
        json!({"email": "hello@penpal.test", "name": "Penpal"})
    );
    assert_eq!(body["subject"], "Confirm your email address");
    assert_eq!(body["content"][0]["type"], "text/plain");
    assert_eq!(body["content"][1]["type"], "text/html");
    assert!(body.get("headers").is_none(), "security mail: {body}");
    assert_eq!(
        headers["idempotency-key"].to_str().unwrap(),
        body["custom_args"]["penpal_id"].as_str().unwrap()
    );
    let text = body["content"][0]["value"].as_str().unwrap();
    let token = text
        .split_whitespace()
        .find_map(|w| w.split("/verify-email#token=").nth(1))
        .expect("a verification link");
    assert_eq!(
        post(&server, "/v1/auth/verify-email", json!({"token": token}))
            .await
            .0,
        200
    );

    // The welcome goes by SMTP and by webhook: the webhook was down twice, then took it.
    sink.wait_for_mail_to("ana@example.com").await;
    let hooks = seen.wait("/hooks/penpal", 3).await;
    let delivery = |h: &axum::http::HeaderMap| h["penpal-delivery"].to_str().unwrap().to_string();
    assert!(
        hooks
            .iter()
            .all(|(h, _)| delivery(h) == delivery(&hooks[0].0)),
        "one message, retried under one id"
    );
    let (headers, body) = &hooks[2];
    assert_eq!(body["topic"], "welcome");
    assert_eq!(
        (&body["category"], &body["recipient"]),
        (&json!("account"), &json!("ana@example.com"))
    );
    // The receiver checks the signature over "t.body" with the shared secret.
    let raw = seen
        .0
        .lock()
        .unwrap()
        .iter()
        .rfind(|(p, _, _)| p == "/hooks/penpal")
        .map(|(_, _, b)| b.clone())
        .unwrap();
    let sig = headers["penpal-signature"].to_str().unwrap();
    let (t, v1) = sig
        .strip_prefix("t=")
        .and_then(|s| s.split_once(",v1="))
        .unwrap_or_else(|| panic!("{sig}"));
    let age = penpal::store::now_ms() / 1000 - t.parse::<i64>().unwrap();
    assert!((0..60).contains(&age), "a fresh timestamp: {t}");
    assert_eq!(v1, hmac_hex("whsec_test", &format!("{t}.{raw}")));
    assert_ne!(v1, hmac_hex("another secret", &format!("{t}.{raw}")));
    let ops = operator_token(server.addr, &db).await;
    let sent = row_with(&server, &ops, "sent", |r| {
        r["channel"] == "webhook" && r["to"] == "ana@example.com"
    })
    .await;
    assert_eq!(sent["attempts"], 3, "{sent}");

    // The webhook's unsubscribe link turns off that channel only.
    let unsubscribe = body["unsubscribe_url"].as_str().unwrap();
    let query = unsubscribe.split_once('?').unwrap().1;
    let resp = http()
        .post(server.url(&format!("/unsubscribe?{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (_, s) = call(
        &server,
        "GET",
        "/v1/me/notifications",
        Some(access),
        None,
        None,
    )
    .await;
    assert!(
        !enabled(&s, "account", "webhook") && enabled(&s, "account", "email"),
        "{s}"
    );
    assert_eq!(
        s["categories"][0]["channels"],
        json!([{"channel": "mail-api", "enabled": true}]),
        "security shows the channel the operator chose"
    );
}

#[actix_rt::test]
async fn a_notifier_reaching_an_ungranted_host_fails_as_the_sandbox_says() {
    let (port, seen) = receiver().await;
    let sink = Sink::start();
    let data = tempfile::tempdir().unwrap();
    // Granted one port, told to post to another.
    let config = format!(
        "{}\n[notify.routes]\nsecurity = [\"webhook\"]\n",
        webhook_section(port + 1, &format!("http://localhost:{port}/hooks/penpal"))
    );
    let (server, db) = server_with(data.path(), sink.url(), &config).await;
    sign_up(&server, "ben@example.com", None).await;
    let ops = operator_token(server.addr, &db).await;
    let failed = row_with(&server, &ops, "failed", |r| r["to"] == "ben@example.com").await;
    assert_eq!(failed["attempts"], 1, "denied is final: {failed}");
    let why = failed["last_error"].as_str().unwrap();
    assert!(
        why.contains("denied") && why.contains("not granted"),
        "{why}"
    );
    assert!(
        seen.to("/hooks/penpal").is_empty(),
        "no request left the sandbox"
    );
}

#[actix_rt::test]
async fn a_route_to_a_channel_that_is_not_installed_stops_the_server_at_start() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("penpal.toml");
    std::fs::write(&file, "[notify.routes]\nprogress = [\"pager\"]\n").unwrap();
    let mut args = serve_args(data.path(), None);
    args.plugins.config = Some(file);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = penpal::server::run(listener, args, std::future::pending())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`pager`") && err.contains("notifier plugin"),
        "{err}"
    );
}

/// Subjects of the mail `sink` received for `to`.
fn subjects_to(sink: &Sink, to: &str) -> Vec<String> {
    sink.files()
        .iter()
        .filter_map(|f| {
            let raw = std::fs::read(f).unwrap();
            let m = parse(&raw);
            (crate::common::to(&m).as_deref() == Some(to))
                .then(|| m.subject().unwrap_or_default().to_string())
        })
        .collect()
}

/// Signs up `email` in `tz`, verifies the address through the mailed link, returns the token.
async fn verified(server: &Running, sink: &Sink, email: &str, tz: &str) -> String {
    let (status, tokens) = post(
        server,
        "/v1/auth/register",
        json!({"email": email, "password": "correct horse battery", "display_name": "Ana", "time_zone": tz}),
    )
    .await;
    assert_eq!(status, 201, "{tokens}");
    let mail = parse(&sink.wait_for_mail_to(email).await).into_owned();
    let (_, token) = link(&mail, "verify-email");
    assert_eq!(
        post(server, "/v1/auth/verify-email", json!({"token": token}))
            .await
            .0,
        200
    );
    tokens["access_token"].as_str().unwrap().to_string()
}

#[actix_rt::test]
async fn the_weekly_digest_arrives_once_at_the_learners_own_hour_and_day() {
    let sink = Sink::start();
    let data = tempfile::tempdir().unwrap();
    let db = penpal::store::Db::connect("mem://", None).await.unwrap();
    let mut args = serve_args(data.path(), None);
    args.mail = mail_args(Some(sink.url()));
    args.mail.schedule_secs = 1;
    let server = start_on(args, db).await;
    // Far from the hour's end, so "now" stays the same local hour through the test.
    while jiff::Timestamp::now().as_second() % 3600 > 3600 - 40 {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let tokyo = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::get("Asia/Tokyo").unwrap());
    let day = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ][tokyo.weekday().to_monday_zero_offset() as usize];

    let ana = verified(&server, &sink, "ana@example.com", "Asia/Tokyo").await;
    let ben = verified(&server, &sink, "ben@example.com", "Asia/Tokyo").await;
    // Ana practises once, then asks for her digest now (her hour, her day, in Tokyo); Ben
    // asks for it twelve hours away.
    let (status, conv) = call(
        &server,
        "POST",
        "/v1/conversations",
        Some(&ana),
        Some(json!({"mode": "tutor", "language": "fr"})),
        None,
    )
    .await;
    assert_eq!(status, 201, "{conv}");
    let path = format!(
        "/v1/conversations/{}/messages",
        conv["id"].as_str().unwrap()
    );
    let (status, turn) = call(
        &server,
        "POST",
        &path,
        Some(&ana),
        Some(json!({"text": "Je suis allé au marché."})),
        None,
    )
    .await;
    assert_eq!(status, 201, "{turn}");
    for (token, hour) in [(&ana, tokyo.hour()), (&ben, (tokyo.hour() + 12) % 24)] {
        let (status, s) = settings(&server, token, json!({"hour": hour, "digest_day": day})).await;
        assert_eq!(status, 200, "{s}");
        assert_eq!(s["digest_day"], day);
    }

    let digest = mail_titled(&sink, "Your week on Penpal").await;
    assert_eq!(to(&digest).as_deref(), Some("ana@example.com"));
    let text = digest.body_text(0).unwrap();
    assert!(
        text.contains("You wrote one message to your tutor this week."),
        "{text}"
    );
    assert!(text.contains("Your streak: one day."), "{text}");
    assert!(
        header(&digest, "List-Unsubscribe").is_some(),
        "progress mail can be turned off in one click"
    );
    // Three more looks at the schedule send nothing twice, and nothing to Ben.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let digests = |to: &str| {
        subjects_to(&sink, to)
            .iter()
            .filter(|s| *s == "Your week on Penpal")
            .count()
    };
    assert_eq!(digests("ana@example.com"), 1);
    assert_eq!(digests("ben@example.com"), 0);
}

#[actix_rt::test]
async fn a_sign_in_from_a_new_device_mails_the_owner_once() {
    let sink = Sink::start();
    let data = tempfile::tempdir().unwrap();
    let server = server(data.path(), Some(sink.url())).await;
    let account = json!({"email": "ana@example.com", "password": "correct horse battery"});
    let phone = "PenpalApp/2.1 (Android 14)";
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    let api_login = |agent: &'static str| {
        http()
            .post(server.url("/v1/auth/login"))
            .header("user-agent", agent)
            .json(&account)
            .send()
    };
    let resp = http()
        .post(server.url("/v1/auth/register"))
        .header("user-agent", phone)
        .json(&account)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    // The device it signed up on is known; a wrong password is not a sign-in.
    assert_eq!(api_login(phone).await.unwrap().status(), 200);
    let wrong = json!({"email": "ana@example.com", "password": "not the password"});
    let resp = http()
        .post(server.url("/v1/auth/login"))
        .header("user-agent", firefox)
        .json(&wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(api_login(firefox).await.unwrap().status(), 200);
    assert_eq!(api_login(firefox).await.unwrap().status(), 200);

    let notice = mail_titled(&sink, "New sign-in to your Penpal account").await;
    let text = notice.body_text(0).unwrap();
    assert!(
        text.contains("Device: Firefox on Linux. Address: 127.0.0.1."),
        "{text}"
    );
    assert!(text.contains("/forgot-password"), "{text}");
    assert!(
        header(&notice, "List-Unsubscribe").is_none(),
        "security mail"
    );

    // A browser is known by its cookie: the first web sign-in names it, the next is quiet.
    let web_login = |cookie: Option<String>| {
        let mut req = http()
            .post(server.url("/v1/auth/web/login"))
            .header("user-agent", firefox)
            .json(&account);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send()
    };
    let resp = web_login(None).await.unwrap();
    assert_eq!(resp.status(), 200);
    let device = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("penpal_device="))
        .expect("the browser is named")
        .to_string();
    assert!(
        device.contains("HttpOnly") && device.contains("Path=/v1/auth"),
        "{device}"
    );
    let pair = device.split(';').next().unwrap().to_string();
    let resp = web_login(Some(pair)).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()
            .get_all("set-cookie")
            .iter()
            .all(|v| !v.to_str().unwrap().starts_with("penpal_device=")),
        "a named browser keeps its name"
    );
    // Let the outbox send what it would, then count: the API's Firefox once, the new
    // browser once — not its second visit.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let notices = subjects_to(&sink, "ana@example.com")
        .iter()
        .filter(|s| *s == "New sign-in to your Penpal account")
        .count();
    assert_eq!(notices, 2);
}

#[actix_rt::test]
async fn changing_the_address_takes_effect_through_the_new_one_and_tells_both() {
    let sink = Sink::start();
    let data = tempfile::tempdir().unwrap();
    let server = server(data.path(), Some(sink.url())).await;
    let access = verified(&server, &sink, "ana@old.example", "UTC").await;
    let change = |body: Value| {
        call(
            &server,
            "POST",
            "/v1/me/email",
            Some(&access),
            Some(body),
            None,
        )
    };
    sign_up(&server, "ben@example.com", None).await;

    for (body, status, field) in [
        (
            json!({"email": "not an address", "password": "correct horse battery"}),
            422,
            Some("email"),
        ),
        (
            json!({"email": "ana@old.example", "password": "correct horse battery"}),
            422,
            Some("email"),
        ),
        (
            json!({"email": "ana@new.example", "password": "wrong password"}),
            422,
            Some("password"),
        ),
        (
            json!({"email": "ben@example.com", "password": "correct horse battery"}),
            409,
            None,
        ),
    ] {
        let (got, err) = change(body.clone()).await;
        assert_eq!(got, status, "{body} → {err}");
        if let Some(field) = field {
            assert_eq!(err["error"]["field"], field, "{err}");
        }
    }
    let (status, _) =
        change(json!({"email": "Ana@New.example", "password": "correct horse battery"})).await;
    assert_eq!(status, 202);
    // Until the link is followed, nothing changes.
    let (_, me) = call(&server, "GET", "/v1/me", Some(&access), None, None).await;
    assert_eq!(me["email"], "ana@old.example");

    let confirm = parse(&sink.wait_for_mail_to("ana@new.example").await).into_owned();
    assert_eq!(confirm.subject(), Some("Confirm your new email address"));
    let (_, token) = link(&confirm, "verify-email");
    let (status, body) = post(&server, "/v1/auth/verify-email", json!({"token": token})).await;
    assert_eq!(status, 200, "{body}");
    let (_, me) = call(&server, "GET", "/v1/me", Some(&access), None, None).await;
    assert_eq!(
        (&me["email"], &me["email_verified"]),
        (&json!("ana@new.example"), &json!(true))
    );
    assert_eq!(
        post(&server, "/v1/auth/verify-email", json!({"token": token}))
            .await
            .0,
        401,
        "the link works once"
    );

    // Both addresses are told; the old one can act if it was not its owner.
    let told = |to: &'static str| {
        let sink = &sink;
        async move {
            within(20, "the email-changed notice", async {
                loop {
                    if subjects_to(sink, to)
                        .iter()
                        .any(|s| s == "Your Penpal email address was changed")
                    {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
            .await
        }
    };
    told("ana@old.example").await;
    told("ana@new.example").await;
    // The new address signs in; the old one no longer does.
    let login = |email: &str| {
        post(
            &server,
            "/v1/auth/login",
            json!({"email": email, "password": "correct horse battery"}),
        )
    };
    assert_eq!(login("ana@new.example").await.0, 200);
    assert_eq!(login("ana@old.example").await.0, 401);
}

#[actix_rt::test]
async fn a_stalled_or_dropped_smtp_connection_is_retried_until_the_mail_goes_once() {
    let sink = Sink::start();
    let data = tempfile::tempdir().unwrap();
    let db = penpal::store::Db::connect("mem://", None).await.unwrap();
    let mut args = serve_args(data.path(), None);
    args.mail = mail_args(Some(sink.url()));
    let server = start_on(args, db.clone()).await;
    // The first two deliveries stall past the 2 s SMTP timeout, or lose the connection
    // before the server's answer; the third goes through.
    sign_up(&server, "cy+stall2@example.com", None).await;
    sign_up(&server, "dee+drop2@example.com", None).await;
    for to in ["cy+stall2@example.com", "dee+drop2@example.com"] {
        sink.wait_for_mail_to(to).await;
    }
    let ops = operator_token(server.addr, &db).await;
    let sent = outbox(&server, &ops, "sent").await;
    for to in ["cy+stall2@example.com", "dee+drop2@example.com"] {
        let row = sent.iter().find(|r| r["to"] == to).unwrap();
        assert_eq!(row["attempts"], 3, "{row}");
        assert_eq!(subjects_to(&sink, to).len(), 1, "{to} got it once");
    }
}

#[actix_rt::test]
async fn a_notifier_that_stays_unavailable_is_retried_then_recorded_as_failed() {
    let (port, seen) = receiver().await;
    let sink = Sink::start();
    let data = tempfile::tempdir().unwrap();
    let config = format!(
        "{}\n[notify.routes]\nsecurity = [\"email\", \"webhook\"]\n",
        webhook_section(port, &format!("http://localhost:{port}/hooks/down"))
    );
    let (server, db) = server_with(data.path(), sink.url(), &config).await;
    sign_up(&server, "eve@example.com", None).await;
    let ops = operator_token(server.addr, &db).await;
    let failed = row_with(&server, &ops, "failed", |r| r["to"] == "eve@example.com").await;
    assert_eq!(failed["channel"], "webhook");
    assert_eq!(failed["attempts"], 3, "{failed}");
    assert!(
        failed["last_error"]
            .as_str()
            .unwrap()
            .contains("unavailable: the receiver answered 503"),
        "{failed}"
    );
    let to_eve = seen
        .to("/hooks/down")
        .into_iter()
        .filter(|(_, body)| body["recipient"] == "eve@example.com")
        .count();
    assert_eq!(to_eve, 3, "one request per attempt");
    // Email, the category's other channel, went on its own.
    sink.wait_for_mail_to("eve@example.com").await;
}
