//! An LTI 1.3 platform simulator, for tests and offline work: a loopback HTTP server with its
//! own RSA keys and JWKS, an OIDC authorization endpoint that answers a tool's login with a
//! signed launch (auto-posted form, as a browser sees it), in the shape of a **Moodle**,
//! **Canvas** or **Blackboard** platform (their issuers, endpoint paths, deployment ids, user
//! ids, role vocabularies and claim quirks). Tests drive it from Rust — start a launch, forge
//! a claim, rotate keys — and `penpal simulate-lms` runs it by hand.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use jsonwebtoken::Header;
use serde::Deserialize;
use serde_json::{Value, json};

use super::lti::rsa::RsaKey;
use super::lti::{DEEP_LINKING, RESOURCE_LINK};
use crate::notify::templates::escape;

/// Which LMS the simulator plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// Moodle 4.x: the site URL is the issuer, numeric user ids.
    Moodle,
    /// Canvas: one issuer for every instance, `N:hash` deployments, UUID user ids.
    Canvas,
    /// Blackboard Learn: one issuer, names in parts, legacy role names.
    Blackboard,
}

impl Profile {
    /// The LMS plugin that reads it.
    pub fn plugin(self) -> &'static str {
        match self {
            Profile::Moodle => "moodle",
            Profile::Canvas => "canvas",
            Profile::Blackboard => "blackboard",
        }
    }

    fn paths(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Profile::Moodle => (
                "/mod/lti/auth.php",
                "/mod/lti/token.php",
                "/mod/lti/certs.php",
            ),
            Profile::Canvas => (
                "/api/lti/authorize_redirect",
                "/login/oauth2/token",
                "/api/lti/security/jwks",
            ),
            Profile::Blackboard => (
                "/api/v1/gateway/oidcauth",
                "/api/v1/gateway/oauth2/jwttoken",
                "/api/v1/management/applications/jwks.json",
            ),
        }
    }

    /// Its OpenID configuration and dynamic registration endpoints.
    fn registration_paths(self) -> (&'static str, &'static str) {
        match self {
            Profile::Moodle => (
                "/mod/lti/openid-configuration.php",
                "/mod/lti/openid-registration.php",
            ),
            Profile::Canvas => (
                "/api/lti/security/openid-configuration",
                "/api/lti/registrations",
            ),
            Profile::Blackboard => (
                "/api/v1/gateway/openid-configuration",
                "/api/v1/gateway/registrations",
            ),
        }
    }

    /// Its `product_family_code`.
    fn product_family(self) -> &'static str {
        match self {
            Profile::Moodle => "moodle",
            Profile::Canvas => "canvas",
            Profile::Blackboard => "BlackboardLearn",
        }
    }

    fn deployment(self) -> &'static str {
        match self {
            Profile::Moodle => "1",
            Profile::Canvas => "12:8865aa05b4b79b64a91a86042e43af5ea8ae79eb",
            Profile::Blackboard => "b81accac-2d43-4a6f-8c6f-ab1b0a7b3d18",
        }
    }

    fn roles(self, teacher: bool) -> Vec<&'static str> {
        match (self, teacher) {
            (Profile::Moodle, true) => vec![
                "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
                "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator",
            ],
            (Profile::Moodle, false) => {
                vec!["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]
            }
            (Profile::Canvas, true) => vec![
                "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor",
                "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
                "http://purl.imsglobal.org/vocab/lis/v2/system/person#User",
            ],
            (Profile::Canvas, false) => vec![
                "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Student",
                "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner",
                "http://purl.imsglobal.org/vocab/lis/v2/system/person#User",
            ],
            (Profile::Blackboard, true) => vec![
                "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty",
                "urn:lti:role:ims/lis/Instructor",
            ],
            (Profile::Blackboard, false) => vec![
                "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Student",
                "urn:lti:role:ims/lis/Learner",
            ],
        }
    }
}

/// A person on the platform.
#[derive(Debug, Clone)]
pub struct User {
    /// Their id there (`sub`).
    pub id: String,
    /// Given name.
    pub given: String,
    /// Family name.
    pub family: String,
    /// Their address (Blackboard leaves it out unless told to share it).
    pub email: Option<String>,
    /// Whether they teach the course.
    pub teacher: bool,
}

/// What a launch opens.
#[derive(Debug, Clone)]
pub enum Message {
    /// A resource link, optionally to a Penpal assignment (its custom parameter).
    ResourceLink {
        /// The link's id.
        id: String,
        /// The assignment it opens.
        assignment: Option<String>,
    },
    /// A teacher picking content.
    DeepLinking,
}

/// A course on the platform.
#[derive(Debug, Clone)]
pub struct Course {
    /// Its id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Custom parameters the tool placement carries (`penpal_language`, `penpal_level`).
    pub custom: Value,
}

#[derive(Default)]
struct Inner {
    keys: Vec<RsaKey>,
    tool_login: String,
    tool_launch: String,
    tool_jwks: String,
    pending: HashMap<String, (User, Course, Message)>,
    /// Access tokens handed out, by token.
    tokens: HashMap<String, i64>,
    tokens_issued: usize,
    line_items: Vec<Value>,
    scores: Vec<(String, Value)>,
    rosters: HashMap<String, Vec<(User, bool)>>,
    down: bool,
    /// Registration tokens handed to tools' registration pages, unspent.
    registration_tokens: Vec<String>,
    /// What tools registered themselves as (dynamic registration), in order.
    registrations: Vec<Value>,
    /// Content items placed by deep linking, with their course.
    placed: Vec<(String, Value)>,
}

/// A running platform simulator.
#[derive(Clone)]
pub struct Platform {
    addr: SocketAddr,
    /// The LMS it plays.
    pub profile: Profile,
    client_id: String,
    inner: Arc<Mutex<Inner>>,
}

impl Platform {
    /// Starts a `profile` platform on a loopback port, its tool registered as `client_id`.
    pub async fn start(profile: Profile, client_id: &str) -> anyhow::Result<Platform> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        Platform::start_on(listener, profile, client_id)
    }

    /// [`Platform::start`] on `listener`.
    pub fn start_on(
        listener: tokio::net::TcpListener,
        profile: Profile,
        client_id: &str,
    ) -> anyhow::Result<Platform> {
        let sim = Platform {
            addr: listener.local_addr()?,
            profile,
            client_id: client_id.to_string(),
            inner: Arc::new(Mutex::new(Inner {
                keys: vec![RsaKey::generate()?],
                ..Inner::default()
            })),
        };
        let (auth, token, jwks) = profile.paths();
        let (configuration, registration) = profile.registration_paths();
        let app = Router::new()
            .route(configuration, get(openid_configuration))
            .route(registration, axum::routing::post(register_route))
            .route(jwks, get(jwks_route))
            .route(auth, get(authorize).post(authorize_form))
            .route(token, axum::routing::post(token_route))
            .route(
                "/courses/{course}/lineitems",
                get(list_line_items).post(create_line_item),
            )
            .route(
                "/courses/{course}/lineitems/{item}/scores",
                axum::routing::post(post_score),
            )
            .route("/courses/{course}/memberships", get(memberships))
            .route(
                "/courses/{course}/deep_links",
                axum::routing::post(deep_link_return),
            )
            .route("/courses/{course}/launch", get(course_launch))
            .with_state(sim.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the LTI platform simulator stopped");
            }
        });
        Ok(sim)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    /// Its issuer: the site for Moodle, one name for every Canvas or Blackboard instance.
    pub fn issuer(&self) -> String {
        match self.profile {
            Profile::Moodle => self.base(),
            Profile::Canvas => "https://canvas.instructure.com".into(),
            Profile::Blackboard => "https://blackboard.com".into(),
        }
    }

    /// Penpal's client id here.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The deployment penpal is launched from.
    pub fn deployment_id(&self) -> &'static str {
        self.profile.deployment()
    }

    /// Its OIDC authorization endpoint.
    pub fn auth_url(&self) -> String {
        format!("{}{}", self.base(), self.profile.paths().0)
    }

    /// Its token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}{}", self.base(), self.profile.paths().1)
    }

    /// Its key set.
    pub fn jwks_url(&self) -> String {
        format!("{}{}", self.base(), self.profile.paths().2)
    }

    /// Its OpenID configuration URL (dynamic registration).
    pub fn configuration_url(&self) -> String {
        format!("{}{}", self.base(), self.profile.registration_paths().0)
    }

    /// The URL an administrator's browser opens when they paste `tool_url` (a tool's dynamic
    /// registration link) into the platform: the link with the platform's OpenID configuration
    /// and a fresh single-use registration token added.
    pub fn registration_start(&self, tool_url: &str) -> String {
        let token = crate::store::new_id();
        self.lock().registration_tokens.push(token.clone());
        let Ok(mut url) = reqwest::Url::parse(tool_url) else {
            return String::new();
        };
        url.query_pairs_mut()
            .append_pair("openid_configuration", &self.configuration_url())
            .append_pair("registration_token", &token);
        url.to_string()
    }

    /// The registrations tools posted, in order.
    pub fn registrations(&self) -> Vec<Value> {
        self.lock().registrations.clone()
    }

    /// Where the tool starts logins and receives launches.
    pub fn register_tool(&self, login_url: &str, launch_url: &str) {
        let mut inner = self.lock();
        inner.tool_login = login_url.to_string();
        inner.tool_launch = launch_url.to_string();
    }

    /// Where the tool publishes its keys (client assertions are checked against them).
    pub fn tool_jwks(&self, url: &str) {
        self.lock().tool_jwks = url.to_string();
    }

    /// The members of course `course` (each with whether they are active), for roster sync.
    pub fn set_roster(&self, course: &str, members: Vec<(User, bool)>) {
        self.lock().rosters.insert(course.to_string(), members);
    }

    /// Takes the grade services down (503) or back up.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// The scores posted, with the line item each went to.
    pub fn scores(&self) -> Vec<(String, Value)> {
        self.lock().scores.clone()
    }

    /// The content items tools placed through deep linking, with the course of each.
    pub fn placed(&self) -> Vec<(String, Value)> {
        self.lock().placed.clone()
    }

    /// The line items made.
    pub fn line_items(&self) -> Vec<Value> {
        self.lock().line_items.clone()
    }

    /// Access tokens handed out.
    pub fn tokens_issued(&self) -> usize {
        self.lock().tokens_issued
    }

    /// A new signing key, published beside the old ones; its id.
    pub fn rotate_key(&self) -> anyhow::Result<String> {
        let key = RsaKey::generate()?;
        let kid = key.kid.clone();
        self.lock().keys.insert(0, key);
        Ok(kid)
    }

    /// A user of this platform, its ids and names in the profile's shape.
    pub fn user(&self, n: u32, given: &str, family: &str, teacher: bool) -> User {
        let id = match self.profile {
            Profile::Moodle => format!("{}", 100 + n),
            Profile::Canvas => format!("535fa085-f2ff-4a6e-8b8f-{n:012}"),
            Profile::Blackboard => format!("_{}_1", 200 + n),
        };
        User {
            id,
            given: given.into(),
            family: family.into(),
            email: (self.profile != Profile::Blackboard)
                .then(|| format!("{}@{}.example", given.to_lowercase(), self.profile.plugin())),
            teacher,
        }
    }

    /// The URL a browser follows to launch `message` in `course` as `user`: the tool's login
    /// initiation, with this platform's hints.
    pub fn begin(&self, user: &User, course: &Course, message: Message) -> String {
        let hint = crate::store::new_id();
        let mut inner = self.lock();
        inner
            .pending
            .insert(hint.clone(), (user.clone(), course.clone(), message));
        let mut url = match reqwest::Url::parse(&inner.tool_login) {
            Ok(u) => u,
            Err(_) => return String::new(),
        };
        url.query_pairs_mut()
            .append_pair("iss", &self.issuer())
            .append_pair("login_hint", &user.id)
            .append_pair("target_link_uri", &inner.tool_launch)
            .append_pair("lti_message_hint", &hint)
            .append_pair("client_id", &self.client_id)
            .append_pair("lti_deployment_id", self.deployment_id());
        url.to_string()
    }

    /// The claims of a launch of `message` in `course` by `user`, answering `nonce`.
    pub fn claims(&self, user: &User, course: &Course, message: &Message, nonce: &str) -> Value {
        let now = crate::store::now_ms() / 1000;
        let lti = |name: &str| format!("https://purl.imsglobal.org/spec/lti/claim/{name}");
        let mut c = json!({
            "iss": self.issuer(),
            "aud": self.client_id,
            "sub": user.id,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            (lti("deployment_id")): self.deployment_id(),
            (lti("version")): "1.3.0",
            (lti("roles")): self.profile.roles(user.teacher),
            (lti("context")): {"id": course.id, "title": course.title, "label": course.title,
                               "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"]},
            (lti("tool_platform")): {"guid": self.base(), "product_family_code": self.profile.plugin()},
            (lti("custom")): course.custom,
        });
        if self.profile == Profile::Blackboard {
            c["given_name"] = json!(user.given);
            c["family_name"] = json!(user.family);
        } else {
            c["name"] = json!(format!("{} {}", user.given, user.family));
            c["given_name"] = json!(user.given);
            c["family_name"] = json!(user.family);
        }
        if let Some(e) = &user.email {
            c["email"] = json!(e);
        }
        if self.profile == Profile::Canvas {
            c["https://www.instructure.com/placement"] = json!("link_selection");
            c[lti("lis")] = json!({"person_sourcedid": user.id});
        }
        let base = self.base();
        c["https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"] = json!({
            "context_memberships_url": format!("{base}/courses/{}/memberships", course.id),
            "service_versions": ["2.0"],
        });
        match message {
            Message::ResourceLink { id, assignment } => {
                c[lti("message_type")] = json!(RESOURCE_LINK);
                c[lti("resource_link")] = json!({"id": id, "title": "Penpal"});
                c[lti("target_link_uri")] = json!(self.lock().tool_launch);
                if let Some(a) = assignment {
                    c[lti("custom")]["assignment"] = json!(a);
                }
                c["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"] = json!({
                    "scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                              "https://purl.imsglobal.org/spec/lti-ags/scope/score",
                              "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"],
                    "lineitems": format!("{base}/courses/{}/lineitems", course.id),
                });
            }
            Message::DeepLinking => {
                c[lti("message_type")] = json!(DEEP_LINKING);
                c["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"] = json!({
                    "deep_link_return_url": format!("{base}/courses/{}/deep_links", course.id),
                    "accept_types": ["ltiResourceLink"],
                    "accept_presentation_document_targets": ["iframe", "window"],
                    // Moodle and Blackboard take several items; Canvas's assignment
                    // placement one.
                    "accept_multiple": self.profile != Profile::Canvas,
                    "data": "opaque-platform-data",
                });
            }
        }
        c
    }

    /// Its published keys.
    pub fn public_jwks(&self) -> Value {
        let keys: Vec<Value> = self.lock().keys.iter().map(RsaKey::jwk).collect();
        json!({ "keys": keys })
    }

    /// `claims` signed with the current key.
    pub fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let key = self.lock().keys[0].clone();
        key.sign(claims)
    }

    /// `claims` signed with the current key under `header` (to forge a bad `alg` or `kid`).
    pub fn sign_with(&self, header: Header, claims: &Value) -> anyhow::Result<String> {
        let key = self.lock().keys[0].clone();
        key.sign_with(header, claims)
    }

    /// The payload of a token, unverified (tests read what the platform signed).
    pub fn payload(token: &str) -> Option<Value> {
        let part = token.split('.').nth(1)?;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .ok()?;
        serde_json::from_slice(&raw).ok()
    }
}

async fn jwks_route(State(sim): State<Platform>) -> Json<Value> {
    Json(sim.public_jwks())
}

#[derive(Debug, Deserialize)]
struct AuthRequest {
    scope: Option<String>,
    response_type: Option<String>,
    response_mode: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    login_hint: Option<String>,
    lti_message_hint: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    prompt: Option<String>,
}

fn refuse(why: &str) -> Response {
    (StatusCode::BAD_REQUEST, why.to_string()).into_response()
}

async fn authorize_form(
    sim: State<Platform>,
    axum::extract::Form(r): axum::extract::Form<AuthRequest>,
) -> Response {
    answer(sim, r)
}

async fn authorize(sim: State<Platform>, Query(r): Query<AuthRequest>) -> Response {
    answer(sim, r)
}

/// The authorization endpoint: checks the request as a platform does, then answers the
/// browser with a form posting the signed launch to the tool.
fn answer(State(sim): State<Platform>, r: AuthRequest) -> Response {
    if r.scope.as_deref() != Some("openid") {
        return refuse("scope must be openid");
    }
    if r.response_type.as_deref() != Some("id_token")
        || r.response_mode.as_deref() != Some("form_post")
    {
        return refuse("response_type must be id_token, response_mode form_post");
    }
    if r.prompt.as_deref() != Some("none") {
        return refuse("prompt must be none");
    }
    if r.client_id.as_deref() != Some(sim.client_id.as_str()) {
        return refuse("unknown client_id");
    }
    let launch = sim.lock().tool_launch.clone();
    if r.redirect_uri.as_deref() != Some(launch.as_str()) {
        return refuse("redirect_uri is not the tool's registered one");
    }
    let (Some(state), Some(nonce), Some(hint)) = (r.state, r.nonce, r.lti_message_hint) else {
        return refuse("state, nonce and lti_message_hint are required");
    };
    let Some((user, course, message)) = sim.lock().pending.remove(&hint) else {
        return refuse("unknown or used lti_message_hint");
    };
    if r.login_hint.as_deref() != Some(user.id.as_str()) {
        return refuse("login_hint is not the user this launch is for");
    }
    let claims = sim.claims(&user, &course, &message, &nonce);
    let token = match sim.sign(&claims) {
        Ok(t) => t,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    Html(format!(
        "<!doctype html><html><body onload=\"document.forms[0].submit()\">\
         <form method=\"post\" action=\"{}\">\
         <input type=\"hidden\" name=\"id_token\" value=\"{}\">\
         <input type=\"hidden\" name=\"state\" value=\"{}\">\
         </form></body></html>",
        escape(&launch),
        escape(&token),
        escape(&state)
    ))
    .into_response()
}

/// The platform's OpenID configuration, as LTI Dynamic Registration reads it.
async fn openid_configuration(State(sim): State<Platform>) -> Json<Value> {
    let base = sim.base();
    let (_, registration) = sim.profile.registration_paths();
    Json(json!({
        "issuer": sim.issuer(),
        "authorization_endpoint": sim.auth_url(),
        "token_endpoint": sim.token_url(),
        "jwks_uri": sim.jwks_url(),
        "registration_endpoint": format!("{base}{registration}"),
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["id_token"],
        "scopes_supported": ["openid",
            "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
            "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
            "https://purl.imsglobal.org/spec/lti-ags/scope/score",
            "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"],
        "claims_supported": ["iss", "aud", "sub", "name", "given_name", "family_name", "email"],
        "subject_types_supported": ["public", "pairwise"],
        "https://purl.imsglobal.org/spec/lti-platform-configuration": {
            "product_family_code": sim.profile.product_family(),
            "version": "4.3",
            "messages_supported": [{"type": RESOURCE_LINK}, {"type": DEEP_LINKING}],
        },
    }))
}

/// The registration endpoint: checks the tool's registration as a platform does (a live
/// registration token, the OpenID client fields LTI requires), remembers where the tool logs
/// in, launches and publishes its keys, and answers with the client id and a deployment.
async fn register_route(
    State(sim): State<Platform>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    {
        let mut inner = sim.lock();
        match bearer.and_then(|b| inner.registration_tokens.iter().position(|t| *t == b)) {
            Some(at) => {
                inner.registration_tokens.remove(at);
            }
            None => {
                return (StatusCode::UNAUTHORIZED, "no live registration token").into_response();
            }
        }
    }
    let bad = |why: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_client_metadata", "error_description": why})),
        )
            .into_response()
    };
    let Ok(r) = serde_json::from_slice::<Value>(&body) else {
        return bad("not JSON");
    };
    let text = |k: &str| r[k].as_str().unwrap_or_default().to_string();
    let config = &r["https://purl.imsglobal.org/spec/lti-tool-configuration"];
    if r["application_type"] != "web"
        || r["response_types"] != json!(["id_token"])
        || text("token_endpoint_auth_method") != "private_key_jwt"
        || !r["grant_types"].as_array().is_some_and(|g| {
            g.contains(&json!("implicit")) && g.contains(&json!("client_credentials"))
        })
    {
        return bad(
            "an LTI tool is a web application of id_token, implicit and client_credentials with private_key_jwt",
        );
    }
    let login = text("initiate_login_uri");
    let Some(launch) = r["redirect_uris"][0].as_str().map(str::to_string) else {
        return bad("no redirect_uris");
    };
    let jwks = text("jwks_uri");
    if login.is_empty() || jwks.is_empty() || config["target_link_uri"].as_str().is_none() {
        return bad(
            "initiate_login_uri, jwks_uri and the tool configuration's target_link_uri are required",
        );
    }
    let mut inner = sim.lock();
    inner.tool_login = login;
    inner.tool_launch = launch;
    inner.tool_jwks = jwks;
    inner.registrations.push(r.clone());
    let mut answer = r;
    answer["client_id"] = json!(sim.client_id);
    answer["https://purl.imsglobal.org/spec/lti-tool-configuration"]["deployment_id"] =
        json!(sim.profile.deployment());
    Json(answer).into_response()
}

fn unavailable() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance").into_response()
}

/// The token endpoint: client credentials with a client assertion (RFC 7523) the tool signed
/// with a key from its published set.
async fn token_route(
    State(sim): State<Platform>,
    axum::extract::Form(f): axum::extract::Form<HashMap<String, String>>,
) -> Response {
    let (down, jwks_url) = {
        let inner = sim.lock();
        (inner.down, inner.tool_jwks.clone())
    };
    if down {
        return unavailable();
    }
    let bad = |why: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_client", "error_description": why})),
        )
            .into_response()
    };
    if f.get("grant_type").map(String::as_str) != Some("client_credentials")
        || f.get("client_assertion_type").map(String::as_str)
            != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return bad("client_credentials with a JWT client assertion");
    }
    let Some(assertion) = f.get("client_assertion") else {
        return bad("no client_assertion");
    };
    match tool_token(&jwks_url, assertion, &sim.token_url(), &sim.client_id).await {
        Ok(c) if c["sub"] == sim.client_id.as_str() && c.get("jti").is_some() => {}
        Ok(_) => return bad("the client assertion names another subject or no jti"),
        Err(why) => return bad(&why),
    }
    let token = crate::store::new_id();
    let mut inner = sim.lock();
    inner
        .tokens
        .insert(token.clone(), crate::store::now_ms() + 3_600_000);
    inner.tokens_issued += 1;
    Json(
        json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600,
                "scope": f.get("scope").cloned().unwrap_or_default()}),
    )
    .into_response()
}

/// The claims of `token`, a JWT the tool signed (RS256, a key of its set at `jwks_url`) for
/// `audience`, issued as `client_id`; why not, if not.
async fn tool_token(
    jwks_url: &str,
    token: &str,
    audience: &str,
    client_id: &str,
) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| "not a JWT".to_string())?;
    let set: Value = match reqwest::get(jwks_url).await {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => return Err("the tool's keys could not be fetched".into()),
    };
    let jwk = set["keys"]
        .as_array()
        .and_then(|ks| {
            ks.iter()
                .find(|k| k["kid"].as_str() == header.kid.as_deref())
        })
        .and_then(|k| serde_json::from_value::<jsonwebtoken::jwk::Jwk>(k.clone()).ok())
        .ok_or("the token's key is not in the tool's set")?;
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).map_err(|_| "unusable key")?;
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&[audience]);
    v.set_issuer(&[client_id]);
    v.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
    jsonwebtoken::decode::<Value>(token, &key, &v)
        .map(|t| t.claims)
        .map_err(|e| format!("the token does not verify: {e}"))
}

#[derive(Debug, Deserialize)]
struct CourseLaunch {
    /// `teacher` (Claire Dupont) or `learner` (Ana Lima).
    #[serde(rename = "as")]
    who: String,
    /// The placed item to open (its index among the course's), else the course's plain link
    /// — or, for the teacher, the deep-linking placement.
    item: Option<usize>,
}

/// A link on the course's page, as a browser follows it: the launch of a placed item (or
/// deep linking, or the plain link) by the course's teacher or learner, redirected to the
/// tool's login initiation. Lets a browser test click through a course.
async fn course_launch(
    State(sim): State<Platform>,
    axum::extract::Path(course): axum::extract::Path<String>,
    Query(q): Query<CourseLaunch>,
) -> Response {
    let teacher = q.who == "teacher";
    let user = if teacher {
        sim.user(1, "Claire", "Dupont", true)
    } else {
        sim.user(2, "Ana", "Lima", false)
    };
    let c = Course {
        id: course.clone(),
        title: "Français B1".into(),
        custom: json!({"penpal_language": "fr", "penpal_level": "B1"}),
    };
    let message = match q.item {
        Some(n) => {
            let placed: Vec<Value> = sim
                .placed()
                .into_iter()
                .filter(|(c, _)| *c == course)
                .map(|(_, item)| item)
                .collect();
            let Some(item) = placed.get(n) else {
                return (StatusCode::NOT_FOUND, "no such item in the course").into_response();
            };
            Message::ResourceLink {
                id: format!("placed-{n}"),
                assignment: item["custom"]["assignment"].as_str().map(str::to_string),
            }
        }
        None if teacher => Message::DeepLinking,
        None => Message::ResourceLink {
            id: "course-link".into(),
            assignment: None,
        },
    };
    let to = sim.begin(&user, &c, message);
    (StatusCode::FOUND, [("location", to)]).into_response()
}

/// The deep-link return URL: the browser posts the tool's signed `LtiDeepLinkingResponse`
/// (form field `JWT`); the platform checks it as Moodle does and places its resource links in
/// the course, making a gradebook column for each that asks for one.
async fn deep_link_return(
    State(sim): State<Platform>,
    axum::extract::Path(course): axum::extract::Path<String>,
    axum::extract::Form(f): axum::extract::Form<HashMap<String, String>>,
) -> Response {
    let Some(jwt) = f.get("JWT") else {
        return refuse("no JWT");
    };
    let jwks_url = sim.lock().tool_jwks.clone();
    let c = match tool_token(&jwks_url, jwt, &sim.issuer(), &sim.client_id).await {
        Ok(c) => c,
        Err(why) => return refuse(&why),
    };
    let lti = |name: &str| format!("https://purl.imsglobal.org/spec/lti/claim/{name}");
    let dl = |name: &str| format!("https://purl.imsglobal.org/spec/lti-dl/claim/{name}");
    if c[lti("message_type")] != "LtiDeepLinkingResponse"
        || c[lti("version")] != "1.3.0"
        || c[lti("deployment_id")] != sim.deployment_id()
        || c.get("nonce").is_none()
    {
        return refuse("an LtiDeepLinkingResponse 1.3.0 of this deployment, with a nonce");
    }
    if c[dl("data")] != "opaque-platform-data" {
        return refuse("the data claim must come back unchanged");
    }
    let items = c[dl("content_items")]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if items.len() > 1 && sim.profile == Profile::Canvas {
        return refuse("this placement accepts one item");
    }
    let base = sim.base();
    let mut inner = sim.lock();
    for item in &items {
        if item["type"] != "ltiResourceLink" {
            return refuse("only ltiResourceLink items are accepted");
        }
    }
    for item in items {
        if let Some(li) = item.get("lineItem") {
            let n = inner.line_items.len() + 1;
            let mut line = li.clone();
            line["id"] = json!(format!("{base}/courses/{course}/lineitems/{n}"));
            line["label"] = line.get("label").cloned().unwrap_or(item["title"].clone());
            inner.line_items.push(line);
        }
        inner.placed.push((course.clone(), item));
    }
    Html(format!(
        "<!doctype html><p>{}</p>",
        escape(c[dl("msg")].as_str().unwrap_or("done"))
    ))
    .into_response()
}

/// Why `headers` do not carry a live access token (503 when the services are down), if
/// they do not.
fn authorized(sim: &Platform, headers: &axum::http::HeaderMap) -> Result<(), Box<Response>> {
    let inner = sim.lock();
    if inner.down {
        return Err(Box::new(unavailable()));
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token.and_then(|t| inner.tokens.get(t)) {
        Some(until) if *until > crate::store::now_ms() => Ok(()),
        _ => Err(Box::new(
            (StatusCode::UNAUTHORIZED, "a bearer token is needed").into_response(),
        )),
    }
}

async fn list_line_items(
    State(sim): State<Platform>,
    axum::extract::Path(course): axum::extract::Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> Response {
    if let Err(r) = authorized(&sim, &headers) {
        return *r;
    }
    let prefix = format!("{}/courses/{course}/lineitems/", sim.base());
    let items: Vec<Value> = sim
        .lock()
        .line_items
        .iter()
        .filter(|li| li["id"].as_str().is_some_and(|id| id.starts_with(&prefix)))
        .filter(|li| {
            q.get("resource_id")
                .is_none_or(|r| li["resourceId"].as_str() == Some(r))
        })
        .cloned()
        .collect();
    Json(items).into_response()
}

async fn create_line_item(
    State(sim): State<Platform>,
    axum::extract::Path(course): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = authorized(&sim, &headers) {
        return *r;
    }
    let Ok(mut item) = serde_json::from_slice::<Value>(&body) else {
        return refuse("a line item is JSON");
    };
    if item["label"].as_str().is_none() || item["scoreMaximum"].as_f64().is_none_or(|m| m <= 0.0) {
        return refuse("a line item needs a label and a positive scoreMaximum");
    }
    let mut inner = sim.lock();
    let n = inner.line_items.len() + 1;
    item["id"] = json!(format!("{}/courses/{course}/lineitems/{n}", sim.base()));
    inner.line_items.push(item.clone());
    (StatusCode::CREATED, Json(item)).into_response()
}

async fn post_score(
    State(sim): State<Platform>,
    axum::extract::Path((course, item)): axum::extract::Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = authorized(&sim, &headers) {
        return *r;
    }
    if headers.get("content-type").and_then(|v| v.to_str().ok())
        != Some("application/vnd.ims.lis.v1.score+json")
    {
        return refuse("scores are application/vnd.ims.lis.v1.score+json");
    }
    let Ok(score) = serde_json::from_slice::<Value>(&body) else {
        return refuse("a score is JSON");
    };
    for field in ["userId", "timestamp", "activityProgress", "gradingProgress"] {
        if score.get(field).is_none() {
            return refuse(&format!("a score needs `{field}`"));
        }
    }
    let url = format!("{}/courses/{course}/lineitems/{item}", sim.base());
    let mut inner = sim.lock();
    if !inner.line_items.iter().any(|li| li["id"] == url.as_str()) {
        return (StatusCode::NOT_FOUND, "no such line item").into_response();
    }
    inner.scores.push((url, score));
    StatusCode::NO_CONTENT.into_response()
}

/// Names and Role Provisioning Services: the course's members, two a page, with a `Link` to
/// the next page.
async fn memberships(
    State(sim): State<Platform>,
    axum::extract::Path(course): axum::extract::Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> Response {
    if let Err(r) = authorized(&sim, &headers) {
        return *r;
    }
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let all = sim.lock().rosters.get(&course).cloned().unwrap_or_default();
    let members: Vec<Value> = all
        .iter()
        .skip(page * 2)
        .take(2)
        .map(|(u, active)| {
            let mut m = json!({
                "user_id": u.id,
                "roles": sim.profile.roles(u.teacher),
                "status": if *active { "Active" } else { "Inactive" },
                "given_name": u.given,
                "family_name": u.family,
            });
            if sim.profile != Profile::Blackboard {
                m["name"] = json!(format!("{} {}", u.given, u.family));
            }
            if let Some(e) = &u.email {
                m["email"] = json!(e);
            }
            m
        })
        .collect();
    let url = format!("{}/courses/{course}/memberships", sim.base());
    let body = Json(json!({"id": url, "context": {"id": course}, "members": members}));
    let mut resp = body.into_response();
    if (page + 1) * 2 < all.len()
        && let Ok(v) =
            axum::http::HeaderValue::from_str(&format!("<{url}?page={}>; rel=\"next\"", page + 1))
    {
        resp.headers_mut().insert(axum::http::header::LINK, v);
    }
    resp
}
