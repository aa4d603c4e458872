//! Tutoring: the learner's profile, conversations and their messages, the turn pipeline,
//! conversation memory, progress with spaced-repetition vocabulary, and the free demo.

pub mod conversations;
pub mod demo;
pub mod live;
pub mod memory;
pub mod personal;
pub mod profile;
pub mod progress;
pub mod protocol;
pub mod turn;
pub mod tutor;
