#![doc = include_str!("../README.md")]

mod engine;
mod matching;
mod model;

pub use engine::{DeliveryClock, EngineConfig, GuildAttribution};
pub use invitrack_model::{InviteCode, JoinSource, Millis, UnknownReason, UserId};
pub use model::{Decision, InviteInfo, Observation, SnapshotFailure, Target, VanityInfo, Verdict};
