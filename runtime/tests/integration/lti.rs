//! LTI 1.3 launches against the platform simulator, one per profile (Moodle, Canvas,
//! Blackboard): a school admin registers the platform, a teacher and a learner launch from a
//! course, and each arrives signed in, in the school and in the course's class. Every bad
//! launch the issue names is refused with nothing stored.

use crate::common::*;
use crate::schools::{Client, school};
use jsonwebtoken::{Algorithm, Header};
use penpal::lms::simulator::{Course, Message, Platform, Profile};
use serde_json::{Value, json};

/// A server whose outbound requests may reach the loopback simulator, its background work
/// running every `secs` seconds.
async fn server_every(
    data: &std::path::Path,
    secs: u64,
) -> (Running, penpal::store::Db, Sink, Client) {
    crate::schools::server_with(data, secs, |args| {
        args.plugins.plugin_allow_networks = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await
}

async fn server(data: &std::path::Path) -> (Running, penpal::store::Db, Sink, Client) {
    server_every(data, 300).await
}

/// An HTTP client that follows no redirect, as a test needs to see each hop.
pub(crate) fn hops() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Rewrites a penpal URL (public `https://penpal.test`) to the test server.
pub(crate) fn local(base: &str, url: &str) -> String {
    url.replace("https://penpal.test", base)
}

/// The id token and state in the platform's auto-posting form.
fn form_fields(html: &str) -> (String, String) {
    let field = |name: &str| {
        let at = html.find(&format!("name=\"{name}\" value=\"")).unwrap() + name.len() + 15;
        html[at..].split('"').next().unwrap().to_string()
    };
    (field("id_token"), field("state"))
}

/// Follows a launch to the platform's form: the tool's login redirect, the platform's answer.
async fn to_form(base: &str, begin: &str) -> (String, String) {
    let login = hops().get(local(base, begin)).send().await.unwrap();
    assert_eq!(
        login.status().as_u16(),
        302,
        "{}",
        login.text().await.unwrap()
    );
    let to = login.headers()["location"].to_str().unwrap().to_string();
    let url = reqwest::Url::parse(&to).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["redirect_uri"], "https://penpal.test/lti/launch");
    assert_eq!(
        (q["scope"].as_str(), q["response_mode"].as_str()),
        ("openid", "form_post")
    );
    let answer = hops().get(&to).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    form_fields(&answer.text().await.unwrap())
}

/// Posts a launch; the status and where it leads.
async fn post_launch(base: &str, token: &str, state: &str) -> (u16, String) {
    let resp = hops()
        .post(format!("{base}/lti/launch"))
        .form(&[("id_token", token), ("state", state)])
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    match resp.headers().get("location") {
        Some(l) => (status, l.to_str().unwrap().to_string()),
        None => (status, resp.text().await.unwrap()),
    }
}

/// Exchanges the hand-off code of a landing URL for a session.
pub(crate) async fn signed_in(base: &str, landing: &str) -> (Client, String) {
    let url = reqwest::Url::parse(&format!("{base}{landing}")).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    let resp = http()
        .post(format!("{base}/v1/auth/web/handoff"))
        .json(&json!({"code": q["code"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    (
        Client {
            base: base.to_string(),
            token: body["access_token"].as_str().unwrap().to_string(),
        },
        q["next"].clone(),
    )
}

fn course() -> Course {
    Course {
        id: "course-42".into(),
        title: "Français B1".into(),
        custom: json!({"penpal_language": "fr", "penpal_level": "B1"}),
    }
}

/// A school whose admin registered `sim`; the school's id and admin.
async fn registered(base: &str, ops: &Client, sink: &Sink, sim: &Platform) -> (String, Client) {
    registered_as(base, ops, sink, sim, "Lycée Hugo", "roux@example.com").await
}

/// School `name`, whose admin `admin` registered `sim`; the school's id and admin.
async fn registered_as(
    base: &str,
    ops: &Client,
    sink: &Sink,
    sim: &Platform,
    name: &str,
    admin: &str,
) -> (String, Client) {
    let (id, admin) = school(base, ops, sink, name, admin, 5).await;
    let (status, made) = admin
        .call(
            "POST",
            &format!("/v1/schools/{id}/lti/platforms"),
            Some(json!({"name": format!("{} (test)", sim.profile.plugin()), "plugin": sim.profile.plugin(),
                "issuer": sim.issuer(), "client_id": sim.client_id(), "deployment_ids": [sim.deployment_id()],
                "auth_url": sim.auth_url(), "token_url": sim.token_url(), "jwks_url": sim.jwks_url()})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let (_, list) = admin
        .call("GET", &format!("/v1/schools/{id}/lti/platforms"), None)
        .await;
    assert_eq!(list["tool"]["login_url"], "https://penpal.test/lti/login");
    sim.register_tool(
        list["tool"]["login_url"].as_str().unwrap(),
        list["tool"]["launch_url"].as_str().unwrap(),
    );
    (id, admin)
}

/// A role-play at the restaurant (two turns) that `teacher` sets in `class`; its id.
async fn restaurant(teacher: &Client, class: &str) -> String {
    let (status, made) = teacher
        .call(
            "POST",
            &format!("/v1/classes/{class}/assignments"),
            Some(json!({"title": "Au restaurant", "scenario": "restaurant", "min_turns": 2})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    made["id"].as_str().unwrap().to_string()
}

/// `user` opens `assignment` from the course through `link`, takes two turns and hands it in;
/// the hand-in's answer.
async fn do_assignment(
    base: &str,
    sim: &Platform,
    user: &penpal::lms::simulator::User,
    link: Message,
    assignment: &str,
) -> Value {
    let (token, state) = to_form(base, &sim.begin(user, &course(), link)).await;
    let (_, landing) = post_launch(base, &token, &state).await;
    let (learner, next) = signed_in(base, &landing).await;
    assert_eq!(next, format!("/assignments/{assignment}"));
    let (_, started) = learner
        .call("POST", &format!("/v1/assignments/{assignment}/start"), None)
        .await;
    let conversation = started["conversation"].as_str().unwrap().to_string();
    for text in [
        "Bonjour, je voudrais une table pour deux personnes.",
        "Hier j'ai allé à le restaurant avec mon amis.",
    ] {
        let (status, _) = learner
            .call(
                "POST",
                &format!("/v1/conversations/{conversation}/messages"),
                Some(json!({"text": text})),
            )
            .await;
        assert_eq!(status, 201);
    }
    let (status, handed) = learner
        .call(
            "POST",
            &format!("/v1/assignments/{assignment}/submit"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{handed}");
    handed
}

async fn count(db: &penpal::store::Db, table: &str) -> i64 {
    db.one::<Value>(
        &format!("SELECT count() AS n FROM {table} GROUP ALL"),
        json!({}),
    )
    .await
    .unwrap()
    .and_then(|r| r["n"].as_i64())
    .unwrap_or(0)
}

#[actix_rt::test]
async fn a_teacher_and_a_learner_launch_from_each_platform_and_land_in_the_course() {
    for profile in [Profile::Moodle, Profile::Canvas, Profile::Blackboard] {
        let data = tempfile::tempdir().unwrap();
        let (server, _db, sink, ops) = server(data.path()).await;
        let base = server.url("");
        let sim = Platform::start(profile, "penpal-tool-1").await.unwrap();
        let (school_id, admin) = registered(&base, &ops, &sink, &sim).await;
        let course = course();
        let link = Message::ResourceLink {
            id: "link-1".into(),
            assignment: None,
        };

        let teacher = sim.user(1, "Claire", "Dupont", true);
        let (token, state) = to_form(&base, &sim.begin(&teacher, &course, link.clone())).await;
        let (status, landing) = post_launch(&base, &token, &state).await;
        assert_eq!(status, 303, "{profile:?}: {landing}");
        let (claire, next) = signed_in(&base, &landing).await;
        let (_, schools) = claire.call("GET", "/v1/schools", None).await;
        assert_eq!(schools[0]["id"], json!(school_id), "{profile:?}: {schools}");
        assert_eq!(schools[0]["role"], "teacher", "{profile:?}");
        let class = next.strip_prefix("/classes/").unwrap().to_string();
        let (status, c) = claire
            .call("GET", &format!("/v1/classes/{class}"), None)
            .await;
        assert_eq!(status, 200, "{c}");
        assert_eq!(
            (&c["name"], &c["language"], &c["level"]),
            (&json!("Français B1"), &json!("fr"), &json!("B1"))
        );
        let (_, me) = claire.call("GET", "/v1/me", None).await;
        assert_eq!(
            me["profile"]["display_name"], "Claire Dupont",
            "{profile:?}: {me}"
        );

        let learner = sim.user(2, "Ana", "Lima", false);
        let (token, state) = to_form(&base, &sim.begin(&learner, &course, link.clone())).await;
        let (status, landing) = post_launch(&base, &token, &state).await;
        assert_eq!(status, 303, "{landing}");
        let (ana, _) = signed_in(&base, &landing).await;
        let (_, schools) = ana.call("GET", "/v1/schools", None).await;
        assert_eq!(schools[0]["role"], "learner");
        let (_, members) = claire
            .call("GET", &format!("/v1/classes/{class}/members"), None)
            .await;
        let roles: Vec<(&str, &str)> = members
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["name"].as_str().unwrap(), m["role"].as_str().unwrap()))
            .collect();
        assert_eq!(
            roles,
            [("Claire Dupont", "teacher"), ("Ana Lima", "learner")],
            "{profile:?}"
        );
        let (_, plan) = ana.call("GET", "/v1/billing/subscription", None).await;
        assert_eq!(
            plan["source"]["kind"], "school",
            "a launch takes a seat: {plan}"
        );

        // A second launch is the same account, not a new one.
        let (token, state) = to_form(&base, &sim.begin(&learner, &course, link.clone())).await;
        let (_, landing) = post_launch(&base, &token, &state).await;
        let (again, _) = signed_in(&base, &landing).await;
        let (_, me_again) = again.call("GET", "/v1/me", None).await;
        let (_, me) = ana.call("GET", "/v1/me", None).await;
        assert_eq!(me_again["id"], me["id"]);
        // The hand-off code was single use.
        let url = reqwest::Url::parse(&format!("{base}{landing}")).unwrap();
        let code = url
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .to_string();
        let reused = http()
            .post(format!("{base}/v1/auth/web/handoff"))
            .json(&json!({"code": code}))
            .send()
            .await
            .unwrap();
        assert_eq!(reused.status().as_u16(), 401);
        let (_, platforms) = admin
            .call(
                "GET",
                &format!("/v1/schools/{school_id}/lti/platforms"),
                None,
            )
            .await;
        assert_eq!(platforms["platforms"][0]["plugin"], profile.plugin());
        server.stop().await;
    }
}

/// A school admin makes a registration link, the LMS admin pastes it into Moodle, and penpal
/// registers itself there (LTI Dynamic Registration): the platform is stored as if typed by
/// hand and a learner launches at once. The link is single use; a configuration speaking for
/// an issuer on another host is refused.
#[actix_rt::test]
async fn a_platform_registers_itself_through_dynamic_registration() {
    let data = tempfile::tempdir().unwrap();
    let (server, db, sink, ops) = server(data.path()).await;
    let base = server.url("");
    let sim = Platform::start(Profile::Moodle, "moodle-client-7")
        .await
        .unwrap();
    let (school_id, admin) = school(&base, &ops, &sink, "Lycée Hugo", "roux@example.com", 5).await;
    let (status, link) = admin
        .call(
            "POST",
            &format!("/v1/schools/{school_id}/lti/registrations"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 201, "{link}");
    let url = link["url"].as_str().unwrap();
    assert!(
        url.starts_with("https://penpal.test/lti/register/"),
        "{url}"
    );

    let opened = hops()
        .get(sim.registration_start(&local(&base, url)))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status().as_u16(), 200);
    let csp = opened.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let sim_origin = sim
        .configuration_url()
        .split("/mod/")
        .next()
        .unwrap()
        .to_string();
    assert!(
        csp.contains(&format!("frame-ancestors {sim_origin}")),
        "{csp}"
    );
    assert!(opened.headers().get("x-frame-options").is_none());
    let page = opened.text().await.unwrap();
    assert!(page.contains("Penpal is registered"), "{page}");
    assert!(page.contains("org.imsglobal.lti.close"), "{page}");

    let told = sim.registrations();
    assert_eq!(told.len(), 1);
    let r = &told[0];
    assert_eq!(r["initiate_login_uri"], "https://penpal.test/lti/login");
    assert_eq!(
        r["redirect_uris"],
        json!(["https://penpal.test/lti/launch"])
    );
    assert_eq!(r["jwks_uri"], "https://penpal.test/.well-known/jwks.json");
    let scope = r["scope"].as_str().unwrap();
    for s in [
        "lti-ags/scope/lineitem",
        "lti-ags/scope/score",
        "lti-nrps/scope/contextmembership.readonly",
    ] {
        assert!(scope.contains(s), "{scope}");
    }
    let messages = &r["https://purl.imsglobal.org/spec/lti-tool-configuration"]["messages"];
    assert!(
        messages
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["type"] == "LtiDeepLinkingRequest"),
        "{messages}"
    );

    let (_, list) = admin
        .call(
            "GET",
            &format!("/v1/schools/{school_id}/lti/platforms"),
            None,
        )
        .await;
    let p = &list["platforms"][0];
    assert_eq!(list["platforms"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(
        (
            &p["plugin"],
            &p["issuer"],
            &p["client_id"],
            &p["deployment_ids"]
        ),
        (
            &json!("moodle"),
            &json!(sim.issuer()),
            &json!("moodle-client-7"),
            &json!([sim.deployment_id()])
        )
    );
    assert_eq!(
        (&p["auth_url"], &p["token_url"], &p["jwks_url"]),
        (
            &json!(sim.auth_url()),
            &json!(sim.token_url()),
            &json!(sim.jwks_url())
        )
    );
    assert!(p["name"].as_str().unwrap().starts_with("Moodle"), "{p}");

    // The platform learned where penpal logs in from the registration: a learner launches.
    let ana = sim.user(2, "Ana", "Lima", false);
    let link_msg = Message::ResourceLink {
        id: "link-1".into(),
        assignment: None,
    };
    let (token, state) = to_form(&base, &sim.begin(&ana, &course(), link_msg)).await;
    let (status, landing) = post_launch(&base, &token, &state).await;
    assert_eq!(status, 303, "{landing}");
    let (ana, _) = signed_in(&base, &landing).await;
    let (_, schools) = ana.call("GET", "/v1/schools", None).await;
    assert_eq!(schools[0]["id"], json!(school_id));

    // Single use.
    let again = hops()
        .get(sim.registration_start(&local(&base, url)))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 404);
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("unknown, used or expired")
    );
    // Opened by hand, without the LMS's configuration.
    let bare = hops().get(local(&base, url)).send().await.unwrap();
    assert_eq!(bare.status().as_u16(), 404);

    // A server on loopback claiming Canvas's issuer speaks for a host it is not on.
    let (_, link) = admin
        .call(
            "POST",
            &format!("/v1/schools/{school_id}/lti/registrations"),
            Some(json!({})),
        )
        .await;
    let url = link["url"].as_str().unwrap();
    let bare = hops().get(local(&base, url)).send().await.unwrap();
    assert_eq!(bare.status().as_u16(), 400);
    assert!(bare.text().await.unwrap().contains("openid_configuration"));
    let claimer = Platform::start(Profile::Canvas, "canvas-client")
        .await
        .unwrap();
    let refused = hops()
        .get(claimer.registration_start(&local(&base, url)))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 400);
    let page = refused.text().await.unwrap();
    assert!(page.contains("not on the host it was read from"), "{page}");
    assert!(claimer.registrations().is_empty());
    assert_eq!(count(&db, "lti_platform").await, 1);

    // Only the school's admins make links.
    let (status, _) = ana
        .call(
            "POST",
            &format!("/v1/schools/{school_id}/lti/registrations"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 403);
}

/// Canvas (and Blackboard) give every instance one issuer, so a school could register a
/// "platform" with that issuer and keys of its own: its launches must never reach the accounts
/// another school's platform linked, nor that school's courses.
#[actix_rt::test]
async fn a_platform_sharing_an_issuer_cannot_sign_in_as_another_schools_learner() {
    let data = tempfile::tempdir().unwrap();
    let (server, db, sink, ops) = server(data.path()).await;
    let base = server.url("");
    let genuine = Platform::start(Profile::Canvas, "penpal-hugo")
        .await
        .unwrap();
    let (hugo, _) = registered(&base, &ops, &sink, &genuine).await;
    let link = Message::ResourceLink {
        id: "link-1".into(),
        assignment: None,
    };
    let ana = genuine.user(2, "Ana", "Lima", false);
    let (token, state) = to_form(&base, &genuine.begin(&ana, &course(), link.clone())).await;
    let (status, landing) = post_launch(&base, &token, &state).await;
    assert_eq!(status, 303, "{landing}");
    let (ana_session, next) = signed_in(&base, &landing).await;
    let (_, ana_me) = ana_session.call("GET", "/v1/me", None).await;
    let hugo_class = next.strip_prefix("/classes/").unwrap().to_string();

    // Another school registers its own "Canvas": same issuer, its own keys and client id.
    let forger = Platform::start(Profile::Canvas, "penpal-evil")
        .await
        .unwrap();
    assert_eq!(forger.issuer(), genuine.issuer());
    let (evil, _) = registered_as(
        &base,
        &ops,
        &sink,
        &forger,
        "Evil Academy",
        "mal@example.com",
    )
    .await;
    let same_sub = forger.user(2, "Ana", "Lima", false);
    assert_eq!(same_sub.id, ana.id);
    let (token, state) = to_form(&base, &forger.begin(&same_sub, &course(), link)).await;
    let (status, landing) = post_launch(&base, &token, &state).await;
    assert_eq!(status, 303, "{landing}");
    let (forged, next) = signed_in(&base, &landing).await;
    let (_, forged_me) = forged.call("GET", "/v1/me", None).await;
    assert_ne!(
        forged_me["id"], ana_me["id"],
        "the forged launch signed in as Ana"
    );
    let (_, schools) = forged.call("GET", "/v1/schools", None).await;
    assert_eq!(schools.as_array().unwrap().len(), 1, "{schools}");
    assert_eq!(schools[0]["id"], json!(evil));
    assert_ne!(
        next,
        format!("/classes/{hugo_class}"),
        "the same course id reached Hugo's class"
    );
    let (status, _) = forged
        .call("GET", &format!("/v1/classes/{hugo_class}"), None)
        .await;
    assert_eq!(status, 404);
    let (_, schools) = ana_session.call("GET", "/v1/schools", None).await;
    assert_eq!(schools.as_array().unwrap().len(), 1, "{schools}");
    assert_eq!(schools[0]["id"], json!(hugo));
    assert_eq!(count(&db, "lti_user").await, 2);
    let (_, export) = ana_session.call("GET", "/v1/me/export", None).await;
    assert_eq!(
        export["platform_accounts"],
        json!([{"school": hugo, "issuer": "https://canvas.instructure.com", "sub": ana.id,
            "created_at": export["platform_accounts"][0]["created_at"]}]),
        "{export}"
    );
}

#[actix_rt::test]
async fn every_bad_launch_is_refused_and_stores_nothing() {
    let data = tempfile::tempdir().unwrap();
    let (server, db, sink, ops) = server(data.path()).await;
    let base = server.url("");
    let sim = Platform::start(Profile::Moodle, "penpal-tool-1")
        .await
        .unwrap();
    registered(&base, &ops, &sink, &sim).await;
    let course = course();
    let link = Message::ResourceLink {
        id: "link-1".into(),
        assignment: None,
    };
    let learner = sim.user(2, "Ana", "Lima", false);
    let users = count(&db, "user").await;
    let members = count(&db, "membership").await;

    // A genuine launch's claims, re-signed after one change each.
    type Forge = Box<dyn Fn(&Platform, &mut Value) -> Option<String>>;
    let resign = |sim: &Platform, c: &Value| Some(sim.sign(c).unwrap());
    let cases: Vec<(&str, Forge)> = vec![
        (
            "a bad signature",
            Box::new(|sim, c| {
                let t = sim.sign(c).unwrap();
                let (head, sig) = t.rsplit_once('.').unwrap();
                let mut sig = sig.to_string();
                let flip = if sig.ends_with('A') { "B" } else { "A" };
                sig.replace_range(sig.len() - 1.., flip);
                Some(format!("{head}.{sig}"))
            }),
        ),
        (
            "an unknown kid, not in the refetched JWKS",
            Box::new(|sim, c| {
                let mut h = Header::new(Algorithm::RS256);
                h.kid = Some("no-such-key".into());
                Some(sim.sign_with(h, c).unwrap())
            }),
        ),
        (
            "alg none",
            Box::new(|_, c| {
                use base64::Engine as _;
                let e = |v: &Value| {
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
                };
                Some(format!(
                    "{}.{}.",
                    e(&json!({"alg": "none", "typ": "JWT"})),
                    e(c)
                ))
            }),
        ),
        (
            "HS256 with the public key as secret",
            Box::new(|sim, c| {
                let mut h = Header::new(Algorithm::HS256);
                h.kid = sim.public_jwks()["keys"][0]["kid"]
                    .as_str()
                    .map(String::from);
                let secret = sim.public_jwks()["keys"][0].to_string();
                Some(
                    jsonwebtoken::encode(
                        &h,
                        c,
                        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
                    )
                    .unwrap(),
                )
            }),
        ),
        (
            "a wrong iss",
            Box::new(move |sim, c| {
                c["iss"] = json!("https://evil.example");
                resign(sim, c)
            }),
        ),
        (
            "a wrong aud",
            Box::new(move |sim, c| {
                c["aud"] = json!("someone-else");
                resign(sim, c)
            }),
        ),
        (
            "several audiences and no azp",
            Box::new(move |sim, c| {
                c["aud"] = json!([sim.client_id(), "someone-else"]);
                resign(sim, c)
            }),
        ),
        (
            "expired",
            Box::new(move |sim, c| {
                let now = c["iat"].as_i64().unwrap();
                c["iat"] = json!(now - 3600);
                c["exp"] = json!(now - 600);
                resign(sim, c)
            }),
        ),
        (
            "issued in the future",
            Box::new(move |sim, c| {
                let now = c["iat"].as_i64().unwrap();
                c["iat"] = json!(now + 3600);
                resign(sim, c)
            }),
        ),
        (
            "another nonce",
            Box::new(move |sim, c| {
                c["nonce"] = json!("not-the-nonce");
                resign(sim, c)
            }),
        ),
        (
            "an unknown deployment",
            Box::new(move |sim, c| {
                c["https://purl.imsglobal.org/spec/lti/claim/deployment_id"] = json!("99");
                resign(sim, c)
            }),
        ),
        (
            "a wrong message type",
            Box::new(move |sim, c| {
                c["https://purl.imsglobal.org/spec/lti/claim/message_type"] =
                    json!("LtiSubmissionReviewRequest");
                resign(sim, c)
            }),
        ),
        (
            "another LTI version",
            Box::new(move |sim, c| {
                c["https://purl.imsglobal.org/spec/lti/claim/version"] = json!("1.1");
                resign(sim, c)
            }),
        ),
    ];
    for (what, forge) in cases {
        let (token, state) = to_form(&base, &sim.begin(&learner, &course, link.clone())).await;
        let mut claims = Platform::payload(&token).unwrap();
        let bad = forge(&sim, &mut claims).unwrap();
        let resp = hops()
            .post(format!("{base}/lti/launch"))
            .form(&[("id_token", bad.as_str()), ("state", state.as_str())])
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["error"]["code"], "launch_refused", "{what}: {body}");
        // The genuine token cannot follow: the state went with the refusal.
        let (status, _) = post_launch(&base, &token, &state).await;
        assert_eq!(status, 401, "{what}: the state is single use");
    }

    // A replayed launch (same token, same state) and a made-up state.
    let (token, state) = to_form(&base, &sim.begin(&learner, &course, link.clone())).await;
    let (first, _) = post_launch(&base, &token, &state).await;
    assert_eq!(first, 303);
    let users_after_one = count(&db, "user").await;
    let (replayed, _) = post_launch(&base, &token, &state).await;
    assert_eq!(replayed, 401, "a replayed launch");
    let (made_up, _) = post_launch(&base, &token, "made-up-state").await;
    assert_eq!(made_up, 401, "a wrong state");
    // The same token with a fresh state: its nonce belongs to the spent one.
    let (_, fresh_state) = to_form(&base, &sim.begin(&learner, &course, link.clone())).await;
    let (nonce_replay, _) = post_launch(&base, &token, &fresh_state).await;
    assert_eq!(nonce_replay, 401, "a replayed nonce");

    assert_eq!(
        users_after_one,
        users + 1,
        "only the good launch made an account"
    );
    assert_eq!(count(&db, "user").await, users + 1);
    assert_eq!(count(&db, "membership").await, members + 1);
    assert_eq!(count(&db, "lti_user").await, 1);

    // Logins that cannot start.
    for (query, why) in [
        (
            "iss=https://unknown.example&login_hint=1&target_link_uri=https://penpal.test/lti/launch",
            "unknown platform",
        ),
        (
            &*format!(
                "iss={}&login_hint=1&target_link_uri=https://evil.example/",
                sim.issuer()
            ),
            "a target elsewhere",
        ),
        (
            &*format!(
                "iss={}&target_link_uri=https://penpal.test/lti/launch",
                sim.issuer()
            ),
            "no login_hint",
        ),
    ] {
        let resp = hops()
            .get(format!("{base}/lti/login?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{why}");
    }
    server.stop().await;
}

#[actix_rt::test]
async fn a_platform_that_rotates_its_key_is_followed_and_the_tool_rotates_its_own() {
    let data = tempfile::tempdir().unwrap();
    let (server, _db, sink, ops) = server(data.path()).await;
    let base = server.url("");
    let sim = Platform::start(Profile::Canvas, "penpal-tool-1")
        .await
        .unwrap();
    registered(&base, &ops, &sink, &sim).await;
    let learner = sim.user(2, "Ana", "Lima", false);
    let link = Message::ResourceLink {
        id: "link-1".into(),
        assignment: None,
    };
    let (token, state) = to_form(&base, &sim.begin(&learner, &course(), link.clone())).await;
    assert_eq!(post_launch(&base, &token, &state).await.0, 303);
    // The platform signs with a new key the tool has not seen: one refetch finds it.
    let kid = sim.rotate_key().unwrap();
    let (token, state) = to_form(&base, &sim.begin(&learner, &course(), link.clone())).await;
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(kid.as_str()));
    assert_eq!(post_launch(&base, &token, &state).await.0, 303);

    // The tool's own keys: published, rotated by an operator with the old one kept.
    let jwks: Value = http()
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first = jwks["keys"][0]["kid"]
        .as_str()
        .unwrap_or_else(|| panic!("{jwks}"))
        .to_string();
    assert_eq!(jwks["keys"][0]["alg"], "RS256");
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "no private part is published"
    );
    let (status, rotated) = ops.call("POST", "/v1/admin/lti/keys/rotate", None).await;
    assert_eq!(status, 200, "{rotated}");
    let jwks: Value = http()
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [rotated["kid"].as_str().unwrap(), first.as_str()]);
    server.stop().await;
}

#[actix_rt::test]
async fn a_grade_reaches_the_gradebook_and_waits_out_an_lms_that_is_down() {
    let data = tempfile::tempdir().unwrap();
    let (server, db, sink, ops) = server_every(data.path(), 1).await;
    let base = server.url("");
    let sim = Platform::start(Profile::Moodle, "penpal-tool-1")
        .await
        .unwrap();
    registered(&base, &ops, &sink, &sim).await;
    sim.tool_jwks(&format!("{base}/.well-known/jwks.json"));
    let course = course();
    let teacher = sim.user(1, "Claire", "Dupont", true);
    let plain = Message::ResourceLink {
        id: "link-0".into(),
        assignment: None,
    };
    let (token, state) = to_form(&base, &sim.begin(&teacher, &course, plain)).await;
    let (_, landing) = post_launch(&base, &token, &state).await;
    let (claire, next) = signed_in(&base, &landing).await;
    let class = next.strip_prefix("/classes/").unwrap();
    let assignment = restaurant(&claire, class).await;

    // The learner follows the assignment's link from the course, does it and hands it in.
    let learner = sim.user(2, "Ana", "Lima", false);
    let link = Message::ResourceLink {
        id: "link-1".into(),
        assignment: Some(assignment.clone()),
    };
    let handed = do_assignment(&base, &sim, &learner, link, &assignment).await;
    assert_eq!(handed["grade"]["total"], 10);

    let mut waited = 0;
    let scores = loop {
        let s = sim.scores();
        if !s.is_empty() {
            break s;
        }
        waited += 1;
        if waited > 100 {
            let queued: Vec<Value> = db.rows("SELECT * FROM lti_score", json!({})).await.unwrap();
            let contexts: Vec<Value> = db
                .rows("SELECT * FROM lti_context", json!({}))
                .await
                .unwrap();
            panic!("no score reached the gradebook; queued: {queued:?}; contexts: {contexts:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let items = sim.line_items();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (
            &items[0]["label"],
            &items[0]["resourceId"],
            &items[0]["scoreMaximum"]
        ),
        (&json!("Au restaurant"), &json!(assignment), &json!(16.0))
    );
    let (line_item, score) = &scores[0];
    assert_eq!(line_item, items[0]["id"].as_str().unwrap());
    assert_eq!(score["userId"], learner.id.as_str());
    assert_eq!(
        (&score["scoreGiven"], &score["scoreMaximum"]),
        (&json!(10.0), &json!(16.0))
    );
    assert_eq!(
        (&score["activityProgress"], &score["gradingProgress"]),
        (&json!("Completed"), &json!("FullyGraded"))
    );
    assert!(
        score["timestamp"].as_str().unwrap().ends_with('Z'),
        "{score}"
    );

    // The LMS goes down; the teacher's change waits, is retried, and arrives once.
    sim.set_down(true);
    let (_, subs) = claire
        .call(
            "GET",
            &format!("/v1/assignments/{assignment}/submissions"),
            None,
        )
        .await;
    let submission = subs[0]["id"].as_str().unwrap().to_string();
    let (status, _) = claire
        .call(
            "PUT",
            &format!("/v1/submissions/{submission}/grade"),
            Some(json!({"scores": {"accuracy": 2}, "comment": "Attention aux contractions."})),
        )
        .await;
    assert_eq!(status, 200);
    within(20, "a delivery fails while the LMS is down", async {
        loop {
            let row: Option<Value> = db
                .one(
                    "SELECT attempts, status FROM type::record('lti_score', $id)",
                    json!({"id": submission}),
                )
                .await
                .unwrap();
            if row
                .as_ref()
                .is_some_and(|r| r["attempts"].as_i64() >= Some(1))
            {
                assert_eq!(row.unwrap()["status"], "pending");
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
    .await;
    assert_eq!(sim.scores().len(), 1, "nothing arrives while it is down");
    sim.set_down(false);
    let scores = within(30, "the retried score arrives", async {
        loop {
            let s = sim.scores();
            if s.len() > 1 {
                return s;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
    .await;
    assert_eq!(scores[1].1["scoreGiven"], json!(11.0));
    assert_eq!(scores[1].1["comment"], "Attention aux contractions.");
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(sim.scores().len(), 2, "delivered once");
    assert_eq!(
        sim.line_items().len(),
        1,
        "the line item was found again, not made twice"
    );
    server.stop().await;
}

/// The whole journey on each platform: a teacher opens penpal from the course to add content
/// (deep linking), makes an assignment and places it; the LMS shows it with a gradebook
/// column; a learner opens it from the course, does it and hands it in; the grade lands in
/// that column.
#[actix_rt::test]
async fn a_teacher_places_an_assignment_and_its_grade_lands_in_that_column_on_each_platform() {
    for profile in [Profile::Moodle, Profile::Canvas, Profile::Blackboard] {
        let data = tempfile::tempdir().unwrap();
        let (server, db, sink, ops) = server_every(data.path(), 1).await;
        let base = server.url("");
        let sim = Platform::start(profile, "penpal-tool-1").await.unwrap();
        registered(&base, &ops, &sink, &sim).await;
        sim.tool_jwks(&format!("{base}/.well-known/jwks.json"));
        let course = course();

        let teacher = sim.user(1, "Claire", "Dupont", true);
        let (token, state) =
            to_form(&base, &sim.begin(&teacher, &course, Message::DeepLinking)).await;
        let (status, landing) = post_launch(&base, &token, &state).await;
        assert_eq!(status, 303, "{profile:?}: {landing}");
        // The LMS shows penpal inside its course page: the landing lets it frame the app.
        let page = hops().get(format!("{base}{landing}")).send().await.unwrap();
        let csp = page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        let sim_origin = reqwest::Url::parse(&sim.auth_url())
            .unwrap()
            .origin()
            .ascii_serialization();
        assert!(
            csp.contains(&format!("frame-ancestors 'self' {sim_origin}")),
            "{profile:?}: {csp}"
        );
        assert!(page.headers().get("x-frame-options").is_none());
        let forged = hops()
            .get(format!("{base}/lti?code=made-up&next=/"))
            .send()
            .await
            .unwrap();
        let csp = forged.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        let (claire, next) = signed_in(&base, &landing).await;
        let (path, pick) = next.split_once("/pick?link=").unwrap();
        let class = path.strip_prefix("/classes/").unwrap();
        let (status, seen) = claire
            .call("GET", &format!("/v1/lti/picks/{pick}"), None)
            .await;
        assert_eq!(status, 200, "{seen}");
        assert_eq!(seen["class"], class);
        assert_eq!(
            seen["accept_multiple"],
            profile != Profile::Canvas,
            "{profile:?}"
        );
        let assignment = restaurant(&claire, class).await;

        // Someone else cannot answer Claire's pick; an assignment of another class is refused.
        let learner = sim.user(2, "Ana", "Lima", false);
        let plain = Message::ResourceLink {
            id: "link-0".into(),
            assignment: None,
        };
        let (token, state) = to_form(&base, &sim.begin(&learner, &course, plain)).await;
        let (_, landing) = post_launch(&base, &token, &state).await;
        let (ana, _) = signed_in(&base, &landing).await;
        let (status, _) = ana
            .call(
                "POST",
                &format!("/v1/lti/picks/{pick}"),
                Some(json!({"assignments": [assignment]})),
            )
            .await;
        assert_eq!(status, 404);
        let (status, body) = claire
            .call(
                "POST",
                &format!("/v1/lti/picks/{pick}"),
                Some(json!({"assignments": ["nope"]})),
            )
            .await;
        assert_eq!(status, 422, "{body}");

        let (status, answer) = claire
            .call(
                "POST",
                &format!("/v1/lti/picks/{pick}"),
                Some(json!({"assignments": [assignment]})),
            )
            .await;
        assert_eq!(status, 200, "{profile:?}: {answer}");
        // The app goes to penpal's page that posts the signed answer back to the LMS.
        let page = hops()
            .get(local(&base, answer["continue_url"].as_str().unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status().as_u16(), 200);
        let csp = page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        let lms = reqwest::Url::parse(answer["return_url"].as_str().unwrap()).unwrap();
        let lms = lms.origin().ascii_serialization();
        assert!(csp.contains(&format!("form-action {lms}")), "{csp}");
        assert!(csp.contains(&format!("frame-ancestors {lms}")), "{csp}");
        let html = page.text().await.unwrap();
        let action = html
            .split("action=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(action, answer["return_url"].as_str().unwrap());
        let jwt = html
            .split("name=\"JWT\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(jwt, answer["jwt"].as_str().unwrap());
        let returned = hops()
            .post(action)
            .form(&[("JWT", jwt)])
            .send()
            .await
            .unwrap();
        let said = returned.status().as_u16();
        assert_eq!(said, 200, "{profile:?}: {}", returned.text().await.unwrap());
        let placed = sim.placed();
        assert_eq!(placed.len(), 1);
        let item = &placed[0].1;
        assert_eq!(item["title"], "Au restaurant");
        assert_eq!(item["url"], "https://penpal.test/lti/launch");
        let (status, _) = claire
            .call(
                "POST",
                &format!("/v1/lti/picks/{pick}"),
                Some(json!({"assignments": [assignment]})),
            )
            .await;
        assert_eq!(status, 404, "a pick is answered once");
        let again = hops()
            .get(local(&base, answer["continue_url"].as_str().unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(again.status().as_u16(), 404, "the answer is posted once");
        let columns = sim.line_items();
        assert_eq!(
            columns.len(),
            1,
            "{profile:?}: the LMS made the gradebook column"
        );
        assert_eq!(columns[0]["resourceId"], json!(assignment));

        // Ana opens the placed link from the course.
        let placed_assignment = item["custom"]["assignment"].as_str().map(str::to_string);
        assert_eq!(placed_assignment.as_deref(), Some(assignment.as_str()));
        let link = Message::ResourceLink {
            id: "link-1".into(),
            assignment: placed_assignment,
        };
        let handed = do_assignment(&base, &sim, &learner, link, &assignment).await;
        let scores = within(30, "the grade reaches the gradebook", async {
            loop {
                let s = sim.scores();
                if !s.is_empty() {
                    return s;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        })
        .await;
        assert_eq!(
            scores[0].0,
            columns[0]["id"].as_str().unwrap(),
            "{profile:?}: into the placed column"
        );
        assert_eq!(scores[0].1["userId"], learner.id.as_str());
        assert_eq!(
            scores[0].1["scoreGiven"],
            json!(handed["grade"]["total"].as_f64().unwrap())
        );
        assert_eq!(sim.line_items().len(), 1, "no second column");
        assert_eq!(count(&db, "lti_deep_link").await, 0);
        server.stop().await;
    }
}

#[actix_rt::test]
async fn the_roster_syncs_into_the_class_and_a_synced_learner_launches_into_the_same_account() {
    let data = tempfile::tempdir().unwrap();
    let (server, _db, sink, ops) = server(data.path()).await;
    let base = server.url("");
    let sim = Platform::start(Profile::Blackboard, "penpal-tool-1")
        .await
        .unwrap();
    let (school_id, admin) = registered(&base, &ops, &sink, &sim).await;
    sim.tool_jwks(&format!("{base}/.well-known/jwks.json"));
    let course = course();
    let teacher = sim.user(1, "Claire", "Dupont", true);
    let (token, state) = to_form(
        &base,
        &sim.begin(
            &teacher,
            &course,
            Message::ResourceLink {
                id: "link-0".into(),
                assignment: None,
            },
        ),
    )
    .await;
    let (_, landing) = post_launch(&base, &token, &state).await;
    let (claire, next) = signed_in(&base, &landing).await;
    let class = next.strip_prefix("/classes/").unwrap().to_string();
    let ana = sim.user(2, "Ana", "Lima", false);
    let roster = |ana_active: bool| {
        vec![
            (teacher.clone(), true),
            (ana.clone(), ana_active),
            (sim.user(3, "Bob", "Martin", false), true),
            (sim.user(4, "Chloé", "Petit", false), true),
            (sim.user(5, "Dan", "Roy", false), false),
        ]
    };
    sim.set_roster(&course.id, roster(true));
    let sync = format!("/v1/classes/{class}/roster/sync");
    let (status, synced) = claire.call("POST", &sync, None).await;
    assert_eq!(status, 200, "{synced}");
    assert_eq!(
        synced,
        json!({"read": 5, "added": 3, "removed": 0, "no_seat": 0}),
        "three pages of two, the teacher in already, Dan inactive"
    );
    let (_, members) = claire
        .call("GET", &format!("/v1/classes/{class}/members"), None)
        .await;
    let names: Vec<&str> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Claire Dupont", "Ana Lima", "Bob Martin", "Chloé Petit"]
    );
    let (again_status, again) = claire.call("POST", &sync, None).await;
    assert_eq!((again_status, &again["added"]), (200, &json!(0)), "{again}");

    // Ana, synced, launches: the same account, already in the class.
    let (token, state) = to_form(
        &base,
        &sim.begin(
            &ana,
            &course,
            Message::ResourceLink {
                id: "link-0".into(),
                assignment: None,
            },
        ),
    )
    .await;
    let (_, landing) = post_launch(&base, &token, &state).await;
    let (ana_client, _) = signed_in(&base, &landing).await;
    let (_, me) = ana_client.call("GET", "/v1/me", None).await;
    let synced_ana = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "Ana Lima")
        .unwrap()["user"]
        .clone();
    assert_eq!(me["id"], synced_ana);

    // The platform marks Ana inactive: the next sync takes her out of the class.
    sim.set_roster(&course.id, roster(false));
    let (_, synced) = claire.call("POST", &sync, None).await;
    assert_eq!(synced["removed"], 1, "{synced}");
    assert_eq!(
        ana_client
            .call("GET", &format!("/v1/classes/{class}"), None)
            .await
            .0,
        404
    );

    // Learners cannot sync; a class made in penpal has no course to sync with.
    assert_eq!(
        ana_client.call("POST", &sync, None).await.0,
        404,
        "out of the class"
    );
    let (_, own) = admin
        .call(
            "POST",
            &format!("/v1/schools/{school_id}/classes"),
            Some(json!({"name": "Atelier", "language": "fr", "level": "A2"})),
        )
        .await;
    let (status, err) = admin
        .call(
            "POST",
            &format!("/v1/classes/{}/roster/sync", own["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 409, "{err}");
    server.stop().await;
}
