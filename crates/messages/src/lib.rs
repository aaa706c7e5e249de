#![doc = include_str!("../README.md")]

mod context;
mod kind;
pub mod limits;
mod placeholder;
mod render;
mod template;
mod templates;
mod text;
mod words;

pub use context::{InviterCounts, RenderContext, sample_context};
pub use kind::MessageKind;
pub use placeholder::Placeholder;
pub use render::{RenderedEmbed, RenderedMessage, render};
pub use template::{EmbedSource, Template, TemplateError, TemplatePart, TemplateSource};
pub use templates::Templates;
pub use text::{MARKDOWN_CHARS, escape_markdown};
pub use words::unknown_reason_words;
