//! The `Conversation` actor: one per active conversation, the only writer of its messages.
//!
//! It serialises turns (a second message while one is being answered is refused, not raced),
//! stores the learner's message before anything can fail, runs the turn on the Tokio pool,
//! and fans every event out to its subscribers — the `Session`s of each open tab, and the
//! channels of SSE and whole-reply requests. It keeps the reply streamed so far, so a client
//! that reconnects mid-turn catches up. It stops itself once idle with nobody listening.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::store::new_id;
use crate::store::personal::PersonalData;
use crate::tutoring::conversations::{
    self, Conversation as Row, Message as Stored, Speaker, Status,
};
use crate::tutoring::profile::{self, Profile};
use crate::tutoring::protocol::{
    ConversationClosed, MessageAccepted, Running, ServerEvent, TurnComplete, TurnDelta, TurnError,
};
use crate::tutoring::state::TurnDeps;
use crate::tutoring::turn::{self, Completed, Failure};

/// How often an actor checks whether it is idle.
const IDLE_CHECK: Duration = Duration::from_secs(30);
/// How long an actor with no subscribers and no turn lives on.
const IDLE_AFTER: Duration = Duration::from_secs(300);
/// Longest learner message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4000;

/// An event for clients, serialised once and shared by every subscriber.
#[derive(Debug)]
pub struct Event {
    /// The event.
    pub event: ServerEvent,
    /// Its JSON text, as sent to clients.
    pub json: String,
}

impl Event {
    /// `event`, serialised once.
    pub fn new(event: ServerEvent) -> Arc<Event> {
        Arc::new(Event {
            json: event.to_json(),
            event,
        })
    }
}

/// An event delivered to a `Session`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Deliver(pub Arc<Event>);

/// Who hears a conversation's events.
pub enum Subscriber {
    /// A socket's session actor.
    Session(Recipient<Deliver>),
    /// An SSE or whole-reply request.
    Channel(mpsc::UnboundedSender<Arc<Event>>),
}

/// The turn being answered, as far as it has got.
pub type Snapshot = Running;

/// Subscribe; answers the subscription id and the running turn, if any.
#[derive(Message)]
#[rtype(result = "Subscribed")]
pub struct Subscribe(pub Subscriber);

/// A subscription's id, and the turn running when it began.
#[derive(MessageResponse)]
pub struct Subscribed(pub u64, pub Option<Snapshot>);

/// The running turn, if any.
#[derive(Message)]
#[rtype(result = "Option<Snapshot>")]
pub struct Peek;

/// Unsubscribe.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unsubscribe(pub u64);

/// A turn started.
#[derive(Debug, Clone, Serialize)]
pub struct Accepted {
    /// The turn.
    pub turn_id: String,
    /// The learner message's sequence number.
    pub seq: i64,
}

/// Why a message was not taken.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Refusal {
    /// A turn is being answered.
    #[error("wait for the tutor's reply before sending another message")]
    Busy,
    /// Nothing to send.
    #[error("the message is empty")]
    Empty,
    /// Too long.
    #[error("the message is longer than {MAX_MESSAGE_CHARS} characters")]
    TooLong,
    /// The message to retry does not exist or did not fail.
    #[error("only a failed learner message can be retried")]
    NotRetryable,
    /// The conversation is gone.
    #[error("the conversation no longer exists")]
    Gone,
    /// The database failed; nothing was stored.
    #[error("the message could not be saved; try again")]
    Store,
    /// The account's plan does not include this turn; says what to do.
    #[error("{0}")]
    PlanLimit(String),
}

impl Refusal {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Busy => "turn_in_progress",
            Refusal::Empty => "empty_message",
            Refusal::TooLong => "message_too_long",
            Refusal::NotRetryable => "not_retryable",
            Refusal::Gone => "not_found",
            Refusal::Store => "unavailable",
            Refusal::PlanLimit(_) => "plan_limit",
        }
    }
}

/// Checks a learner's message before anything is stored.
pub fn check_text(text: &str) -> Result<String, Refusal> {
    let t = text.trim();
    if t.is_empty() {
        return Err(Refusal::Empty);
    }
    if t.chars().count() > MAX_MESSAGE_CHARS {
        return Err(Refusal::TooLong);
    }
    Ok(t.to_string())
}

/// A learner's new message.
#[derive(Message)]
#[rtype(result = "Result<Accepted, Refusal>")]
pub struct Submit(pub String);

/// Answer the failed learner message `seq` again.
#[derive(Message)]
#[rtype(result = "Result<Accepted, Refusal>")]
pub struct Retry(pub i64);

#[derive(Message)]
#[rtype(result = "()")]
struct Delta {
    turn_id: String,
    text: String,
}

#[derive(Message)]
#[rtype(result = "()")]
struct Finished {
    turn_id: String,
    learner_seq: i64,
    result: Result<Completed, Failure>,
    recent: Option<Vec<Stored>>,
}

/// Stop now (the conversation or its owner was deleted).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Close;

/// The actor.
pub struct Conversation {
    id: String,
    /// What turns use.
    app: TurnDeps,
    /// The plans' limits, checked before a new message is stored.
    billing: Arc<crate::billing::Billing>,
    /// Where this actor is listed, to leave when it stops.
    registry: std::sync::Weak<Registry>,
    subscribers: HashMap<u64, Subscriber>,
    next_sub: u64,
    running: Option<Snapshot>,
    last_active: Instant,
    /// The newest messages (up to a turn's window), kept because this actor writes every
    /// one of them: a turn need not read them back. `None` until a turn has read them.
    recent: Option<Vec<Stored>>,
    /// Whether the newest message is known not to be left `pending` (by a restart, or by a
    /// failed turn whose failure could not be recorded).
    settled: bool,
}

impl Conversation {
    fn broadcast(&mut self, event: Arc<Event>) {
        self.subscribers.retain(|_, s| match s {
            Subscriber::Session(r) => {
                // Unbounded on purpose: a session's own bounded socket queue is where a slow
                // client is detected and dropped, so no delta is ever lost here.
                r.do_send(Deliver(event.clone()));
                r.connected()
            }
            Subscriber::Channel(tx) => tx.send(event.clone()).is_ok(),
        });
    }

    /// Loads the conversation, clears stale pending messages, and stores the learner's
    /// message (new or retried); then starts the turn.
    fn begin(
        &mut self,
        input: Result<String, i64>,
    ) -> ResponseActFuture<Self, Result<Accepted, Refusal>> {
        if self.running.is_some() {
            return Box::pin(fut::ready(Err(Refusal::Busy)));
        }
        let turn_id = new_id();
        self.running = Some(Snapshot {
            turn_id: turn_id.clone(),
            learner_seq: 0,
            text: String::new(),
        });
        self.last_active = Instant::now();
        let app = self.app.clone();
        let billing = self.billing.clone();
        let id = self.id.clone();
        let settled = self.settled;
        let store = async move {
            let store_failed = |e: crate::store::StoreError| {
                tracing::error!(error = %e, "could not store a learner message");
                Refusal::Store
            };
            match input {
                // This actor is the only writer: a message still pending before this one was
                // cut off by a restart, which `settle` clears in the same transaction.
                Ok(text) => {
                    // The plan is checked before anything is stored (a retried message was
                    // accepted already, so it is not checked again).
                    let conv = conversations::fetch(&app.db, &id)
                        .await
                        .map_err(store_failed)?
                        .ok_or(Refusal::Gone)?;
                    billing
                        .check_turn(&app.db, &conv.user, conv.mode, &conv.personality)
                        .await
                        .map_err(store_failed)?
                        .map_err(|limit| Refusal::PlanLimit(limit.message))?;
                    let a = conversations::append_learner(&app.db, &id, text, !settled)
                        .await
                        .map_err(store_failed)?
                        .ok_or(Refusal::Gone)?;
                    // The conversation ended just before this message.
                    let ended = a.message.seq - 1;
                    Ok::<_, Refusal>((a.conv, ended, a.message, a.profile))
                }
                Err(seq) => {
                    let conv = conversations::fetch(&app.db, &id)
                        .await
                        .map_err(store_failed)?
                        .ok_or(Refusal::Gone)?;
                    let m = conversations::message(&app.db, &id, seq)
                        .await
                        .map_err(|_| Refusal::Store)?;
                    let mut m = m
                        .filter(|m| m.role == Speaker::Learner && m.status == Status::Failed)
                        .ok_or(Refusal::NotRetryable)?;
                    // Only the newest learner message can be answered: the reply takes the next seq.
                    if conv.last_seq != m.seq {
                        return Err(Refusal::NotRetryable);
                    }
                    conversations::reopen(&app.db, &id, seq)
                        .await
                        .map_err(|_| Refusal::Store)?;
                    m.status = Status::Pending;
                    m.error = None;
                    let profile = profile::load(&app.db, &conv.user)
                        .await
                        .map_err(|_| Refusal::Store)?;
                    // A retried message is still the newest.
                    Ok((conv, m.seq, m, profile))
                }
            }
        };
        // Database work runs on the Tokio pool: every actor shares one thread, which must
        // only route events.
        let store = async move {
            tokio::spawn(store).await.unwrap_or_else(|e| {
                tracing::error!(error = %e, "storing a learner message panicked");
                Err(Refusal::Store)
            })
        };
        Box::pin(store.into_actor(self).map(move |res, act, ctx| match res {
            Err(e) => {
                act.running = None;
                Err(e)
            }
            Ok((conv, ended, message, profile)) => {
                let seq = message.seq;
                if let Some(r) = act.running.as_mut() {
                    r.learner_seq = seq;
                }
                act.broadcast(Event::new(ServerEvent::MessageAccepted(MessageAccepted {
                    turn_id: turn_id.clone(),
                    message: message.clone(),
                })));
                act.start_turn(ctx, turn_id.clone(), (conv, ended), message, profile);
                Ok(Accepted { turn_id, seq })
            }
        }))
    }

    fn start_turn(
        &mut self,
        ctx: &mut Context<Self>,
        turn_id: String,
        (conv, ended): (Row, i64),
        message: Stored,
        profile: Profile,
    ) {
        let addr = ctx.address();
        let app = self.app.clone();
        // The copy holds if it ends where the store said the conversation `ended` before this
        // message (anything else means a write this actor did not see: read afresh).
        let cached = self
            .recent
            .take()
            .filter(|r| r.last().map_or(0, |m| m.seq) == ended);
        tokio::spawn(async move {
            let learner_seq = message.seq;
            let emit = {
                let addr = addr.clone();
                let turn_id = turn_id.clone();
                move |text: String| {
                    addr.do_send(Delta {
                        turn_id: turn_id.clone(),
                        text,
                    })
                }
            };
            let conv_id = conv.id.clone();
            let (result, recent) =
                turn::run(app.clone(), conv, message, profile, cached, emit).await;
            if let Err(f) = &result
                && let Err(e) = conversations::fail(&app.db, &conv_id, learner_seq, f.code).await
            {
                tracing::error!(error = %e, "could not mark a message failed");
            }
            addr.do_send(Finished {
                turn_id,
                learner_seq,
                result,
                recent,
            });
        });
    }
}

impl Actor for Conversation {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1024);
        ctx.run_interval(IDLE_CHECK, |act, ctx| {
            if act.subscribers.is_empty()
                && act.running.is_none()
                && act.last_active.elapsed() > IDLE_AFTER
            {
                ctx.stop();
            }
        });
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        if let Some(registry) = self.registry.upgrade() {
            registry.remove(&self.id, &ctx.address());
        }
    }
}

impl Handler<Subscribe> for Conversation {
    type Result = Subscribed;

    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) -> Self::Result {
        self.next_sub += 1;
        self.subscribers.insert(self.next_sub, msg.0);
        self.last_active = Instant::now();
        Subscribed(self.next_sub, self.running.clone())
    }
}

impl Handler<Peek> for Conversation {
    type Result = Option<Snapshot>;

    fn handle(&mut self, _: Peek, _: &mut Context<Self>) -> Self::Result {
        self.running.clone()
    }
}

impl Handler<Unsubscribe> for Conversation {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, _: &mut Context<Self>) {
        self.subscribers.remove(&msg.0);
    }
}

impl Handler<Submit> for Conversation {
    type Result = ResponseActFuture<Self, Result<Accepted, Refusal>>;

    fn handle(&mut self, msg: Submit, _: &mut Context<Self>) -> Self::Result {
        match check_text(&msg.0) {
            Ok(text) => self.begin(Ok(text)),
            Err(e) => Box::pin(fut::ready(Err(e))),
        }
    }
}

impl Handler<Retry> for Conversation {
    type Result = ResponseActFuture<Self, Result<Accepted, Refusal>>;

    fn handle(&mut self, msg: Retry, _: &mut Context<Self>) -> Self::Result {
        self.begin(Err(msg.0))
    }
}

impl Handler<Delta> for Conversation {
    type Result = ();

    fn handle(&mut self, msg: Delta, _: &mut Context<Self>) {
        let Some(running) = self.running.as_mut().filter(|r| r.turn_id == msg.turn_id) else {
            return;
        };
        let offset = running.text.len();
        running.text.push_str(&msg.text);
        let event = Event::new(ServerEvent::TurnDelta(TurnDelta {
            turn_id: msg.turn_id,
            offset,
            text: msg.text,
        }));
        self.broadcast(event);
    }
}

impl Handler<Finished> for Conversation {
    type Result = ();

    fn handle(&mut self, msg: Finished, _: &mut Context<Self>) {
        self.running = None;
        self.last_active = Instant::now();
        self.recent = msg.recent;
        self.settled = msg.result.is_ok();
        let event = match msg.result {
            Ok(done) => {
                if done.over_budget {
                    turn::maybe_compress(self.app.clone(), self.id.clone());
                }
                Event::new(ServerEvent::TurnComplete(Box::new(TurnComplete {
                    turn_id: msg.turn_id,
                    corrections: done.learner.corrections.clone(),
                    vocabulary: done.learner.vocabulary.clone(),
                    debrief: done.reply.debrief.clone(),
                    learner: done.learner,
                    reply: done.reply,
                    level: done.level,
                })))
            }
            Err(f) => Event::new(ServerEvent::TurnError(TurnError {
                turn_id: msg.turn_id,
                seq: msg.learner_seq,
                code: f.code.to_string(),
                message: f.message,
                retryable: f.retryable,
                support_id: f.support_id,
            })),
        };
        self.broadcast(event);
    }
}

impl Handler<Close> for Conversation {
    type Result = ();

    fn handle(&mut self, _: Close, ctx: &mut Context<Self>) {
        self.broadcast(Event::new(ServerEvent::ConversationClosed(
            ConversationClosed {
                conversation: self.id.clone(),
            },
        )));
        ctx.stop();
    }
}

/// The running conversation actors, by conversation id.
pub struct Registry {
    deps: TurnDeps,
    billing: Arc<crate::billing::Billing>,
    actors: Mutex<HashMap<String, (String, Addr<Conversation>)>>,
    arbiter: Mutex<Option<ArbiterHandle>>,
}

impl Registry {
    /// A registry whose actors run turns with `deps`, within the plans `billing` sets.
    pub fn new(deps: TurnDeps, billing: Arc<crate::billing::Billing>) -> Arc<Registry> {
        Arc::new(Registry {
            deps,
            billing,
            actors: Mutex::default(),
            arbiter: Mutex::default(),
        })
    }

    /// Where new actors run: the server's arbiter.
    pub fn set_arbiter(&self, arbiter: ArbiterHandle) {
        *self.arbiter.lock().unwrap_or_else(|p| p.into_inner()) = Some(arbiter);
    }

    /// The arbiter actors run on.
    pub fn arbiter(&self) -> Option<ArbiterHandle> {
        self.arbiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The actor of `conv`, started if it is not running.
    pub fn get(self: &Arc<Self>, conv: &Row) -> Option<Addr<Conversation>> {
        let mut map = self.actors.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, addr)) = map.get(&conv.id)
            && addr.connected()
        {
            return Some(addr.clone());
        }
        let arbiter = self.arbiter()?;
        let actor = Conversation {
            id: conv.id.clone(),
            app: self.deps.clone(),
            billing: self.billing.clone(),
            registry: Arc::downgrade(self),
            subscribers: HashMap::new(),
            next_sub: 0,
            running: None,
            last_active: Instant::now(),
            recent: None,
            settled: false,
        };
        let addr = Conversation::start_in_arbiter(&arbiter, move |_| actor);
        map.insert(conv.id.clone(), (conv.user.clone(), addr.clone()));
        Some(addr)
    }

    fn remove(&self, id: &str, addr: &Addr<Conversation>) {
        let mut map = self.actors.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(id).is_some_and(|(_, a)| a == addr) {
            map.remove(id);
        }
    }

    /// Stops the actor of conversation `id`, if running.
    pub fn forget(&self, id: &str) {
        if let Some((_, addr)) = self
            .actors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
        {
            addr.do_send(Close);
        }
    }

    /// Stops every actor of `user`'s conversations.
    pub fn forget_user(&self, user: &str) {
        let mut map = self.actors.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, (owner, addr)| {
            if owner == user {
                addr.do_send(Close);
                false
            } else {
                true
            }
        });
    }

    /// Stops every actor (at shutdown).
    pub fn close_all(&self) {
        for (_, (_, addr)) in self
            .actors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
        {
            addr.do_send(Close);
        }
    }
}

impl crate::tutoring::state::Running for Registry {
    fn forget(&self, id: &str) {
        Registry::forget(self, id);
    }
}

/// The actors room's part of a person's data: their running conversations (stopped before the
/// rows go) and their unused live tickets.
impl PersonalData for Registry {
    fn export(&self) -> &'static [(&'static str, &'static str)] {
        // A ticket lives a minute and carries nothing but ids.
        &[]
    }

    fn delete(&self) -> &'static str {
        "DELETE live_ticket WHERE user = $u;"
    }

    fn forget(&self, user: &str) {
        self.forget_user(user);
    }
}
