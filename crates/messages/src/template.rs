//! Templates as guilds write them, parsed and checked once, when the API stores them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::limits::{
    CONTENT_LIMIT, DESCRIPTION_LIMIT, EMBED_TOTAL_LIMIT, FOOTER_LIMIT, MAX_COLOR, TITLE_LIMIT,
};
use crate::placeholder::Placeholder;

/// Longest placeholder name quoted back in an error.
const MAX_SHOWN_NAME_CHARS: usize = 40;

/// A template as written and stored (the JSON the API keeps per guild): plain text, or one
/// embed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateSource {
    /// `{"text": "..."}`: the message's content.
    Text(String),
    /// `{"embed": {"title": ..., "description": ..., "color": ..., "footer": ...}}`.
    Embed(EmbedSource),
}

/// An embed as written. An empty text is no text: the embed has no such part.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedSource {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// `0xRRGGBB`, as Discord takes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<u32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub footer: String,
}

/// A part of a message a template writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplatePart {
    Content,
    Title,
    Description,
    Footer,
}

impl TemplatePart {
    /// Discord's limit for this part, in characters.
    #[must_use]
    pub const fn limit(self) -> usize {
        match self {
            Self::Content => CONTENT_LIMIT,
            Self::Title => TITLE_LIMIT,
            Self::Description => DESCRIPTION_LIMIT,
            Self::Footer => FOOTER_LIMIT,
        }
    }

    /// Discord renders markdown here; a footer shows its text as it is.
    pub(crate) const fn has_markdown(self) -> bool {
        !matches!(self, Self::Footer)
    }

    /// Discord shows `<@id>` as a mention here; titles and footers show it as typed.
    pub(crate) const fn shows_mentions(self) -> bool {
        matches!(self, Self::Content | Self::Description)
    }
}

impl fmt::Display for TemplatePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Content => "content",
            Self::Title => "embed title",
            Self::Description => "embed description",
            Self::Footer => "embed footer",
        })
    }
}

/// Why a template was refused. Positions count characters from 0, in the part as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("the template is empty")]
    Empty,
    #[error("unknown placeholder {{{name}}} at character {position} of the {part}")]
    UnknownPlaceholder {
        part: TemplatePart,
        /// As written, cut to 40 characters.
        name: String,
        /// Where its `{` is.
        position: usize,
    },
    #[error(
        "the brace at character {position} of the {part} is not closed (write {{{{ for a brace)"
    )]
    UnclosedBrace { part: TemplatePart, position: usize },
    #[error(
        "the brace at character {position} of the {part} closes nothing (write }}}} for a brace)"
    )]
    UnopenedBrace { part: TemplatePart, position: usize },
    #[error("the {part} has {chars} characters, more than Discord's {limit}")]
    TooLong {
        part: TemplatePart,
        chars: usize,
        limit: usize,
    },
    #[error("the embed has {chars} characters in all, more than Discord's {limit}", limit = EMBED_TOTAL_LIMIT)]
    EmbedTooLong { chars: usize },
    #[error("color {color:#x} is not an RGB color (0 to 0xffffff)")]
    ColorOutOfRange { color: u32 },
}

/// A checked template: every placeholder known, every part within Discord's limits as
/// written. Serialized as its [`TemplateSource`]; deserializing checks it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TemplateSource", into = "TemplateSource")]
pub struct Template {
    source: TemplateSource,
    parsed: Parsed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed {
    Text(Text),
    Embed(ParsedEmbed),
}

/// An embed's parts; `None` for a part not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedEmbed {
    pub(crate) title: Option<Text>,
    pub(crate) description: Option<Text>,
    pub(crate) color: Option<u32>,
    pub(crate) footer: Option<Text>,
}

/// One part's text: literal text and placeholders, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Text(pub(crate) Vec<Segment>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Literal(String),
    Placeholder(Placeholder),
}

impl Template {
    /// Checks a template as written.
    ///
    /// # Errors
    /// When a placeholder is unknown, a brace is not paired (`{{` and `}}` write braces), a
    /// part is over Discord's limit (as written, trimmed as Discord trims it), the color is
    /// not `0xRRGGBB`, or there is no text at all.
    pub fn parse(source: TemplateSource) -> Result<Self, TemplateError> {
        let parsed = match &source {
            TemplateSource::Text(content) => Parsed::Text(
                parse_text(TemplatePart::Content, content)?.ok_or(TemplateError::Empty)?,
            ),
            TemplateSource::Embed(embed) => Parsed::Embed(parse_embed(embed)?),
        };
        Ok(Self { source, parsed })
    }

    #[must_use]
    pub fn source(&self) -> &TemplateSource {
        &self.source
    }

    pub(crate) fn parsed(&self) -> &Parsed {
        &self.parsed
    }
}

impl TryFrom<TemplateSource> for Template {
    type Error = TemplateError;
    fn try_from(source: TemplateSource) -> Result<Self, TemplateError> {
        Self::parse(source)
    }
}

impl From<Template> for TemplateSource {
    fn from(template: Template) -> Self {
        template.source
    }
}

fn parse_embed(embed: &EmbedSource) -> Result<ParsedEmbed, TemplateError> {
    if let Some(color) = embed.color.filter(|&color| color > MAX_COLOR) {
        return Err(TemplateError::ColorOutOfRange { color });
    }
    let parsed = ParsedEmbed {
        title: parse_text(TemplatePart::Title, &embed.title)?,
        description: parse_text(TemplatePart::Description, &embed.description)?,
        color: embed.color,
        footer: parse_text(TemplatePart::Footer, &embed.footer)?,
    };
    if parsed.title.is_none() && parsed.description.is_none() && parsed.footer.is_none() {
        return Err(TemplateError::Empty);
    }
    let chars = [&embed.title, &embed.description, &embed.footer]
        .into_iter()
        .map(|text| text.trim().chars().count())
        .sum();
    if chars > EMBED_TOTAL_LIMIT {
        return Err(TemplateError::EmbedTooLong { chars });
    }
    Ok(parsed)
}

/// One part's text; `None` when there is nothing but whitespace.
fn parse_text(part: TemplatePart, raw: &str) -> Result<Option<Text>, TemplateError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let chars = trimmed.chars().count();
    if chars > part.limit() {
        return Err(TemplateError::TooLong {
            part,
            chars,
            limit: part.limit(),
        });
    }
    let mut segments = Vec::new();
    let mut literal = String::new();
    let mut rest = raw.chars().enumerate().peekable();
    while let Some((position, c)) = rest.next() {
        match c {
            '{' if rest.next_if(|&(_, next)| next == '{').is_some() => literal.push('{'),
            '}' if rest.next_if(|&(_, next)| next == '}').is_some() => literal.push('}'),
            '}' => return Err(TemplateError::UnopenedBrace { part, position }),
            '{' => {
                let mut name = String::new();
                loop {
                    match rest.next() {
                        Some((_, '}')) => break,
                        Some((_, '{')) | None => {
                            return Err(TemplateError::UnclosedBrace { part, position });
                        }
                        Some((_, c)) => name.push(c),
                    }
                }
                let placeholder = Placeholder::from_name(&name).ok_or_else(|| {
                    TemplateError::UnknownPlaceholder {
                        part,
                        name: name.chars().take(MAX_SHOWN_NAME_CHARS).collect(),
                        position,
                    }
                })?;
                if !literal.is_empty() {
                    segments.push(Segment::Literal(std::mem::take(&mut literal)));
                }
                segments.push(Segment::Placeholder(placeholder));
            }
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        segments.push(Segment::Literal(literal));
    }
    Ok(Some(Text(segments)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(raw: &str) -> Result<Template, TemplateError> {
        Template::parse(TemplateSource::Text(raw.to_owned()))
    }

    fn embed(title: &str, description: &str, footer: &str) -> Result<Template, TemplateError> {
        Template::parse(TemplateSource::Embed(EmbedSource {
            title: title.to_owned(),
            description: description.to_owned(),
            color: None,
            footer: footer.to_owned(),
        }))
    }

    fn segments(template: &Template) -> &[Segment] {
        match template.parsed() {
            Parsed::Text(Text(segments)) => segments,
            Parsed::Embed(_) => panic!("not a text template"),
        }
    }

    #[test]
    fn literal_text_and_placeholders_are_split() {
        let template = text("Welcome {member.mention}, invited by {inviter.name}!").expect("valid");
        assert_eq!(
            segments(&template),
            [
                Segment::Literal("Welcome ".into()),
                Segment::Placeholder(Placeholder::MemberMention),
                Segment::Literal(", invited by ".into()),
                Segment::Placeholder(Placeholder::InviterName),
                Segment::Literal("!".into()),
            ]
        );
    }

    #[test]
    fn doubled_braces_are_braces() {
        let template = text("{{code}} is {code} }}").expect("valid");
        assert_eq!(
            segments(&template),
            [
                Segment::Literal("{code} is ".into()),
                Segment::Placeholder(Placeholder::Code),
                Segment::Literal(" }".into()),
            ]
        );
    }

    #[test]
    fn an_unknown_placeholder_is_named_with_its_position() {
        // Positions count characters, not bytes.
        assert_eq!(
            text("Héllo {member.nick} {code}"),
            Err(TemplateError::UnknownPlaceholder {
                part: TemplatePart::Content,
                name: "member.nick".into(),
                position: 6,
            })
        );
        assert_eq!(
            embed("", "ok {code}", "by { inviter.name }"),
            Err(TemplateError::UnknownPlaceholder {
                part: TemplatePart::Footer,
                name: " inviter.name ".into(),
                position: 3,
            })
        );
        let Err(TemplateError::UnknownPlaceholder { name, .. }) =
            text(&format!("{{{}}}", "x".repeat(100)))
        else {
            panic!("an unknown placeholder");
        };
        assert_eq!(name.chars().count(), 40);
    }

    #[test]
    fn braces_must_pair() {
        let unclosed = |position| {
            Err(TemplateError::UnclosedBrace {
                part: TemplatePart::Content,
                position,
            })
        };
        assert_eq!(text("hi {member.name"), unclosed(3));
        assert_eq!(text("{member.{name}"), unclosed(0));
        assert_eq!(text("a {"), unclosed(2));
        assert_eq!(
            text("hi member.name} there"),
            Err(TemplateError::UnopenedBrace {
                part: TemplatePart::Content,
                position: 14,
            })
        );
    }

    #[test]
    fn empty_templates_are_refused() {
        for raw in ["", "  \n\t "] {
            assert_eq!(text(raw), Err(TemplateError::Empty), "{raw:?}");
        }
        assert_eq!(embed("", " ", ""), Err(TemplateError::Empty));
        assert_eq!(
            Template::parse(TemplateSource::Embed(EmbedSource {
                color: Some(0x57F287),
                ..EmbedSource::default()
            })),
            Err(TemplateError::Empty)
        );
        // Any one part is enough.
        assert!(embed("", "", "{code}").is_ok());
    }

    #[test]
    fn parts_over_discords_limits_are_refused() {
        assert!(text(&"x".repeat(2000)).is_ok());
        // Discord trims whitespace before counting.
        assert!(text(&format!("  {}\n", "x".repeat(2000))).is_ok());
        assert_eq!(
            text(&"é".repeat(2001)),
            Err(TemplateError::TooLong {
                part: TemplatePart::Content,
                chars: 2001,
                limit: 2000,
            })
        );
        assert_eq!(
            embed(&"t".repeat(257), "d", ""),
            Err(TemplateError::TooLong {
                part: TemplatePart::Title,
                chars: 257,
                limit: 256,
            })
        );
        assert_eq!(
            embed("", &"d".repeat(4097), ""),
            Err(TemplateError::TooLong {
                part: TemplatePart::Description,
                chars: 4097,
                limit: 4096,
            })
        );
        assert_eq!(
            embed("", "d", &"f".repeat(2049)),
            Err(TemplateError::TooLong {
                part: TemplatePart::Footer,
                chars: 2049,
                limit: 2048,
            })
        );
        assert!(embed(&"t".repeat(256), &"d".repeat(3744), &"f".repeat(2000)).is_ok());
        assert_eq!(
            embed(&"t".repeat(256), &"d".repeat(3745), &"f".repeat(2000)),
            Err(TemplateError::EmbedTooLong { chars: 6001 })
        );
    }

    #[test]
    fn colors_are_rgb() {
        let with_color = |color| {
            Template::parse(TemplateSource::Embed(EmbedSource {
                description: "d".into(),
                color: Some(color),
                ..EmbedSource::default()
            }))
        };
        assert!(with_color(0).is_ok());
        assert!(with_color(MAX_COLOR).is_ok());
        assert_eq!(
            with_color(0x100_0000),
            Err(TemplateError::ColorOutOfRange { color: 0x100_0000 })
        );
    }

    #[test]
    fn errors_read_well() {
        let message = |raw: &str| text(raw).err().map(|e| e.to_string());
        assert_eq!(
            message("{nope}").as_deref(),
            Some("unknown placeholder {nope} at character 0 of the content")
        );
        assert_eq!(
            message("a {").as_deref(),
            Some("the brace at character 2 of the content is not closed (write {{ for a brace)")
        );
        assert_eq!(
            message("}").as_deref(),
            Some("the brace at character 0 of the content closes nothing (write }} for a brace)")
        );
        assert_eq!(
            TemplateError::ColorOutOfRange { color: 0x100_0000 }.to_string(),
            "color 0x1000000 is not an RGB color (0 to 0xffffff)"
        );
    }

    #[test]
    fn json_is_the_source_and_is_checked() {
        let json = r#"{"embed":{"title":"Hi {member.name}","color":5763719}}"#;
        let template: Template = serde_json::from_str(json).expect("valid");
        assert_eq!(serde_json::to_string(&template).expect("serializes"), json);
        let text: Template = serde_json::from_str(r#"{"text":"{code}"}"#).expect("valid");
        assert_eq!(text.source(), &TemplateSource::Text("{code}".into()));

        let refused = serde_json::from_str::<Template>(r#"{"text":"hi {membr.name}"}"#)
            .expect_err("unknown placeholder")
            .to_string();
        assert!(
            refused.starts_with("unknown placeholder {membr.name} at character 3"),
            "{refused}"
        );
        // A misspelt field is an error, not an ignored part.
        assert!(serde_json::from_str::<Template>(r#"{"embed":{"colour":1,"title":"x"}}"#).is_err());
    }
}
