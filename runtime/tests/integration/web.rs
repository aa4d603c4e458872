//! The web app in a real browser: Debian's Chromium, driven by `playwright-core` from
//! `runtime/tests/web/` (installed by `cargo xtask test`), against a real server with the
//! first-party plugins and the scripted model streaming over HTTP. The browser side lives in
//! `web/journey.mjs`; this test starts the server, runs it, and fails with its output.
//!
//! Screenshots of every page, desktop and phone, land in `target/web-screenshots/` (the
//! marketplace's in `target/web-screenshots-marketplace/`).

use std::process::Command;
use std::time::Duration;

use crate::common::*;
use penpal::llm::scripted::{self, Script};

/// Where Chromium is, as the Debian package installs it unless `CHROMIUM` says otherwise.
fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// The browser tests' directory, once its npm packages and Chromium are there.
fn browser_ready() -> std::path::PathBuf {
    let dir = repo().join("runtime/tests/web");
    assert!(
        dir.join("node_modules/playwright-core").is_dir()
            && dir.join("node_modules/axe-core").is_dir(),
        "the browser test's npm packages are missing: run `cargo xtask test` (it runs `npm ci` in {})",
        dir.display()
    );
    assert!(
        std::path::Path::new(&chromium()).exists(),
        "Chromium is missing at {}: run `cargo xtask test` (it installs Debian's `chromium`) or set CHROMIUM",
        chromium()
    );
    dir
}

#[actix_rt::test]
async fn a_visitor_becomes_a_learner_in_the_browser() {
    let dir = browser_ready();

    // A model that streams visibly: a short pause between chunks, as a real one has.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let llm = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let script = Script {
            first_byte: Duration::from_millis(50),
            between_chunks: Duration::from_millis(40),
        };
        axum::serve(scripted::nodelay(listener), scripted::router(script)).await
    });
    let data = tempfile::tempdir().unwrap();
    // Mail goes to a real SMTP server; the journey reads it there and follows its links.
    let sink = Sink::start();
    // Payments go to the Stripe simulator, whose checkout page the journey pays on.
    let stripe = penpal::billing::simulator::Simulator::start(
        "sk_test_web",
        "whsec_web",
        "http://127.0.0.1:9/",
    )
    .await
    .unwrap();
    let port = stripe.addr.port();
    let config = data.path().join("penpal.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[billing]
provider = "stripe"
[billing.plans.free]
names = {{ en = "Free", fr = "Gratuit" }}
modes = ["tutor", "conversation"]
[billing.plans.premium]
names = {{ en = "Premium", fr = "Premium" }}
interval = "month"
trial_days = 30
prices = {{ EUR = 2000, USD = 2200, GBP = 1800 }}

[plugins.stripe]
grant = {{ http = ["http://localhost:{port}"], secrets = ["api_key", "webhook_secret"] }}
settings = {{ api_base = "http://localhost:{port}" }}
secrets = {{ api_key = "sk_test_web", webhook_secret = "whsec_web" }}
"#
        ),
    )
    .unwrap();
    let mut args = serve_args(data.path(), Some(llm));
    args.mail.smtp_url = Some(penpal::plugins::Secret::new(sink.url()));
    args.plugins.config = Some(config);
    args.plugins.plugin_allow_networks =
        vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
    let db = penpal::store::Db::connect("mem://", None).await.unwrap();
    let server = start_on(args, db.clone()).await;
    // A school with an invitation link for another administrator, as its first admin would
    // hand it out.
    let school = penpal::lms::schools::create(&db, "Lycée Hugo", 30, Some("premium"), "ops")
        .await
        .unwrap();
    let invitation = penpal::lms::invitations::create(
        &db,
        &school,
        penpal::lms::schools::SchoolRole::Admin,
        None,
        50,
        14,
        "ops",
    )
    .await
    .unwrap();
    let join_url = server.url(&format!("/join?token={}", invitation.token));
    // The school's Moodle, registered; its course pages launch penpal.
    let lms = penpal::lms::simulator::Platform::start(
        penpal::lms::simulator::Profile::Moodle,
        "penpal-web",
    )
    .await
    .unwrap();
    penpal::lms::lti::platforms::create(
        &db,
        &school,
        &penpal::lms::lti::platforms::NewPlatform {
            name: "Moodle".into(),
            plugin: "moodle".into(),
            issuer: lms.issuer(),
            client_id: lms.client_id().into(),
            deployment_ids: vec![lms.deployment_id().into()],
            auth_url: lms.auth_url(),
            token_url: lms.token_url(),
            jwks_url: lms.jwks_url(),
        },
    )
    .await
    .unwrap();
    lms.register_tool(&server.url("/lti/login"), &server.url("/lti/launch"));
    lms.tool_jwks(&server.url("/.well-known/jwks.json"));
    let lms_url = lms.configuration_url();
    let lms_url = lms_url.split("/mod/").next().unwrap().to_string();
    // The school's own accounts: an identity provider its admin sets up in settings.
    let idp = penpal::lms::sso::simulator::Idp::start("penpal-web", "web-idp-secret")
        .await
        .unwrap();
    idp.allow_redirect(&server.url("/sso/callback"));
    idp.add_person("lea-1", "lea.martin@hugo.example", "Léa Martin", true);
    let idp_url = idp.issuer();
    stripe.send_to(&server.url("/v1/billing/webhooks/stripe"));
    let maildir = sink.dir().to_path_buf();

    let shots = repo().join("target/web-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let url = server.url("");
    let out = within(
        600,
        "the browser journey",
        tokio::task::spawn_blocking(move || {
            Command::new("node")
                .arg("journey.mjs")
                .current_dir(&dir)
                .env("PENPAL_URL", url)
                .env("CHROMIUM", chromium())
                .env("SCREENSHOTS", &shots)
                .env("MAILDIR", &maildir)
                .env("JOIN_URL", join_url)
                .env("LMS_URL", lms_url)
                .env("IDP_URL", idp_url)
                .output()
                .expect("node runs (Node.js 20 or later is needed)")
        }),
    )
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    server.stop().await;
    assert!(
        out.status.success(),
        "the browser journey failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("journey complete"), "{stdout}");
    // The learner's grade from the course went back to Moodle's gradebook.
    let scores = within(30, "the grade reaches Moodle", async {
        loop {
            let s = lms.scores();
            if !s.is_empty() {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert_eq!(
        scores[0].1["userId"],
        lms.user(2, "Ana", "Lima", false).id.as_str()
    );
    assert_eq!(lms.line_items().len(), 1, "the column the placement made");
    // And so did the teacher's override, with its comment.
    let scores = within(30, "the override reaches Moodle", async {
        loop {
            let s = lms.scores();
            if s.len() > 1 {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert_eq!(scores[1].1["comment"], "Très bien, continue !");
}

/// The `name=value` of a `Set-Cookie` named `name`, and its attributes.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<(String, String)> {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| {
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            (
                pair.split_once('=').unwrap().1.to_string(),
                attrs.to_string(),
            )
        })
}

/// A browser session as the web app holds it: the two cookies.
struct Browser {
    refresh: String,
    csrf: String,
}

impl Browser {
    fn from(resp: &reqwest::Response) -> Browser {
        let (refresh, attrs) = set_cookie(resp, "penpal_refresh").expect("a refresh cookie");
        assert!(attrs.contains("HttpOnly"), "{attrs}");
        assert!(attrs.contains("SameSite=Strict"), "{attrs}");
        assert!(attrs.contains("Path=/v1/auth/web"), "{attrs}");
        assert!(
            attrs.contains("; Secure"),
            "HTTPS only, by default: {attrs}"
        );
        let (csrf, attrs) = set_cookie(resp, "penpal_csrf").expect("a CSRF cookie");
        assert!(attrs.contains("; Secure"), "{attrs}");
        assert!(
            !attrs.contains("HttpOnly"),
            "the page must read the CSRF cookie"
        );
        Browser { refresh, csrf }
    }

    fn cookie(&self) -> String {
        format!("penpal_refresh={}; penpal_csrf={}", self.refresh, self.csrf)
    }
}

/// Plain-http development is the operator's explicit choice; the cookies then say nothing of
/// HTTPS.
#[actix_rt::test]
async fn secure_cookies_can_be_turned_off_for_plain_http_development() {
    let data = tempfile::tempdir().unwrap();
    let mut args = serve_args(data.path(), None);
    args.app.secure_cookies = false;
    let server = start(args).await;
    let resp = http()
        .post(server.url("/v1/auth/web/register"))
        .json(&serde_json::json!({"email": "dev@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    for name in ["penpal_refresh", "penpal_csrf"] {
        let (_, attrs) = set_cookie(&resp, name).unwrap();
        assert!(!attrs.contains("Secure"), "{attrs}");
    }
    server.stop().await;
}

#[actix_rt::test]
async fn browser_sessions_keep_the_refresh_token_in_a_cookie_guarded_against_csrf() {
    let data = tempfile::tempdir().unwrap();
    let server = start(serve_args(data.path(), None)).await;
    let http = http();
    let post = |path: &str| http.post(server.url(path));

    let resp = post("/v1/auth/web/register")
        .json(&serde_json::json!({"email": "web@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let first = Browser::from(&resp);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(
        body.get("refresh_token").is_none(),
        "page scripts never see the refresh token: {body}"
    );
    assert_eq!(body["csrf_token"], first.csrf.as_str());
    let me = http
        .get(server.url("/v1/me"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    // A cross-site form or script cannot refresh: no header, a wrong one, or another origin.
    let refresh = |cookie: String, csrf: Option<&str>, origin: Option<&str>| {
        let mut r = post("/v1/auth/web/refresh").header("cookie", cookie);
        if let Some(c) = csrf {
            r = r.header("x-csrf-token", c);
        }
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send()
    };
    for (csrf, origin) in [
        (None, None),
        (Some("forged"), None),
        (Some(first.csrf.as_str()), Some("https://evil.example")),
    ] {
        let resp = refresh(first.cookie(), csrf, origin).await.unwrap();
        assert_eq!(resp.status(), 403, "csrf {csrf:?}, origin {origin:?}");
        let err: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["code"], "forbidden", "{err}");
    }
    let no_cookie = refresh(String::new(), Some(&first.csrf), None)
        .await
        .unwrap();
    assert_eq!(no_cookie.status(), 401);

    // Penpal's own page rotates the cookie.
    let own_origin = server.url("");
    let resp = refresh(first.cookie(), Some(&first.csrf), Some(&own_origin))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let second = Browser::from(&resp);
    assert_ne!(second.refresh, first.refresh);
    assert_ne!(second.csrf, first.csrf);

    // The old cookie replayed is theft: refused, cleared, and the whole session ends.
    let resp = refresh(first.cookie(), Some(&first.csrf), None)
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let (cleared, attrs) = set_cookie(&resp, "penpal_refresh").unwrap();
    assert!(cleared.is_empty() && attrs.contains("Max-Age=0"), "{attrs}");
    let err: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "refresh_reused");
    let resp = refresh(second.cookie(), Some(&second.csrf), None)
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "the thief's session ended too");

    // Signing out needs the CSRF token too, then ends the session for good.
    let resp = post("/v1/auth/web/login")
        .json(&serde_json::json!({"email": "web@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let third = Browser::from(&resp);
    let resp = post("/v1/auth/web/logout")
        .header("cookie", third.cookie())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = post("/v1/auth/web/logout")
        .header("cookie", third.cookie())
        .header("x-csrf-token", &third.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert!(
        set_cookie(&resp, "penpal_refresh")
            .unwrap()
            .1
            .contains("Max-Age=0")
    );
    let resp = refresh(third.cookie(), Some(&third.csrf), None)
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    server.stop().await;
}

#[actix_rt::test]
async fn pages_and_assets_are_served_with_security_headers() {
    let data = tempfile::tempdir().unwrap();
    let server = start(serve_args(data.path(), None)).await;
    let http = http();
    let get = |path: &str, accept: &str| {
        http.get(server.url(path))
            .header("accept", accept)
            .header("accept-encoding", "gzip")
            .send()
    };

    let page = get("/chat/0123abcd", "text/html").await.unwrap();
    assert_eq!(page.status(), 200);
    let h = page.headers().clone();
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["content-encoding"], "gzip", "pages are compressed");

    // A revalidated page keeps the page policy (a bare 304 once got the API's, which blocks
    // every script on reload).
    let etag = h["etag"].to_str().unwrap().to_string();
    let again = http
        .get(server.url("/"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["content-security-policy"], csp);

    let js = get("/assets/js/app.js", "*/*").await.unwrap();
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(js.headers()["content-encoding"], "gzip");

    // Unknown addresses: a page for browsers, JSON for API clients.
    let missing = get("/nowhere", "text/html,*/*").await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(
        missing.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let api = get("/v1/nowhere", "text/html").await.unwrap();
    assert_eq!(api.status(), 404);
    let body: serde_json::Value = serde_json::from_slice(&decompress(api).await).unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    let asset = get("/assets/secret.txt", "*/*").await.unwrap();
    assert_eq!(asset.status(), 404);

    // The API says nothing may run from its answers.
    let version = get("/v1/version", "application/json").await.unwrap();
    assert_eq!(
        version.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
    server.stop().await;
}

/// A body, gunzipped when the server compressed it.
async fn decompress(resp: reqwest::Response) -> Vec<u8> {
    let gz = resp
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v == "gzip");
    let bytes = resp.bytes().await.unwrap().to_vec();
    if !gz {
        return bytes;
    }
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out).unwrap();
    out
}

#[actix_rt::test]
async fn a_publisher_publishes_an_operator_grants_and_a_learner_chats_in_the_browser() {
    let dir = browser_ready();
    let data = tempfile::tempdir().unwrap();
    let (server, _db, sink, _ops) = crate::schools::server(data.path()).await;
    let base = server.url("");
    // Ada has a confirmed address; she becomes a publisher in the browser.
    crate::marketplace::verified(&base, &sink, "ada@example.com").await;
    new_learner(&base, "B1").await;

    // Her key and her package, signed on her machine with the CLI.
    let key = data.path().join("ada.pem");
    let (ok, out, err) =
        crate::marketplace::cli(&["key", "generate", "--out", key.to_str().unwrap()], &[]).await;
    assert!(ok, "{err}");
    let public = out
        .lines()
        .find_map(|l| l.strip_prefix("public key"))
        .unwrap()
        .trim()
        .to_string();
    let package = data.path().join("ada-camille");
    std::fs::create_dir_all(&package).unwrap();
    let (manifest, wasm) = crate::marketplace::package("tutor", "ada-camille", "1.0.0", "ada");
    let manifest = manifest.replacen(
        "[tutor]",
        "[capabilities]\nkv = true\nllm = true\n\n[tutor]",
        1,
    );
    std::fs::write(package.join("penpal-plugin.toml"), manifest).unwrap();
    std::fs::write(package.join("plugin.wasm"), wasm).unwrap();
    std::fs::write(package.join("README.md"), "# Camille\n\nA patient tutor.\n").unwrap();
    let (ok, _, err) = crate::marketplace::cli(
        &[
            "plugin",
            "sign",
            package.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert!(ok, "{err}");
    let archive = package.join("ada-camille-1.0.0.penpal");

    let shots = repo().join("target/web-screenshots-marketplace");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let out = within(
        600,
        "the marketplace browser journey",
        tokio::task::spawn_blocking(move || {
            Command::new("node")
                .arg("marketplace.mjs")
                .current_dir(&dir)
                .env("PENPAL_URL", base)
                .env("CHROMIUM", chromium())
                .env("SCREENSHOTS", &shots)
                .env("PENPAL_BIN", env!("CARGO_BIN_EXE_penpal"))
                .env("ARCHIVE", archive)
                .env("PUBLIC_KEY", public)
                .output()
                .expect("node runs (Node.js 20 or later is needed)")
        }),
    )
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    server.stop().await;
    assert!(
        out.status.success(),
        "the marketplace browser journey failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("marketplace journey complete"), "{stdout}");
}
