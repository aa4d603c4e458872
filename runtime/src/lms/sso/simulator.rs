//! An OpenID Connect identity provider simulator, for tests and offline work (`penpal
//! simulate-idp`): a loopback HTTP server with its own RSA keys and JWKS, a discovery document,
//! an authorization endpoint that demands PKCE (S256) and signs in the person its `login_hint`
//! names — or shows a page to choose one, as a provider's sign-in page would — and a token
//! endpoint that checks the client secret (Basic or form), the code (single use, its redirect
//! URI) and the PKCE verifier before it hands out a signed id token. Tests forge what a bad
//! provider would: claims changed, a key it does not publish.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::lms::lti::rsa::RsaKey;
use crate::notify::templates::escape;

/// A person the provider knows.
#[derive(Debug, Clone)]
pub struct Person {
    /// Their subject id.
    pub sub: String,
    /// Their address.
    pub email: String,
    /// Whether the provider verified the address.
    pub email_verified: bool,
    /// Their name.
    pub name: String,
}

#[derive(Debug, Clone)]
struct Request {
    redirect_uri: String,
    state: String,
    nonce: String,
    challenge: String,
}

#[derive(Default)]
struct Inner {
    key: Option<RsaKey>,
    /// Signs tokens when set: a key the JWKS does not publish.
    foreign: Option<RsaKey>,
    redirect_uris: Vec<String>,
    people: Vec<Person>,
    /// Authorization requests waiting for a person to be chosen.
    waiting: HashMap<String, Request>,
    /// Codes handed out, with the person and the request.
    codes: HashMap<String, (Person, Request)>,
    /// Claims merged into the next id tokens (`null` removes one).
    tamper: Option<Value>,
    tokens_issued: usize,
}

/// A running identity provider.
#[derive(Clone)]
pub struct Idp {
    addr: SocketAddr,
    client_id: String,
    client_secret: String,
    inner: Arc<Mutex<Inner>>,
}

impl Idp {
    /// Starts a provider on a loopback port, penpal's client registered as `client_id` with
    /// `client_secret`.
    pub async fn start(client_id: &str, client_secret: &str) -> anyhow::Result<Idp> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        Idp::start_on(listener, client_id, client_secret)
    }

    /// [`Idp::start`] on `listener`.
    pub fn start_on(
        listener: tokio::net::TcpListener,
        client_id: &str,
        client_secret: &str,
    ) -> anyhow::Result<Idp> {
        let idp = Idp {
            addr: listener.local_addr()?,
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            inner: Arc::new(Mutex::new(Inner {
                key: Some(RsaKey::generate()?),
                ..Inner::default()
            })),
        };
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/authorize", get(authorize))
            .route("/authorize/{request}/as/{n}", get(choose))
            .route("/authorize/{request}/cancel", get(cancel))
            .route("/token", post(token))
            .route("/jwks", get(jwks))
            .with_state(idp.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the identity provider simulator stopped");
            }
        });
        Ok(idp)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Its issuer.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    /// Accepts `uri` as a redirect URI of penpal's client.
    pub fn allow_redirect(&self, uri: &str) {
        self.lock().redirect_uris.push(uri.to_string());
    }

    /// Adds a person who can sign in.
    pub fn add_person(&self, sub: &str, email: &str, name: &str, email_verified: bool) {
        self.lock().people.push(Person {
            sub: sub.into(),
            email: email.into(),
            email_verified,
            name: name.into(),
        });
    }

    /// Merges `claims` into the id tokens it signs from now on (`null` removes a claim).
    pub fn tamper(&self, claims: Value) {
        self.lock().tamper = Some(claims);
    }

    /// Signs from now on with a key its JWKS does not publish (`false` goes back).
    pub fn sign_with_unpublished_key(&self, on: bool) -> anyhow::Result<()> {
        self.lock().foreign = if on { Some(RsaKey::generate()?) } else { None };
        Ok(())
    }

    /// Id tokens handed out so far.
    pub fn tokens_issued(&self) -> usize {
        self.lock().tokens_issued
    }
}

async fn discovery(State(idp): State<Idp>) -> Json<Value> {
    let base = idp.issuer();
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": ["openid", "email", "profile"],
    }))
}

async fn jwks(State(idp): State<Idp>) -> Json<Value> {
    let key = idp.lock().key.as_ref().map(RsaKey::jwk);
    Json(json!({ "keys": key.into_iter().collect::<Vec<_>>() }))
}

fn refuse(why: &str) -> Response {
    (StatusCode::BAD_REQUEST, why.to_string()).into_response()
}

#[derive(Debug, Deserialize)]
struct AuthQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    login_hint: Option<String>,
}

fn back(r: &Request, params: &[(&str, &str)]) -> Response {
    let mut url = match reqwest::Url::parse(&r.redirect_uri) {
        Ok(u) => u,
        Err(_) => return refuse("bad redirect_uri"),
    };
    url.query_pairs_mut()
        .extend_pairs(params)
        .append_pair("state", &r.state);
    Redirect::to(url.as_str()).into_response()
}

fn signed_in(idp: &Idp, person: Person, r: Request) -> Response {
    let code = crate::auth::tokens::random_token();
    idp.lock().codes.insert(code.clone(), (person, r.clone()));
    back(&r, &[("code", &code)])
}

/// The authorization endpoint: checks the request as a provider does; a `login_hint` naming
/// a known person signs them in at once (a live session at the provider), else a page lists
/// the people to choose from.
async fn authorize(State(idp): State<Idp>, Query(q): Query<AuthQuery>) -> Response {
    if q.client_id.as_deref() != Some(idp.client_id.as_str()) {
        return refuse("unknown client_id");
    }
    let Some(redirect_uri) = q
        .redirect_uri
        .filter(|u| idp.lock().redirect_uris.contains(u))
    else {
        return refuse("redirect_uri is not registered for this client");
    };
    if q.response_type.as_deref() != Some("code") {
        return refuse("response_type must be code");
    }
    if !q
        .scope
        .as_deref()
        .is_some_and(|s| s.split(' ').any(|x| x == "openid"))
    {
        return refuse("scope must include openid");
    }
    let (Some(state), Some(nonce)) = (q.state, q.nonce) else {
        return refuse("state and nonce are required");
    };
    if q.code_challenge_method.as_deref() != Some("S256") {
        return refuse("PKCE with code_challenge_method=S256 is required");
    }
    let Some(challenge) = q.code_challenge.filter(|c| c.len() == 43) else {
        return refuse("code_challenge must be an S256 challenge");
    };
    let r = Request {
        redirect_uri,
        state,
        nonce,
        challenge,
    };
    let hinted = q.login_hint.and_then(|h| {
        idp.lock()
            .people
            .iter()
            .find(|p| p.email.eq_ignore_ascii_case(&h))
            .cloned()
    });
    if let Some(person) = hinted {
        return signed_in(&idp, person, r);
    }
    let id = crate::auth::tokens::random_token();
    idp.lock().waiting.insert(id.clone(), r);
    let people: String = idp
        .lock()
        .people
        .iter()
        .enumerate()
        .map(|(n, p)| {
            format!(
                "<li><a href=\"/authorize/{id}/as/{n}\">Continue as {} ({})</a></li>",
                escape(&p.name),
                escape(&p.email)
            )
        })
        .collect();
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>School sign-in</title></head>\
         <body><main><h1>School sign-in</h1><ul>{people}</ul>\
         <p><a href=\"/authorize/{id}/cancel\">Cancel</a></p></main></body></html>"
    ))
    .into_response()
}

async fn choose(State(idp): State<Idp>, Path((request, n)): Path<(String, usize)>) -> Response {
    let Some(r) = idp.lock().waiting.remove(&request) else {
        return refuse("unknown or used sign-in");
    };
    let Some(person) = idp.lock().people.get(n).cloned() else {
        return refuse("no such person");
    };
    signed_in(&idp, person, r)
}

async fn cancel(State(idp): State<Idp>, Path(request): Path<String>) -> Response {
    let Some(r) = idp.lock().waiting.remove(&request) else {
        return refuse("unknown or used sign-in");
    };
    back(&r, &[("error", "access_denied")])
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

/// The client's credentials, from Basic (each part form-decoded) or the form.
fn client(headers: &HeaderMap, f: &TokenForm) -> Option<(String, String)> {
    let decode = |s: &str| {
        reqwest::Url::parse(&format!("x:?v={s}"))
            .ok()?
            .query_pairs()
            .next()
            .map(|(_, v)| v.into_owned())
    };
    if let Some(basic) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(basic)
            .ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (id, secret) = raw.split_once(':')?;
        return Some((decode(id)?, decode(secret)?));
    }
    Some((f.client_id.clone()?, f.client_secret.clone()?))
}

async fn token(State(idp): State<Idp>, headers: HeaderMap, Form(f): Form<TokenForm>) -> Response {
    match client(&headers, &f) {
        Some((id, secret)) if id == idp.client_id && secret == idp.client_secret => {}
        _ => return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client"),
    }
    if f.grant_type.as_deref() != Some("authorization_code") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    // Single use: a code is gone once presented, right or wrong.
    let Some((person, r)) = f.code.and_then(|c| idp.lock().codes.remove(&c)) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    if f.redirect_uri.as_deref() != Some(r.redirect_uri.as_str()) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let verified = f
        .code_verifier
        .is_some_and(|v| crate::lms::sso::challenge(&v) == r.challenge);
    if !verified {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let now = crate::store::now_ms() / 1000;
    let mut claims = json!({
        "iss": idp.issuer(), "sub": person.sub, "aud": idp.client_id, "iat": now, "exp": now + 300,
        "nonce": r.nonce, "email": person.email, "email_verified": person.email_verified,
        "name": person.name,
    });
    let (key, tamper) = {
        let mut inner = idp.lock();
        inner.tokens_issued += 1;
        let key = inner.foreign.clone().or_else(|| inner.key.clone());
        (key, inner.tamper.clone())
    };
    if let (Some(t), Some(c)) = (
        tamper.as_ref().and_then(Value::as_object),
        claims.as_object_mut(),
    ) {
        for (k, v) in t {
            if v.is_null() {
                c.remove(k);
            } else {
                c.insert(k.clone(), v.clone());
            }
        }
    }
    let Some(key) = key else {
        return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error");
    };
    match key.sign(&claims) {
        Ok(id_token) => Json(json!({
            "access_token": crate::auth::tokens::random_token(), "token_type": "Bearer",
            "expires_in": 300, "id_token": id_token,
        }))
        .into_response(),
        Err(_) => oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
    }
}
