//! The `Session` actor: one per live socket. It authenticates nothing (the upgrade did),
//! subscribes to its `Conversation`, turns client frames into conversation messages, writes
//! events to the socket through a bounded queue, and runs the heartbeat: a ping every
//! [`HEARTBEAT`], and the connection closed when the client has been silent for
//! [`CLIENT_TIMEOUT`]. A client too slow to drain its queue is disconnected rather than
//! allowed to hold memory or slow the conversation for the other tabs.

use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::mpsc;

use super::conversation::{
    self, Conversation, Deliver, Event, Peek, Retry, Submit, Subscribe, Subscriber, Unsubscribe,
};
use crate::store::Db;
use crate::tutoring::conversations;
use crate::tutoring::protocol::{
    ClientFrame, FrameError, Hello, MessageStored, Pong, Replayed, Resume, RetryMessage,
    SendMessage, ServerEvent, TurnResume,
};

/// How often the server pings.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// Silence after which a client is considered gone.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(45);
/// Events queued for a socket before its client counts as too slow.
pub const QUEUE: usize = 256;

/// What the socket writer sends.
#[derive(Debug)]
pub enum Out {
    /// A JSON text frame.
    Text(String),
    /// A ping.
    Ping,
    /// A close frame, then the end.
    Close(u16, &'static str),
}

/// A text frame from the client.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Inbound(pub String);

/// The client showed it is alive (any frame, including pongs).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Heard;

/// The client closed the socket.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Closed;

/// The actor.
pub struct Session {
    conversation: Addr<Conversation>,
    conversation_id: String,
    db: Db,
    out: mpsc::Sender<Out>,
    subscription: Option<u64>,
    heard: Instant,
    resume_from: Option<i64>,
}

impl Session {
    /// A session on `conversation`, writing to `out`; `resume_from` replays what a
    /// reconnecting client missed.
    pub fn new(
        conversation: Addr<Conversation>,
        conversation_id: String,
        db: Db,
        out: mpsc::Sender<Out>,
        resume_from: Option<i64>,
    ) -> Self {
        Session {
            conversation,
            conversation_id,
            db,
            out,
            subscription: None,
            heard: Instant::now(),
            resume_from,
        }
    }

    fn event(&self, ctx: &mut Context<Self>, event: ServerEvent) {
        self.send(ctx, event.to_json());
    }

    fn send(&self, ctx: &mut Context<Self>, text: String) {
        if self.out.try_send(Out::Text(text)).is_err() {
            tracing::debug!("socket queue full or closed: dropping a slow client");
            let _ = self.out.try_send(Out::Close(1013, "too slow"));
            ctx.stop();
        }
    }

    fn error(&self, ctx: &mut Context<Self>, code: &str, message: &str, client_id: Option<&str>) {
        self.event(
            ctx,
            ServerEvent::Error(FrameError {
                code: code.to_string(),
                message: message.to_string(),
                client_id: client_id.map(str::to_string),
            }),
        );
    }

    fn resume(&mut self, ctx: &mut Context<Self>, after: i64) {
        let db = self.db.clone();
        let id = self.conversation_id.clone();
        let conv = self.conversation.clone();
        let work = async move {
            // Read on the Tokio pool, off the thread every actor shares.
            let read =
                tokio::spawn(
                    async move { conversations::messages_after(&db, &id, after, 500).await },
                );
            let missed = read.await.ok().and_then(Result::ok).unwrap_or_default();
            // Asking the actor after reading the store means a turn that finished in between
            // shows up as stored messages, never as neither.
            let running = conv.send(Peek).await.unwrap_or(None);
            (missed, running)
        };
        ctx.spawn(work.into_actor(self).map(|(missed, running), act, ctx| {
            for message in missed {
                let seq = message.seq;
                act.event(ctx, ServerEvent::Replayed(Replayed { seq, message }));
            }
            if let Some(r) = running {
                act.event(
                    ctx,
                    ServerEvent::TurnResume(TurnResume {
                        turn_id: r.turn_id,
                        seq: r.learner_seq,
                        text: r.text,
                    }),
                );
            }
        }));
    }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(HEARTBEAT, |act, ctx| {
            if act.heard.elapsed() > CLIENT_TIMEOUT {
                let _ = act.out.try_send(Out::Close(1001, "no heartbeat"));
                ctx.stop();
            } else if act.out.try_send(Out::Ping).is_err() {
                ctx.stop();
            }
        });
        let me = ctx.address().recipient();
        self.conversation
            .send(Subscribe(Subscriber::Session(me)))
            .into_actor(self)
            .map(|res, act, ctx| match res {
                Ok(conversation::Subscribed(id, running)) => {
                    act.subscription = Some(id);
                    let hello = Hello {
                        conversation: act.conversation_id.clone(),
                        running,
                    };
                    act.event(ctx, ServerEvent::Hello(hello));
                    if let Some(after) = act.resume_from.take() {
                        act.resume(ctx, after);
                    }
                }
                Err(_) => {
                    let _ = act
                        .out
                        .try_send(Out::Close(1011, "conversation unavailable"));
                    ctx.stop();
                }
            })
            .wait(ctx);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Some(id) = self.subscription.take() {
            self.conversation.do_send(Unsubscribe(id));
        }
        let _ = self.out.try_send(Out::Close(1000, "bye"));
    }
}

impl Handler<Deliver> for Session {
    type Result = ();

    fn handle(&mut self, msg: Deliver, ctx: &mut Context<Self>) {
        let event: &Event = &msg.0;
        self.send(ctx, event.json.clone());
    }
}

impl Handler<Heard> for Session {
    type Result = ();

    fn handle(&mut self, _: Heard, _: &mut Context<Self>) {
        self.heard = Instant::now();
    }
}

impl Handler<Closed> for Session {
    type Result = ();

    fn handle(&mut self, _: Closed, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<Inbound> for Session {
    type Result = ();

    fn handle(&mut self, msg: Inbound, ctx: &mut Context<Self>) {
        self.heard = Instant::now();
        let frame = match ClientFrame::parse(&msg.0) {
            Ok(f) => f,
            Err(e) => {
                self.error(ctx, "bad_frame", &e, None);
                return;
            }
        };
        match frame {
            ClientFrame::Ping(_) => self.event(ctx, ServerEvent::Pong(Pong {})),
            ClientFrame::Resume(Resume { after_seq }) => self.resume(ctx, after_seq),
            ClientFrame::Message(SendMessage { text, client_id }) => {
                if let Err(e) = conversation::check_text(&text) {
                    self.error(ctx, e.code(), &e.to_string(), client_id.as_deref());
                    return;
                }
                self.conversation
                    .send(Submit(text))
                    .into_actor(self)
                    .map(move |res, act, ctx| match res {
                        Ok(Ok(accepted)) => {
                            let stored = MessageStored {
                                turn_id: accepted.turn_id,
                                seq: accepted.seq,
                                client_id: client_id.clone(),
                            };
                            act.event(ctx, ServerEvent::MessageStored(stored));
                        }
                        Ok(Err(refusal)) => act.error(
                            ctx,
                            refusal.code(),
                            &refusal.to_string(),
                            client_id.as_deref(),
                        ),
                        Err(_) => act.error(
                            ctx,
                            "unavailable",
                            "the conversation is restarting; send again",
                            client_id.as_deref(),
                        ),
                    })
                    .spawn(ctx);
            }
            ClientFrame::Retry(RetryMessage { seq }) => {
                self.conversation
                    .send(Retry(seq))
                    .into_actor(self)
                    .map(|res, act, ctx| match res {
                        Ok(Ok(_)) => {}
                        Ok(Err(refusal)) => {
                            act.error(ctx, refusal.code(), &refusal.to_string(), None)
                        }
                        Err(_) => act.error(
                            ctx,
                            "unavailable",
                            "the conversation is restarting; retry again",
                            None,
                        ),
                    })
                    .spawn(ctx);
            }
        }
    }
}
