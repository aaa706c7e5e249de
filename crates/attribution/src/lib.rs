#![doc = include_str!("../README.md")]

mod engine;
mod matching;
mod model;
mod reported;

pub use engine::{
    DeliveryClock, EngineConfig, GuildAttribution, MISSED_JOINS_RETRY_MS, MissedJoins,
};
pub use invitrack_model::{
    DiscordJoinSource, InviteCode, JoinSource, Millis, UnknownReason, UserId,
};
pub use model::{Decision, InviteInfo, Observation, SnapshotFailure, Target, VanityInfo, Verdict};
pub use reported::{Judgement, ReportedSource};
