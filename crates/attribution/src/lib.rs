#![doc = include_str!("../README.md")]

mod engine;
mod fakes;
mod matching;
mod model;

pub use engine::{EngineConfig, GuildAttribution};
pub use fakes::{FakeReasons, FakeSettings, MemberFacts};
pub use model::{
    Decision, InviteInfo, Millis, Observation, SnapshotFailure, Target, UnknownReason, UserId,
    VanityInfo, Verdict,
};
