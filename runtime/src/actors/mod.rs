//! The actix actors. Each owns one piece of live state and is its only writer.

pub mod supervisor;
