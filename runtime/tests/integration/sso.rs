//! Schools' own sign-in against the identity provider simulator: a school admin sets the
//! provider (discovery read and checked, the secret sealed), the sign-in page finds the school
//! by an address's domain, and a learner signs in through the provider — PKCE, state bound to
//! the browser, the id token checked — arriving as a learner of the school, the same account
//! each time. Every bad answer is refused with nothing stored, and no school reads or claims
//! another's sign-in.

use std::collections::HashMap;

use crate::common::*;
use crate::lti::{hops, local, signed_in};
use crate::schools::{Client, account, school};
use penpal::lms::sso::simulator::Idp;
use serde_json::{Value, json};

const SECRET: &str = "idp-client-secret-4f2a";

async fn server(data: &std::path::Path) -> (Running, penpal::store::Db, Sink, Client) {
    crate::schools::server_with(data, 300, |args| {
        args.plugins.plugin_allow_networks = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await
}

async fn idp() -> Idp {
    let idp = Idp::start("penpal-hugo", SECRET).await.unwrap();
    idp.allow_redirect("https://penpal.test/sso/callback");
    idp.add_person("u-ada", "ada@hugo.example", "Ada Lovelace", true);
    idp.add_person("u-alan", "alan@hugo.example", "Alan Turing", false);
    idp
}

/// How a browser's round trip ended: the status and location of penpal's last answer.
struct Trip {
    status: u16,
    location: String,
}

/// Starts a sign-in at `start` (a penpal path), goes through the provider (signing in the
/// hinted person, or the first one listed), and comes back with the cookie penpal set,
/// unless `keep_cookie` is false.
async fn trip(base: &str, start: &str, keep_cookie: bool) -> Trip {
    let (callback, cookie) = to_provider_and_back(base, start, "/as/").await;
    back_at_penpal(&callback, keep_cookie.then_some(cookie.as_str())).await
}

/// The provider's answer to a sign-in begun at `start`: its redirect back to penpal (rewritten
/// to the test server) and the state cookie penpal set. When the provider shows its page, the
/// first link whose address holds `choose` is followed (`/as/` signs someone in, `/cancel`).
async fn to_provider_and_back(base: &str, start: &str, choose: &str) -> (String, String) {
    let resp = hops().get(format!("{base}{start}")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.starts_with("penpal_sso=")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let to = resp.headers()["location"].to_str().unwrap().to_string();
    let q: HashMap<_, _> = reqwest::Url::parse(&to)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["redirect_uri"], "https://penpal.test/sso/callback");
    assert_eq!(q["scope"], "openid email profile");
    assert_eq!(
        cookie.split(';').next().unwrap(),
        format!("penpal_sso={}", q["state"]),
        "the state is bound to the browser"
    );
    let mut at = hops().get(&to).send().await.unwrap();
    if at.status().as_u16() == 200 {
        let page = at.text().await.unwrap();
        let href = page
            .split("href=\"")
            .find(|h| h.split('"').next().unwrap().contains(choose))
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let origin = reqwest::Url::parse(&to)
            .unwrap()
            .origin()
            .ascii_serialization();
        at = hops().get(format!("{origin}{href}")).send().await.unwrap();
    }
    assert_eq!(at.status().as_u16(), 303, "{}", at.text().await.unwrap());
    let back = at.headers()["location"].to_str().unwrap().to_string();
    let state_cookie = cookie.split(';').next().unwrap().to_string();
    (local(base, &back), state_cookie)
}

async fn back_at_penpal(callback: &str, cookie: Option<&str>) -> Trip {
    let mut req = hops().get(callback);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let resp = req.send().await.unwrap();
    Trip {
        status: resp.status().as_u16(),
        location: resp.headers()["location"].to_str().unwrap().to_string(),
    }
}

/// Rows that a sign-in would store.
async fn stored(db: &penpal::store::Db) -> (usize, usize, usize) {
    let count = |table: &str| {
        let db = db.clone();
        let q = format!("SELECT VALUE id FROM {table}");
        async move { db.rows::<Value>(&q, json!({})).await.unwrap().len() }
    };
    (
        count("user").await,
        count("lti_user").await,
        count("membership").await,
    )
}

/// A school with `seats`, its admin, and its provider set with the domain hugo.example.
async fn school_with_provider(
    base: &str,
    ops: &Client,
    sink: &Sink,
    idp: &Idp,
    seats: i64,
) -> (String, Client) {
    let (id, admin) = school(base, ops, sink, "Lycée Hugo", "roux@example.com", seats).await;
    let (status, set) = admin
        .call(
            "PUT",
            &format!("/v1/schools/{id}/sso"),
            Some(
                json!({"issuer": idp.issuer(), "client_id": "penpal-hugo", "client_secret": SECRET,
                "email_domains": ["Hugo.example"]}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{set}");
    (id, admin)
}

#[actix_rt::test]
async fn a_school_sets_its_provider_and_its_learners_sign_in_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let (server, db, sink, ops) = server(dir.path()).await;
    let base = server.url("");
    let idp = idp().await;
    let (id, admin) = school(&base, &ops, &sink, "Lycée Hugo", "roux@example.com", 5).await;
    let path = format!("/v1/schools/{id}/sso");

    let (status, before) = admin.call("GET", &path, None).await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(before["provider"], Value::Null);
    assert_eq!(before["redirect_uri"], "https://penpal.test/sso/callback");
    assert_eq!(
        before["sign_in_url"],
        format!("https://penpal.test/sso/{id}/login")
    );

    // A new provider needs its secret; an issuer that publishes no configuration is refused.
    let body = |issuer: String, secret: Option<&str>| {
        let mut b = json!({"issuer": issuer, "client_id": "penpal-hugo", "email_domains": ["Hugo.example", "hugo.example"]});
        if let Some(s) = secret {
            b["client_secret"] = json!(s);
        }
        b
    };
    let (status, err) = admin
        .call("PUT", &path, Some(body(idp.issuer(), None)))
        .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("client_secret")),
        "{err}"
    );
    let (status, err) = admin
        .call(
            "PUT",
            &path,
            Some(body(format!("{}/elsewhere", idp.issuer()), Some(SECRET))),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is the issuer right?"),
        "{err}"
    );
    let (status, err) = admin
        .call(
            "PUT",
            &path,
            Some(json!({"issuer": "http://192.0.2.1", "client_id": "c", "client_secret": "s"})),
        )
        .await;
    assert_eq!(status, 422, "a non-public plain-http issuer: {err}");
    let mut bad_domain = body(idp.issuer(), Some(SECRET));
    bad_domain["email_domains"] = json!(["not a domain"]);
    let (status, err) = admin.call("PUT", &path, Some(bad_domain)).await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("email_domains")),
        "{err}"
    );

    let (status, set) = admin
        .call("PUT", &path, Some(body(idp.issuer(), Some(SECRET))))
        .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["provider"]["issuer"], idp.issuer());
    assert_eq!(set["provider"]["domains"], json!(["hugo.example"]));
    assert_eq!(set["provider"]["auth_method"], "client_secret_basic");
    assert!(
        !set.to_string().contains(SECRET),
        "the secret is never shown: {set}"
    );
    let sealed: Option<String> = db
        .one(
            "SELECT VALUE secret_sealed FROM school_sso LIMIT 1",
            json!({}),
        )
        .await
        .unwrap();
    assert!(
        !sealed.unwrap().contains(SECRET),
        "the secret is stored sealed"
    );
    // Changing the provider keeps the secret when none is given.
    let (status, kept) = admin
        .call("PUT", &path, Some(body(idp.issuer(), None)))
        .await;
    assert_eq!(status, 200, "{kept}");

    // The sign-in page finds the school by the address's domain.
    let found: Value = http()
        .get(format!("{base}/v1/sso/discover?email=ada@HUGO.example"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&found["school"], &found["name"]),
        (&json!(id), &json!("Lycée Hugo"))
    );
    let start = found["url"].as_str().unwrap().to_string();
    assert!(
        start.starts_with(&format!("/sso/{id}/login?login_hint=ada%40HUGO.example")),
        "{start}"
    );
    let none = http()
        .get(format!(
            "{base}/v1/sso/discover?email=ada@elsewhere.example"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status().as_u16(), 404);

    // Ada signs in: she arrives as a learner of the school, named as the provider says.
    let t = trip(&base, &start, true).await;
    assert_eq!(t.status, 303);
    assert!(t.location.starts_with("/arrive?code="), "{}", t.location);
    let (ada, next) = signed_in(&base, &t.location).await;
    assert_eq!(next, "/classes");
    let (_, me) = ada.call("GET", "/v1/me", None).await;
    assert_eq!(me["email"], "ada@hugo.example", "{me}");
    assert_eq!(me["profile"]["display_name"], "Ada Lovelace");
    let (_, schools) = ada.call("GET", "/v1/schools", None).await;
    assert_eq!(schools[0]["id"], json!(id), "{schools}");
    assert_eq!(schools[0]["role"], "learner", "{schools}");

    // Again, with a page to go on to: the same account. The callback cannot be replayed.
    let (callback, cookie) = to_provider_and_back(
        &base,
        &format!("/sso/{id}/login?login_hint=ada@hugo.example&next=/chat"),
        "/as/",
    )
    .await;
    let t = back_at_penpal(&callback, Some(&cookie)).await;
    let (again, next) = signed_in(&base, &t.location).await;
    assert_eq!(next, "/chat");
    let (_, me_again) = again.call("GET", "/v1/me", None).await;
    assert_eq!(me_again["id"], me["id"]);
    let replay = back_at_penpal(&callback, Some(&cookie)).await;
    assert_eq!(replay.location, "/login?sso=expired");
    // An outside page to go on to becomes the Classes page.
    let t = trip(
        &base,
        &format!("/sso/{id}/login?login_hint=ada@hugo.example&next=//evil.example"),
        true,
    )
    .await;
    let (_, next) = signed_in(&base, &t.location).await;
    assert_eq!(next, "/classes");

    // Alan's address is not verified by the provider: his account does not take it.
    let t = trip(&base, &format!("/sso/{id}/login"), true).await;
    assert!(t.location.starts_with("/arrive?"), "{}", t.location);
    let t = trip(
        &base,
        &format!("/sso/{id}/login?login_hint=alan@hugo.example"),
        true,
    )
    .await;
    let (alan, _) = signed_in(&base, &t.location).await;
    let (_, alan_me) = alan.call("GET", "/v1/me", None).await;
    assert_ne!(alan_me["email"], "alan@hugo.example", "{alan_me}");
    assert_eq!(alan_me["profile"]["display_name"], "Alan Turing");

    // The link is in Ada's export.
    let (_, export) = ada.call("GET", "/v1/me/export", None).await;
    assert_eq!(
        export["platform_accounts"][0]["issuer"],
        idp.issuer(),
        "{}",
        export["platform_accounts"]
    );

    // Removed: the sign-in page no longer finds the school, and its link says so.
    assert_eq!(admin.call("DELETE", &path, None).await.0, 204);
    assert_eq!(admin.call("DELETE", &path, None).await.0, 404);
    let gone = http()
        .get(format!("{base}/v1/sso/discover?email=ada@hugo.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status().as_u16(), 404);
    let resp = hops()
        .get(format!("{base}/sso/{id}/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["location"], "/login?sso=not_set");
}

#[actix_rt::test]
async fn a_sign_in_that_does_not_check_out_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (server, db, sink, ops) = server(dir.path()).await;
    let base = server.url("");
    let idp = idp().await;
    let (id, admin) = school_with_provider(&base, &ops, &sink, &idp, 5).await;
    let start = format!("/sso/{id}/login?login_hint=ada@hugo.example");
    let before = stored(&db).await;

    // Without the cookie of the browser that started it: refused, and the state is not spent.
    let (callback, cookie) = to_provider_and_back(&base, &start, "/as/").await;
    let t = back_at_penpal(&callback, None).await;
    assert_eq!(t.location, "/login?sso=expired");
    let t = back_at_penpal(&callback, Some("penpal_sso=forged")).await;
    assert_eq!(t.location, "/login?sso=expired");
    assert_eq!(stored(&db).await, before);
    let t = back_at_penpal(&callback, Some(&cookie)).await;
    assert!(t.location.starts_with("/arrive?"), "{}", t.location);
    let before = stored(&db).await;

    // Forged id tokens: each refused.
    let forged = [
        json!({"nonce": "another"}),
        json!({"aud": "someone-else"}),
        json!({"aud": ["penpal-hugo", "someone-else"]}),
        json!({"iss": "https://idp.evil.example"}),
        json!({"exp": 1_000_000}),
        json!({"sub": null}),
    ];
    for claims in forged {
        idp.tamper(claims.clone());
        let t = trip(&base, &start, true).await;
        assert_eq!(t.location, "/login?sso=refused", "{claims}");
        assert_eq!(stored(&db).await, before, "{claims}");
    }
    idp.tamper(json!({}));
    idp.sign_with_unpublished_key(true).unwrap();
    let t = trip(&base, &start, true).await;
    assert_eq!(
        t.location, "/login?sso=refused",
        "a key the provider does not publish"
    );
    idp.sign_with_unpublished_key(false).unwrap();
    assert_eq!(stored(&db).await, before);

    // The person cancels on the provider's page.
    let (callback, cookie_cancel) =
        to_provider_and_back(&base, &format!("/sso/{id}/login"), "/cancel").await;
    let t = back_at_penpal(&callback, Some(&cookie_cancel)).await;
    assert_eq!(t.location, "/login?sso=declined");

    // A wrong client secret: the provider refuses the code.
    let before = stored(&db).await;
    let (status, _) = admin
        .call(
            "PUT",
            &format!("/v1/schools/{id}/sso"),
            Some(json!({"issuer": idp.issuer(), "client_id": "penpal-hugo", "client_secret": "wrong"})),
        )
        .await;
    assert_eq!(status, 200);
    let issued = idp.tokens_issued();
    let t = trip(&base, &start, true).await;
    assert_eq!(t.location, "/login?sso=refused");
    assert_eq!(idp.tokens_issued(), issued, "no token for a wrong secret");
    assert_eq!(stored(&db).await, before);
}

#[actix_rt::test]
async fn no_school_reads_changes_or_claims_another_schools_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _db, sink, ops) = server(dir.path()).await;
    let base = server.url("");
    let idp = idp().await;
    let (hugo, _) = school_with_provider(&base, &ops, &sink, &idp, 5).await;
    let (zola, zola_admin) = school(&base, &ops, &sink, "Lycée Zola", "marc@example.com", 5).await;

    // Another school's admin cannot read, change or remove it: the same 404 as no school.
    let path = format!("/v1/schools/{hugo}/sso");
    for method in ["GET", "PUT", "DELETE"] {
        let body = (method == "PUT")
            .then(|| json!({"issuer": idp.issuer(), "client_id": "x", "client_secret": "y"}));
        let (status, err) = zola_admin.call(method, &path, body).await;
        assert_eq!(status, 404, "{method}: {err}");
    }
    // Nor claim its domain.
    let (status, err) = zola_admin
        .call(
            "PUT",
            &format!("/v1/schools/{zola}/sso"),
            Some(
                json!({"issuer": idp.issuer(), "client_id": "penpal-zola", "client_secret": "z",
                "email_domains": ["hugo.example"]}),
            ),
        )
        .await;
    assert_eq!(status, 409, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("hugo.example"),
        "{err}"
    );

    // Someone signed in through Hugo's provider is a learner of Hugo only, and cannot read
    // its sign-in settings.
    let t = trip(
        &base,
        &format!("/sso/{hugo}/login?login_hint=ada@hugo.example"),
        true,
    )
    .await;
    let (ada, _) = signed_in(&base, &t.location).await;
    let (status, _) = ada.call("GET", &path, None).await;
    assert_eq!(status, 403);
    let (_, schools) = ada.call("GET", "/v1/schools", None).await;
    assert_eq!(schools.as_array().unwrap().len(), 1, "{schools}");
    let stranger = account(&base, "ines@example.com").await;
    assert_eq!(stranger.call("GET", &path, None).await.0, 404);
}

#[actix_rt::test]
async fn a_full_school_turns_a_new_learner_away() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _db, sink, ops) = server(dir.path()).await;
    let base = server.url("");
    let idp = idp().await;
    let (id, _) = school_with_provider(&base, &ops, &sink, &idp, 0).await;
    let t = trip(
        &base,
        &format!("/sso/{id}/login?login_hint=ada@hugo.example"),
        true,
    )
    .await;
    assert_eq!(t.location, "/login?sso=no_seat");
}
