//! Whatever a guild writes and whatever a context holds: a template that parses renders within
//! Discord's limits, trimmed and never empty, and names can neither format nor ping.

use invitrack_messages::limits::{
    CONTENT_LIMIT, DESCRIPTION_LIMIT, EMBED_TOTAL_LIMIT, FOOTER_LIMIT, TITLE_LIMIT,
};
use invitrack_messages::{
    EmbedSource, InviterCounts, MARKDOWN_CHARS, Placeholder, RenderContext, Template,
    TemplateError, TemplatePart, TemplateSource, render,
};
use invitrack_model::{FakeReasons, InviteCode, JoinSource, UnknownReason, UserId};
use proptest::prelude::*;

const ZERO_WIDTH_SPACE: char = '\u{200B}';

/// Names with what trips renderers up: markdown, mentions, line breaks, bidirectional
/// overrides, digits and dots, whitespace, and any character at all.
fn name() -> impl Strategy<Value = String> {
    let tricky = prop::sample::select(
        "*_~`|><#-+[]():\\.@ \n\t\u{202E}\u{200F}\u{7}1é🙂"
            .chars()
            .collect::<Vec<_>>(),
    );
    prop_oneof![
        prop::collection::vec(prop_oneof![3 => tricky, 1 => any::<char>()], 0..100)
            .prop_map(String::from_iter),
        prop::sample::select(vec!["@everyone", "@here", "<@123>", "**x**", "1. x", ""])
            .prop_map(str::to_owned),
        any::<String>(),
    ]
}

fn code() -> impl Strategy<Value = InviteCode> {
    "[A-Za-z0-9_-]{1,64}".prop_map(|code| InviteCode::parse(code).expect("a valid code"))
}

fn time() -> impl Strategy<Value = i64> {
    prop_oneof![any::<i64>(), 1_420_070_400_000_i64..1_900_000_000_000]
}

fn counts() -> impl Strategy<Value = InviterCounts> {
    prop::array::uniform5(any::<i64>()).prop_map(|[total, real, fake, leaves, bonus]| {
        InviterCounts {
            total,
            real,
            fake,
            leaves,
            bonus,
        }
    })
}

fn context() -> impl Strategy<Value = RenderContext> {
    let member = (
        any::<u64>(),
        prop::option::of(name()),
        prop::option::of(time()),
        prop::option::of(time()),
    );
    let source = (
        prop::option::of(prop::sample::select(JoinSource::ALL)),
        prop::option::of(code()),
        prop::option::of(any::<u64>()),
        prop::collection::vec(code(), 0..30),
        prop::option::of(prop::sample::select(UnknownReason::ALL)),
        (0_u32..16).prop_map(FakeReasons::from_bits_truncate),
    );
    let inviter = (
        prop::option::of(any::<u64>()),
        prop::option::of(name()),
        prop::option::of(counts()),
        prop::option::of(any::<u64>()),
    );
    (member, source, inviter).prop_map(
        |(
            (member_id, member_name, joined_at, left_at),
            (source, code, code_uses, candidates, unknown_reason, fake),
            (inviter_id, inviter_name, inviter_counts, join_position),
        )| RenderContext {
            member_id: UserId::new(member_id),
            member_name,
            joined_at,
            left_at,
            source,
            code,
            code_uses,
            inviter_id: inviter_id.map(UserId::new),
            inviter_name,
            candidates,
            unknown_reason,
            fake,
            inviter_counts,
            join_position,
        },
    )
}

/// A valid part's text of up to `pieces` placeholders, doubled braces and snippets of literal
/// text (at most 19 characters each), so it stays within the part's limit as written while
/// rendering far past it.
fn text(pieces: usize) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => prop::sample::select(Placeholder::ALL.to_vec()).prop_map(|p| p.to_string()),
        3 => "[a-z *_#>\n\t é🙂]{0,8}",
        1 => prop::sample::select(vec!["{{", "}}", " "]).prop_map(str::to_owned),
    ];
    // Short texts, and long ones, which most often render past the limit.
    prop_oneof![0..8_usize, pieces / 2..pieces]
        .prop_flat_map(move |count| prop::collection::vec(piece.clone(), count))
        .prop_map(|pieces| pieces.concat())
}

fn source() -> impl Strategy<Value = TemplateSource> {
    prop_oneof![
        text(105).prop_map(TemplateSource::Text),
        (
            text(13),
            text(210),
            prop::option::of(prop_oneof![0_u32..=0xFF_FF_FF, any::<u32>()]),
            text(105),
        )
            .prop_map(|(title, description, color, footer)| {
                TemplateSource::Embed(EmbedSource {
                    title,
                    description,
                    color,
                    footer,
                })
            }),
    ]
}

/// Checks one rendered part and returns its length.
fn within(part: Option<&String>, limit: usize, pings: bool) -> Result<usize, TestCaseError> {
    let Some(text) = part else { return Ok(0) };
    let chars = text.chars().count();
    prop_assert!(chars <= limit, "{chars} characters, over {limit}");
    prop_assert!(!text.is_empty(), "an empty text");
    prop_assert_eq!(text.trim(), text.as_str(), "not trimmed");
    // The generated templates write no `@`: only names could bring one. (Footers never ping
    // and show names as they are.)
    if pings {
        prop_assert!(
            !text.contains("@everyone") && !text.contains("@here"),
            "{text:?}"
        );
    }
    Ok(chars)
}

/// `shown` is `name` as Discord renders it literally: every markdown character escaped (and a
/// leading number's dot), every `@` followed by a zero-width space, on one line. Returns the
/// name as it reads.
fn check_escaped(shown: &str) -> Result<String, TestCaseError> {
    let mut reads = String::new();
    let mut chars = shown.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let escaped = chars.next();
                prop_assert!(
                    escaped.is_some_and(|e| MARKDOWN_CHARS.contains(&e) || e == '.'),
                    "a stray backslash in {shown:?}"
                );
                reads.extend(escaped);
            }
            '@' => {
                prop_assert_eq!(
                    chars.next(),
                    Some(ZERO_WIDTH_SPACE),
                    "a bare @ in {:?}",
                    shown
                );
                reads.push('@');
            }
            c => {
                prop_assert!(!MARKDOWN_CHARS.contains(&c), "unescaped {c:?} in {shown:?}");
                prop_assert!(!c.is_control() && c != '\u{202E}', "{c:?} in {shown:?}");
                reads.push(c);
            }
        }
    }
    let digits = reads.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 && reads[digits..].starts_with('.') {
        prop_assert!(shown[digits..].starts_with("\\."), "a list in {shown:?}");
    }
    Ok(reads)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parsed_templates_render_within_discords_limits(source in source(), context in context()) {
        let Ok(template) = Template::parse(source) else { return Ok(()) };
        let message = render(&template, &context);
        match (&message.content, &message.embed) {
            (Some(content), None) => {
                within(Some(content), CONTENT_LIMIT, true)?;
            }
            (None, Some(embed)) => {
                let total = within(embed.title.as_ref(), TITLE_LIMIT, true)?
                    + within(embed.description.as_ref(), DESCRIPTION_LIMIT, true)?
                    + within(embed.footer.as_ref(), FOOTER_LIMIT, false)?;
                prop_assert!(total > 0, "an empty embed");
                prop_assert!(total <= EMBED_TOTAL_LIMIT, "{total} characters in the embed");
                prop_assert!(embed.color.is_none_or(|color| color <= 0xFF_FF_FF));
            }
            _ => prop_assert!(false, "content or an embed, not both: {message:?}"),
        }
        // What the API stores is what it reads back.
        let json = serde_json::to_string(&template).expect("serializes");
        prop_assert_eq!(serde_json::from_str::<Template>(&json).ok(), Some(template));
    }

    #[test]
    fn an_unknown_placeholder_is_reported_where_it_is(prefix in text(20), suffix in text(20)) {
        let raw = format!("{prefix}{{nope}}{suffix}");
        prop_assert_eq!(
            Template::parse(TemplateSource::Text(raw)),
            Err(TemplateError::UnknownPlaceholder {
                part: TemplatePart::Content,
                name: "nope".into(),
                position: prefix.chars().count(),
            })
        );
    }

    #[test]
    fn any_text_parses_or_is_refused(raw in any::<String>()) {
        // No panic, whatever is sent to `PUT .../settings`.
        let _ = Template::parse(TemplateSource::Text(raw));
    }

    #[test]
    fn names_can_neither_format_nor_ping(context in context(), member_name in name()) {
        let context = RenderContext { member_name: Some(member_name), ..context };
        let part = |source: TemplateSource| {
            let template = Template::parse(source).expect("a valid template");
            render(&template, &context)
        };
        let content = part(TemplateSource::Text("{member.name}".into()))
            .content
            .expect("content");
        let embed = part(TemplateSource::Embed(EmbedSource {
            title: "{member.name}".into(),
            description: "{member.name}".into(),
            color: None,
            footer: "{member.name}".into(),
        }))
        .embed
        .expect("an embed");
        let reads = check_escaped(&content)?;
        prop_assert_eq!(embed.title.as_deref(), Some(content.as_str()));
        prop_assert_eq!(embed.description.as_deref(), Some(content.as_str()));
        // A footer renders no markdown and no mentions: the name as it reads, unescaped.
        prop_assert_eq!(embed.footer.as_deref(), Some(reads.as_str()));
        prop_assert!(!reads.is_empty() && !reads.contains('\n'));
    }
}
