//! Chat turns over the wire: the live socket (`WS /v1/conversations/{id}/live`), and for
//! simple clients `POST /v1/conversations/{id}/messages`, answering with the whole reply or,
//! with `Accept: text/event-stream`, the same events as the socket as Server-Sent Events.
//!
//! The socket is authenticated without a long-lived token in the URL: browsers get a
//! single-use ticket valid for 60 seconds from `POST …/live-ticket` (with their bearer token)
//! and pass it as `?ticket=`; other clients may send `Authorization: Bearer` on the upgrade.

use std::convert::Infallible;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use axum::extract::ws::{
    CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade,
    rejection::WebSocketUpgradeRejection,
};
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::conversation::{
    Accepted, Event, Refusal, Registry, Retry, Submit, Subscribe, Subscriber, Unsubscribe,
    check_text,
};
use super::session::{self, Closed, Heard, Inbound, Out, Session};
use crate::auth::tokens::{hash_token, random_token};
use crate::auth::{AuthUser, Gate};
use crate::http::{ApiError, ApiResult, Json, Path, Query, bearer};
use crate::store::now_ms;
use crate::tutoring::conversations::owned;
use crate::tutoring::protocol::{FrameError, ServerEvent, SessionEnded};
use crate::tutoring::state::TutoringState;

/// How long a live ticket is valid.
const TICKET_TTL_MS: i64 = 60_000;
/// Longest frame (and message) a client may send; a longer one gets an `error` event with code
/// `too_large` and the socket closes with 1009 (message too big).
pub const MAX_FRAME: usize = 64 * 1024;
/// Longest a whole-reply request waits for its turn.
const TURN_WAIT: Duration = Duration::from_secs(180);

/// What the live routes use: the tutoring room's state and the running conversations.
#[derive(Clone)]
pub struct LiveState {
    /// The tutoring room's state (database, keys, model, tutors).
    pub tutoring: TutoringState,
    /// The running conversation actors.
    pub conversations: Arc<Registry>,
}

impl Deref for LiveState {
    type Target = TutoringState;

    fn deref(&self) -> &TutoringState {
        &self.tutoring
    }
}

impl FromRef<LiveState> for Gate {
    fn from_ref(s: &LiveState) -> Gate {
        Gate::from_ref(&s.tutoring)
    }
}

/// The routes for live chat.
pub fn router(state: LiveState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(ticket))
        .routes(routes!(live))
        .routes(routes!(post_message))
        .routes(routes!(retry))
        .with_state(state)
}

/// A single-use ticket for the socket.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ticket {
    /// Pass as `?ticket=` to the live URL.
    ticket: String,
    /// Seconds it stays valid.
    expires_in: u64,
}

#[utoipa::path(post, path = "/v1/conversations/{id}/live-ticket", tag = "chat",
    responses((status = 201, body = Ticket)), security(("bearer" = [])))]
async fn ticket(
    State(app): State<LiveState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Ticket>)> {
    owned(&app.db, &user.id, &id).await?;
    let t = random_token();
    let now = now_ms();
    app.db
        .exec(
            "DELETE live_ticket WHERE expires_at < $now;
             CREATE type::record('live_ticket', $h) CONTENT { user: $u, family: $f, conversation: $c, expires_at: $exp }",
            json!({"h": hash_token(&t), "u": user.id, "f": user.family, "c": id, "exp": now + TICKET_TTL_MS, "now": now}),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Ticket {
            ticket: t,
            expires_in: (TICKET_TTL_MS / 1000) as u64,
        }),
    ))
}

/// How to join the socket.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LiveParams {
    /// From `POST …/live-ticket`.
    ticket: Option<String>,
    /// Replay messages after this sequence number (a reconnecting client's last seen).
    after: Option<i64>,
}

#[derive(Deserialize)]
struct TicketRow {
    user: String,
    #[serde(default)]
    family: Option<String>,
    conversation: String,
    expires_at: i64,
}

/// The user a live request authenticates as, and the session (family) it belongs to.
async fn live_user(
    app: &LiveState,
    headers: &HeaderMap,
    ticket: Option<&str>,
    conversation: &str,
) -> ApiResult<(String, Option<String>)> {
    if let Some(token) = bearer(headers) {
        let claims = app.keys.authenticate(&app.db, token).await?;
        return Ok((claims.sub, Some(claims.fam)));
    }
    let Some(ticket) = ticket else {
        return Err(ApiError::unauthorized(
            "get a ticket from POST /v1/conversations/{id}/live-ticket and pass it as ?ticket=",
        ));
    };
    let row: Option<TicketRow> = app
        .db
        .one(
            "DELETE type::record('live_ticket', $h) RETURN BEFORE",
            json!({"h": hash_token(ticket)}),
        )
        .await?;
    match row {
        Some(r) if r.expires_at > now_ms() && r.conversation == conversation => {
            if let Some(family) = &r.family
                && !app.keys.session_active(&app.db, family).await?
            {
                return Err(crate::auth::tokens::session_ended());
            }
            Ok((r.user, r.family))
        }
        _ => Err(ApiError::Unauthorized {
            code: "invalid_ticket",
            message: "the ticket is unknown, used or expired: get a new one".into(),
        }),
    }
}

#[utoipa::path(get, path = "/v1/conversations/{id}/live", tag = "chat", params(LiveParams),
    responses((status = 101, description = "a WebSocket: client frames `message`, `retry`, `resume`, `ping`; server events `hello`, `message.accepted`, `message.stored`, `turn.delta`, `turn.complete`, `turn.error`, `turn.resume`, `message`, `error`, `pong`")))]
async fn live(
    State(app): State<LiveState>,
    Path(id): Path<String>,
    Query(p): Query<LiveParams>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let ws = ws.map_err(|e| ApiError::BadRequest(format!("this URL speaks WebSocket: {e}")))?;
    let (user, family) = live_user(&app, &headers, p.ticket.as_deref(), &id).await?;
    let conv = owned(&app.db, &user, &id).await?;
    let addr = app
        .conversations
        .get(&conv)
        .ok_or_else(|| ApiError::Unavailable("the server is shutting down".into()))?;
    let arbiter = app
        .conversations
        .arbiter()
        .ok_or_else(|| ApiError::Unavailable("the server is shutting down".into()))?;
    let session = SessionWatch {
        app: app.clone(),
        family,
    };
    Ok(ws
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .on_upgrade(move |socket| serve(socket, addr, id, session, arbiter, p.after)))
}

/// The socket's session: when it ends (sign-out, password change, account deletion, on this
/// node or another), the socket closes with [`SESSION_ENDED`].
struct SessionWatch {
    app: LiveState,
    family: Option<String>,
}

/// Close code of a socket whose session ended: the client should sign in again, not reconnect.
pub const SESSION_ENDED: u16 = 4401;
/// How often an open socket re-reads its session's state (revocations made on other nodes).
const SESSION_POLL: Duration = Duration::from_secs(15);

impl SessionWatch {
    /// Resolves when the session ends; never, for a socket with no session to watch.
    async fn ended(self) {
        use tokio::sync::broadcast::error::RecvError;
        let Some(family) = self.family else {
            return std::future::pending().await;
        };
        let app = &self.app;
        // A read failure is not an ending: the next poll asks again.
        let gone =
            || async { matches!(app.keys.session_active(&app.db, &family).await, Ok(false)) };
        let mut heard = app.keys.ended_sessions();
        let mut poll = tokio::time::interval(SESSION_POLL);
        poll.tick().await;
        loop {
            let check = tokio::select! {
                ended = heard.recv() => match ended {
                    Ok(f) => {
                        if f == family {
                            return;
                        }
                        false
                    }
                    // Missed some: read the state instead.
                    Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => return std::future::pending().await,
                },
                _ = poll.tick() => true,
            };
            if check && gone().await {
                return;
            }
        }
    }
}

/// Runs one socket: a writer task draining the session's queue, and this task reading.
async fn serve(
    socket: WebSocket,
    conv: actix::Addr<super::conversation::Conversation>,
    id: String,
    watch: SessionWatch,
    arbiter: actix::ArbiterHandle,
    after: Option<i64>,
) {
    let _open = SocketGauge::open();
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Out>(session::QUEUE);
    let db = watch.app.db.clone();
    let control = tx.clone();
    let ended_tx = tx.clone();
    let session =
        Session::start_in_arbiter(&arbiter, move |_| Session::new(conv, id, db, tx, after));
    let ended = tokio::spawn(async move {
        watch.ended().await;
        let event = ServerEvent::SessionEnded(SessionEnded {
            message: "this session has ended: sign in again".into(),
        });
        let _ = ended_tx.send(Out::Text(event.to_json())).await;
        let _ = ended_tx
            .send(Out::Close(SESSION_ENDED, "session ended"))
            .await;
    });
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            let r = match out {
                Out::Text(t) => sink.send(WsMessage::Text(t.into())).await,
                Out::Ping => sink.send(WsMessage::Ping(Default::default())).await,
                Out::Close(code, reason) => {
                    let _ = sink
                        .send(WsMessage::Close(Some(CloseFrame {
                            code,
                            reason: reason.into(),
                        })))
                        .await;
                    break;
                }
            };
            if r.is_err() {
                break;
            }
        }
    });
    let mut linger = false;
    while let Some(frame) = stream.next().await {
        match frame {
            Ok(WsMessage::Text(t)) => session.do_send(Inbound(t.to_string())),
            Ok(WsMessage::Binary(_)) => session.do_send(Inbound(String::new())),
            Ok(WsMessage::Ping(_) | WsMessage::Pong(_)) => session.do_send(Heard),
            Ok(WsMessage::Close(_)) => break,
            Err(e) => {
                if too_big(e) {
                    // Say why before closing, so the client can tell the learner.
                    let event = ServerEvent::Error(FrameError {
                        code: "too_large".into(),
                        message: format!(
                            "a frame may carry at most {} KiB: send shorter messages",
                            MAX_FRAME / 1024
                        ),
                        client_id: None,
                    });
                    let _ = control.send(Out::Text(event.to_json())).await;
                    let _ = control.send(Out::Close(1009, "message too big")).await;
                    // The rest of the refused frame is still unread: closing the socket now
                    // would reset the connection and could destroy the close frame in flight.
                    // Give the client a moment to read it.
                    linger = true;
                }
                break;
            }
        }
    }
    ended.abort();
    session.do_send(Closed);
    // The session's close frame (or its queue closing) ends the writer.
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    if linger {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(stream);
}

/// Counts one open socket (`penpal_open_sockets`) for as long as it lives.
struct SocketGauge;

impl SocketGauge {
    fn open() -> Self {
        metrics::gauge!("penpal_open_sockets").increment(1.0);
        SocketGauge
    }
}

impl Drop for SocketGauge {
    fn drop(&mut self) {
        metrics::gauge!("penpal_open_sockets").decrement(1.0);
    }
}

/// Whether a socket read failed because the client sent more than [`MAX_FRAME`].
fn too_big(e: axum::Error) -> bool {
    e.into_inner()
        .downcast_ref::<tungstenite::Error>()
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)))
}

/// A learner's message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// The learner's words: not blank, at most 4,000 characters.
    #[schema(min_length = 1, max_length = 4000, pattern = r"\S")]
    text: String,
}

/// Unsubscribes when a request ends, however it ends.
struct Subscription {
    conv: actix::Addr<super::conversation::Conversation>,
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.conv.do_send(Unsubscribe(self.id));
    }
}

fn refusal(r: Refusal) -> ApiError {
    match r {
        Refusal::Busy => ApiError::Conflict(r.to_string()),
        Refusal::Empty | Refusal::TooLong => ApiError::invalid("text", r.to_string()),
        Refusal::NotRetryable => ApiError::Conflict(r.to_string()),
        Refusal::Gone => ApiError::NotFound("conversation"),
        Refusal::Store => ApiError::Unavailable(r.to_string()),
        Refusal::PlanLimit(why) => ApiError::PlanLimit(why),
    }
}

async fn run_turn(
    app: LiveState,
    user: AuthUser,
    id: String,
    headers: HeaderMap,
    input: Result<String, i64>,
) -> ApiResult<Response> {
    let conv = owned(&app.db, &user.id, &id).await?;
    let addr = app
        .conversations
        .get(&conv)
        .ok_or_else(|| ApiError::Unavailable("the server is shutting down".into()))?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Arc<Event>>();
    let gone = || ApiError::Unavailable("the conversation is restarting; send again".into());
    let sub = addr
        .send(Subscribe(Subscriber::Channel(tx)))
        .await
        .map_err(|_| gone())?
        .0;
    let guard = Subscription {
        conv: addr.clone(),
        id: sub,
    };
    let accepted: Accepted = match input {
        Ok(text) => addr.send(Submit(text)).await,
        Err(seq) => addr.send(Retry(seq)).await,
    }
    .map_err(|_| gone())?
    .map_err(refusal)?;
    let turn_id = accepted.turn_id.clone();
    let sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if sse {
        // 201 as for the whole reply: the message is stored; its turn's events follow (a
        // failure after this point is a `turn.error` event, as the status is already sent).
        let stream = async_stream(rx, turn_id, guard);
        return Ok((
            StatusCode::CREATED,
            Sse::new(stream).keep_alive(KeepAlive::default()),
        )
            .into_response());
    }
    let wait = async {
        while let Some(ev) = rx.recv().await {
            if ev.event.is_terminal() && ev.event.turn_id() == Some(turn_id.as_str()) {
                return Some(ev);
            }
        }
        None
    };
    let ev = tokio::time::timeout(TURN_WAIT, wait).await.ok().flatten();
    drop(guard);
    match ev.as_deref().map(|e| &e.event) {
        Some(complete @ ServerEvent::TurnComplete(_)) => {
            Ok((StatusCode::CREATED, axum::Json(complete.clone())).into_response())
        }
        Some(ServerEvent::TurnError(e)) => {
            let status = if e.code == "tutor_refused" {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            Ok((
                status,
                axum::Json(
                    json!({"error": {"code": e.code, "message": e.message, "retryable": e.retryable,
                "seq": accepted.seq, "support_id": e.support_id}}),
                ),
            )
                .into_response())
        }
        // Only a terminal event of this turn ends the wait: anything else is no answer yet.
        _ => Err(ApiError::Unavailable(format!(
            "no reply yet; your message is saved as #{}: read the conversation later",
            accepted.seq
        ))),
    }
}

/// The events of one turn as SSE, ending after its terminal event.
fn async_stream(
    rx: mpsc::UnboundedReceiver<Arc<Event>>,
    turn_id: String,
    guard: Subscription,
) -> impl futures_util::Stream<Item = Result<axum::response::sse::Event, Infallible>> {
    futures_util::stream::unfold(
        (rx, turn_id, Some(guard), false),
        |(mut rx, turn_id, guard, done)| async move {
            if done {
                return None;
            }
            loop {
                let ev = rx.recv().await?;
                if ev.event.turn_id() != Some(turn_id.as_str()) {
                    continue;
                }
                let out = axum::response::sse::Event::default()
                    .event(ev.event.name())
                    .data(ev.json.clone());
                return Some((Ok(out), (rx, turn_id, guard, ev.event.is_terminal())));
            }
        },
    )
}

#[utoipa::path(post, path = "/v1/conversations/{id}/messages", tag = "chat", request_body = NewMessage,
    responses((status = 201, description = "the message is stored; the body is the turn: `learner` (with corrections), `reply`, `vocabulary`, `level` — or, with `Accept: text/event-stream`, its events as they happen, ending with `turn.complete` or `turn.error`"),
              (status = 402, description = "`plan_limit`: the account's plan does not include this (the day's messages are used up, or the mode or personality is in another plan); the message says what to do"),
              (status = 409, description = "a turn is already being answered"),
              (status = 503, description = "the tutor could not answer; the message is kept and can be retried")),
    security(("bearer" = [])))]
async fn post_message(
    State(app): State<LiveState>,
    user: AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<NewMessage>,
) -> ApiResult<Response> {
    let text = check_text(&body.text).map_err(refusal)?;
    run_turn(app, user, id, headers, Ok(text)).await
}

#[utoipa::path(post, path = "/v1/conversations/{id}/messages/{seq}/retry", tag = "chat",
    responses((status = 201, description = "the turn, as for a new message"),
        (status = 409, description = "only the newest failed message can be retried, and not while a turn runs"),
        (status = 503, description = "the tutor could not answer; the message stays failed")),
    security(("bearer" = [])))]
async fn retry(
    State(app): State<LiveState>,
    user: AuthUser,
    Path((id, seq)): Path<(String, i64)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    run_turn(app, user, id, headers, Err(seq)).await
}
