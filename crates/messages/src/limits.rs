//! Discord's limits on what a message may hold (`docs/resources/message.md#embed-limits` and
//! the `content` field of Create Message in Discord's API documentation).
//!
//! They count characters (Unicode scalar values, as twilight-validate counts them before a
//! request is sent) after Discord trims leading and trailing whitespace.

/// A message's `content`.
pub const CONTENT_LIMIT: usize = 2000;
/// An embed's `title`.
pub const TITLE_LIMIT: usize = 256;
/// An embed's `description`.
pub const DESCRIPTION_LIMIT: usize = 4096;
/// An embed's `footer.text`.
pub const FOOTER_LIMIT: usize = 2048;
/// Title, description and footer of an embed together.
pub const EMBED_TOTAL_LIMIT: usize = 6000;
/// The largest embed `color`: `0xRRGGBB`.
pub const MAX_COLOR: u32 = 0xFF_FF_FF;
