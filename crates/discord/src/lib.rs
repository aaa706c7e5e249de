//! How invitrack's services call Discord's REST API: every request of a bot token in a process
//! goes through one [`DiscordGate`], which keeps the requests under one budget, pauses them all
//! after a 429, stops them after a 401, and stops them before Discord's invalid-request ban
//! (`docs/discord.md#rate-limits`).

mod budget;
mod gate;

pub use budget::{BURST_REQUESTS, RequestBudget};
pub use gate::{
    DEFAULT_REJECTION_CEILING, DiscordGate, GateError, GateStats, REJECTION_WINDOW, Request,
    status_of,
};
