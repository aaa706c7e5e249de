//! A template and a context make a message within Discord's limits, whatever the context
//! holds.

use invitrack_model::time::Millis;
use invitrack_model::{FakeReasons, JoinSource, UserId};
use serde::{Deserialize, Serialize};

use crate::context::{InviterCounts, RenderContext};
use crate::limits::EMBED_TOTAL_LIMIT;
use crate::placeholder::Placeholder;
use crate::template::{Parsed, Segment, Template, TemplatePart, Text};
use crate::text::{clean_name, escape_markdown, fit};
use crate::words::{FAKE_REASON_WORDS, duration_words, unknown_reason_words};

/// What a placeholder without a value shows.
const UNKNOWN: &str = "unknown";
/// What an empty list shows.
const NONE: &str = "none";
/// Candidate codes listed before "and N more": a raid can fit dozens.
const MAX_LISTED_CANDIDATES: usize = 10;

/// A message ready to send: its content, or its one embed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderedMessage {
    pub content: Option<String>,
    pub embed: Option<RenderedEmbed>,
}

/// An embed ready to send; parts the template did not write are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderedEmbed {
    pub title: Option<String>,
    pub description: Option<String>,
    pub color: Option<u32>,
    pub footer: Option<String>,
}

/// Fills in `template` from `context`. Every text is trimmed, as Discord trims it, non-empty,
/// and within Discord's limits: a longer one is cut, on a character boundary, with an
/// ellipsis (the description first, when the whole embed is too long).
#[must_use]
pub fn render(template: &Template, context: &RenderContext) -> RenderedMessage {
    let render_part = |part, text: &Text| Renderer { context, part }.text(text);
    match template.parsed() {
        Parsed::Text(content) => RenderedMessage {
            content: Some(render_part(TemplatePart::Content, content)),
            embed: None,
        },
        Parsed::Embed(embed) => {
            let title = embed
                .title
                .as_ref()
                .map(|t| render_part(TemplatePart::Title, t));
            let footer = embed
                .footer
                .as_ref()
                .map(|t| render_part(TemplatePart::Footer, t));
            let others: usize = [&title, &footer]
                .into_iter()
                .flatten()
                .map(|text| text.chars().count())
                .sum();
            let description = embed.description.as_ref().map(|t| {
                let description = render_part(TemplatePart::Description, t);
                // Title and footer are at most 2,304 characters together, so the
                // description always keeps room.
                fit(&description, EMBED_TOTAL_LIMIT.saturating_sub(others))
            });
            RenderedMessage {
                content: None,
                embed: Some(RenderedEmbed {
                    title,
                    description,
                    color: embed.color,
                    footer,
                }),
            }
        }
    }
}

/// Renders one part: what a value looks like depends on where it is shown.
struct Renderer<'a> {
    context: &'a RenderContext,
    part: TemplatePart,
}

impl Renderer<'_> {
    fn text(&self, text: &Text) -> String {
        let mut rendered = String::new();
        for segment in &text.0 {
            match segment {
                Segment::Literal(literal) => rendered.push_str(literal),
                Segment::Placeholder(placeholder) => {
                    rendered.push_str(&self.placeholder(*placeholder));
                }
            }
        }
        fit(rendered.trim(), self.part.limit())
    }

    fn placeholder(&self, placeholder: Placeholder) -> String {
        let c = self.context;
        let count = |count: fn(&InviterCounts) -> i64| {
            c.inviter_counts
                .as_ref()
                .map_or_else(|| UNKNOWN.to_owned(), |counts| count(counts).to_string())
        };
        match placeholder {
            Placeholder::MemberMention => self.mention(c.member_id, c.member_name.as_deref()),
            Placeholder::MemberName => self.name(c.member_name.as_deref()),
            Placeholder::MemberId => c.member_id.to_string(),
            Placeholder::MemberAge => or_unknown(self.account_age(c.left_at.or(c.joined_at))),
            Placeholder::MemberStayed => or_unknown(
                c.joined_at
                    .zip(c.left_at)
                    .and_then(|(joined, left)| duration_words(left.checked_sub(joined)?)),
            ),
            Placeholder::InviterMention => c.inviter_id.map_or_else(
                || UNKNOWN.to_owned(),
                |id| self.mention(id, c.inviter_name.as_deref()),
            ),
            Placeholder::InviterName => self.name(c.inviter_name.as_deref()),
            Placeholder::InviterId => or_unknown(c.inviter_id.map(|id| id.to_string())),
            Placeholder::InviterTotal => count(|counts| counts.total),
            Placeholder::InviterReal => count(|counts| counts.real),
            Placeholder::InviterFake => count(|counts| counts.fake),
            Placeholder::InviterLeaves => count(|counts| counts.leaves),
            Placeholder::InviterBonus => count(|counts| counts.bonus),
            Placeholder::Code => or_unknown(c.code.as_ref().map(|code| self.shown(code))),
            Placeholder::CodeUses => or_unknown(c.code_uses.map(|uses| uses.to_string())),
            Placeholder::Candidates => self.candidates(),
            Placeholder::JoinHow => self.join_how(),
            Placeholder::JoinPosition => {
                or_unknown(c.join_position.map(|position| position.to_string()))
            }
            Placeholder::UnknownReason => c
                .unknown_reason
                .map_or(UNKNOWN, unknown_reason_words)
                .to_owned(),
            Placeholder::FakeReasons => self.fake_reasons(),
        }
    }

    /// Text from outside the guild's template (names, codes), shown literally.
    fn shown(&self, text: &str) -> String {
        if self.part.has_markdown() {
            escape_markdown(text)
        } else {
            text.to_owned()
        }
    }

    fn name(&self, name: Option<&str>) -> String {
        or_unknown(name.and_then(clean_name).map(|name| self.shown(&name)))
    }

    fn mention(&self, id: UserId, name: Option<&str>) -> String {
        if self.part.shows_mentions() {
            format!("<@{id}>")
        } else {
            // A title or footer would show `<@id>` as typed: the name reads better.
            let name = name.and_then(clean_name).unwrap_or_else(|| id.to_string());
            self.shown(&format!("@{name}"))
        }
    }

    /// The account's age at `at`: its creation time is in its id.
    fn account_age(&self, at: Option<Millis>) -> Option<String> {
        duration_words(at?.checked_sub(self.context.member_id.created_at())?)
    }

    fn candidates(&self) -> String {
        let codes = &self.context.candidates;
        if codes.is_empty() {
            return NONE.to_owned();
        }
        let mut listed = codes
            .iter()
            .take(MAX_LISTED_CANDIDATES)
            .map(|code| self.shown(code))
            .collect::<Vec<_>>()
            .join(", ");
        if codes.len() > MAX_LISTED_CANDIDATES {
            listed.push_str(&format!(
                " and {} more",
                codes.len() - MAX_LISTED_CANDIDATES
            ));
        }
        listed
    }

    /// How the member joined, in words, as far as the evidence says.
    fn join_how(&self) -> String {
        let c = self.context;
        let inviter = c
            .inviter_id
            .map(|id| self.mention(id, c.inviter_name.as_deref()));
        let code = c.code.as_ref().map(|code| self.shown(code));
        let candidates = || {
            if c.candidates.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.candidates())
            }
        };
        match c.source {
            None => UNKNOWN.to_owned(),
            Some(JoinSource::Invite) => {
                let invite =
                    code.map_or_else(|| "an invite".to_owned(), |code| format!("invite {code}"));
                match inviter {
                    Some(inviter) => format!("{invite} from {inviter}"),
                    None => format!("{invite} (inviter unknown)"),
                }
            }
            Some(JoinSource::Vanity) => match code {
                Some(code) => format!("the vanity URL {code}"),
                None => "the vanity URL".to_owned(),
            },
            Some(JoinSource::Ambiguous) => match inviter {
                Some(inviter) => format!("one of {inviter}'s invites{}", candidates()),
                None => format!(
                    "one of several invites{}, which one is not known",
                    candidates()
                ),
            },
            Some(JoinSource::Unknown) => format!(
                "a way the evidence cannot tell ({})",
                c.unknown_reason.map_or(UNKNOWN, unknown_reason_words)
            ),
        }
    }

    fn fake_reasons(&self) -> String {
        let c = self.context;
        if !c.fake.is_fake() {
            return NONE.to_owned();
        }
        FAKE_REASON_WORDS
            .iter()
            .filter(|(reason, _)| c.fake.contains(*reason))
            .map(|&(reason, words)| {
                let age = (reason == FakeReasons::YOUNG)
                    .then(|| self.account_age(c.joined_at))
                    .flatten();
                age.map_or_else(|| words.to_owned(), |age| format!("account only {age} old"))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn or_unknown(value: Option<String>) -> String {
    value.unwrap_or_else(|| UNKNOWN.to_owned())
}

#[cfg(test)]
mod tests {
    use invitrack_model::time::{DAY_MS, DISCORD_EPOCH_MS};
    use invitrack_model::{InviteCode, UnknownReason};

    use super::*;
    use crate::context::sample_context;
    use crate::kind::MessageKind;
    use crate::template::{EmbedSource, TemplateSource};

    const JOINED_AT: Millis = 1_800_000_000_000;

    fn member_created(days_before_join: i64) -> UserId {
        UserId::new(
            (JOINED_AT - days_before_join * DAY_MS - DISCORD_EPOCH_MS).cast_unsigned() << 22,
        )
    }

    fn code(code: &str) -> InviteCode {
        InviteCode::parse(code).expect("a valid code")
    }

    /// A join through invite `abc` of inviter 42, with nothing else known.
    fn context() -> RenderContext {
        RenderContext {
            member_id: member_created(3),
            member_name: Some("Nova".into()),
            joined_at: Some(JOINED_AT),
            left_at: None,
            source: Some(JoinSource::Invite),
            code: Some(code("abc")),
            code_uses: None,
            inviter_id: Some(UserId::new(42)),
            inviter_name: Some("Rowan".into()),
            candidates: Vec::new(),
            unknown_reason: None,
            fake: FakeReasons::NONE,
            inviter_counts: None,
            join_position: None,
        }
    }

    fn content(template: &str, context: &RenderContext) -> String {
        let template =
            Template::parse(TemplateSource::Text(template.into())).expect("a valid template");
        render(&template, context)
            .content
            .expect("a text template renders content")
    }

    fn embed(source: EmbedSource, context: &RenderContext) -> RenderedEmbed {
        let template = Template::parse(TemplateSource::Embed(source)).expect("a valid template");
        render(&template, context)
            .embed
            .expect("an embed template renders an embed")
    }

    #[test]
    fn placeholders_show_the_context() {
        let context = RenderContext {
            code_uses: Some(5),
            inviter_counts: Some(InviterCounts {
                total: 12,
                real: 9,
                fake: 2,
                leaves: 1,
                bonus: -3,
            }),
            join_position: Some(1234),
            ..context()
        };
        let table = [
            (
                "{member.mention}",
                "<@".to_owned() + &context.member_id.to_string() + ">",
            ),
            ("{member.name}", "Nova".to_owned()),
            ("{member.id}", context.member_id.to_string()),
            ("{member.age}", "3 days".to_owned()),
            ("{inviter.mention}", "<@42>".to_owned()),
            ("{inviter.name}", "Rowan".to_owned()),
            ("{inviter.id}", "42".to_owned()),
            (
                "{inviter.total} {inviter.real} {inviter.fake} {inviter.leaves} {inviter.bonus}",
                "12 9 2 1 -3".to_owned(),
            ),
            ("{code} {code.uses}", "abc 5".to_owned()),
            ("{join.how}", "invite abc from <@42>".to_owned()),
            ("{join.position}", "1234".to_owned()),
            ("{candidates} / {fake.reasons}", "none / none".to_owned()),
        ];
        for (template, shown) in table {
            assert_eq!(content(template, &context), shown, "{template}");
        }
    }

    #[test]
    fn missing_values_show_unknown() {
        // The inviter left the guild: no name; no counts, no code uses, no position.
        let context = RenderContext {
            inviter_name: None,
            member_name: None,
            joined_at: None,
            ..context()
        };
        assert_eq!(
            content(
                "{member.name} {member.age} {member.stayed} {inviter.name} {inviter.real} \
                 {code.uses} {join.position} {unknown.reason}",
                &context
            ),
            "unknown unknown unknown unknown unknown unknown unknown unknown"
        );
        // The mention needs only the id.
        assert_eq!(content("{inviter.mention}", &context), "<@42>");
        let nobody = RenderContext {
            source: None,
            code: None,
            inviter_id: None,
            ..context
        };
        assert_eq!(
            content("{inviter.mention} {inviter.id} {code} {join.how}", &nobody),
            "unknown unknown unknown unknown"
        );
    }

    #[test]
    fn join_how_says_what_the_evidence_says() {
        let ambiguous = RenderContext {
            source: Some(JoinSource::Ambiguous),
            code: None,
            candidates: vec![code("abc"), code("def")],
            ..context()
        };
        let table = [
            (context(), "invite abc from <@42>"),
            (
                RenderContext {
                    inviter_id: None,
                    ..context()
                },
                "invite abc (inviter unknown)",
            ),
            (
                RenderContext {
                    source: Some(JoinSource::Vanity),
                    code: Some(code("my-server")),
                    inviter_id: None,
                    ..context()
                },
                r"the vanity URL my\-server",
            ),
            (ambiguous.clone(), "one of <@42>'s invites (abc, def)"),
            (
                RenderContext {
                    inviter_id: None,
                    ..ambiguous
                },
                "one of several invites (abc, def), which one is not known",
            ),
            (
                RenderContext {
                    source: Some(JoinSource::Unknown),
                    code: None,
                    inviter_id: None,
                    unknown_reason: Some(UnknownReason::MissingPermissions),
                    ..context()
                },
                "a way the evidence cannot tell (the bot lacks the Manage Server permission it \
                 needs to read the invites)",
            ),
        ];
        for (context, shown) in table {
            assert_eq!(content("{join.how}", &context), shown);
        }
    }

    #[test]
    fn every_unknown_reason_is_said() {
        for &reason in UnknownReason::ALL {
            let context = RenderContext {
                source: Some(JoinSource::Unknown),
                unknown_reason: Some(reason),
                ..context()
            };
            assert_eq!(
                content("{unknown.reason}", &context),
                unknown_reason_words(reason)
            );
        }
    }

    #[test]
    fn fake_reasons_in_words() {
        let context = RenderContext {
            fake: FakeReasons::YOUNG
                .union(FakeReasons::NO_AVATAR)
                .union(FakeReasons::ALREADY_JOINED),
            ..context()
        };
        assert_eq!(
            content("{fake.reasons}", &context),
            "account only 3 days old, no avatar, joined before"
        );
        let self_invite = RenderContext {
            fake: FakeReasons::YOUNG.union(FakeReasons::SELF),
            joined_at: None,
            ..context
        };
        assert_eq!(
            content("{fake.reasons}", &self_invite),
            "new account, invited themselves"
        );
    }

    #[test]
    fn ages_and_stays() {
        let left = RenderContext {
            left_at: Some(JOINED_AT + 90 * 60_000),
            ..context()
        };
        assert_eq!(content("{member.stayed}", &left), "1 hour");
        // A leave message gives the account's age at the leave.
        let years_later = RenderContext {
            left_at: Some(JOINED_AT + 800 * DAY_MS),
            ..context()
        };
        assert_eq!(content("{member.age}", &years_later), "2 years");
        // Times out of order (a corrupt row) say nothing rather than something false.
        let backwards = RenderContext {
            left_at: Some(JOINED_AT - 1),
            joined_at: Some(JOINED_AT),
            member_id: member_created(-1),
            ..context()
        };
        assert_eq!(
            content("{member.stayed} {member.age}", &backwards),
            "unknown unknown"
        );
    }

    #[test]
    fn many_candidates_are_summed_up() {
        let context = RenderContext {
            source: Some(JoinSource::Ambiguous),
            candidates: (0..13).map(|i| code(&format!("c{i}"))).collect(),
            ..context()
        };
        assert_eq!(
            content("{candidates}", &context),
            "c0, c1, c2, c3, c4, c5, c6, c7, c8, c9 and 3 more"
        );
    }

    #[test]
    fn names_are_escaped_where_discord_renders_markdown() {
        let context = RenderContext {
            member_name: Some("**@everyone**".into()),
            ..context()
        };
        let escaped = r"\*\*@".to_owned() + "\u{200B}" + r"everyone\*\*";
        assert_eq!(content("{member.name}", &context), escaped);
        let rendered = embed(
            EmbedSource {
                title: "{member.name}".into(),
                description: "{member.name}".into(),
                footer: "{member.name}".into(),
                color: None,
            },
            &context,
        );
        assert_eq!(rendered.title.as_deref(), Some(escaped.as_str()));
        assert_eq!(rendered.description.as_deref(), Some(escaped.as_str()));
        // Footers show text as it is: no markdown, no mentions.
        assert_eq!(rendered.footer.as_deref(), Some("**@everyone**"));
    }

    #[test]
    fn mentions_in_titles_and_footers_show_names() {
        let rendered = embed(
            EmbedSource {
                title: "{member.mention} via {inviter.mention}".into(),
                description: "{member.mention} via {inviter.mention}".into(),
                footer: "{join.how}".into(),
                color: Some(0x57F287),
            },
            &RenderContext {
                inviter_name: None,
                ..context()
            },
        );
        assert_eq!(
            rendered.title.as_deref(),
            Some("@\u{200B}Nova via @\u{200B}42")
        );
        assert_eq!(
            rendered.description,
            Some(format!("<@{}> via <@42>", context().member_id))
        );
        assert_eq!(rendered.footer.as_deref(), Some("invite abc from @42"));
        assert_eq!(rendered.color, Some(0x57F287));
    }

    #[test]
    fn rendered_text_is_trimmed_and_cut_to_the_limit() {
        let long_name = RenderContext {
            member_name: Some("é".repeat(64)),
            ..context()
        };
        // 40 names of 64 characters: 2,560 characters.
        let rendered = content(&"  {member.name}".repeat(40), &long_name);
        assert_eq!(rendered.chars().count(), 2000);
        assert!(rendered.starts_with('é') && rendered.ends_with("é…"));
    }

    #[test]
    fn a_long_embed_gives_up_description_first() {
        let long_name = RenderContext {
            member_name: Some("n".repeat(64)),
            ..context()
        };
        let rendered = embed(
            EmbedSource {
                title: "{member.name}".repeat(4),
                description: "{member.name}".repeat(300),
                footer: "{member.name}".repeat(32),
                color: None,
            },
            &long_name,
        );
        let chars = |part: &Option<String>| part.as_ref().map_or(0, |text| text.chars().count());
        assert_eq!(chars(&rendered.title), 256);
        assert_eq!(chars(&rendered.footer), 2048);
        assert_eq!(chars(&rendered.description), 6000 - 256 - 2048);
    }

    #[test]
    fn every_default_names_member_inviter_and_code_when_known() {
        for kind in MessageKind::ALL {
            let context = sample_context(kind);
            let shown = render(kind.default_template(), &context)
                .content
                .expect("defaults are text");
            assert!(
                shown.contains(&format!("<@{}>", context.member_id)),
                "{kind}: {shown}"
            );
            if let Some(inviter) = context.inviter_id {
                assert!(shown.contains(&format!("<@{inviter}>")), "{kind}: {shown}");
            }
            if let Some(code) = &context.code {
                assert!(shown.contains(code.as_str()), "{kind}: {shown}");
            }
            assert!(!shown.contains(UNKNOWN), "{kind}: {shown}");
        }
    }

    #[test]
    fn the_defaults_read_as_documented() {
        let shown = |kind: MessageKind| {
            render(kind.default_template(), &sample_context(kind))
                .content
                .expect("defaults are text")
        };
        let member = sample_context(MessageKind::Invite).member_id;
        let expected = [
            (
                MessageKind::Invite,
                "{m} joined using invite h7Kq2mZ from <@859000000000000042> (real invites: 9).",
            ),
            (
                MessageKind::Vanity,
                "{m} joined using the vanity URL invitrack.",
            ),
            (
                MessageKind::AmbiguousInviter,
                "{m} joined using an invite from <@859000000000000042>: one of h7Kq2mZ, \
                 Wp3xR9a, the evidence cannot tell which (real invites: 9).",
            ),
            (
                MessageKind::Ambiguous,
                "{m} joined using one of the invites h7Kq2mZ, Wp3xR9a; the evidence cannot tell \
                 which, so nobody is credited.",
            ),
            (
                MessageKind::Unknown,
                "{m} joined, but the evidence cannot tell how: no invite's use count went up \
                 for it (Server Discovery, an app adding the member, or a one-use invite \
                 created and used up between two reads). Nobody is credited.",
            ),
            (
                MessageKind::Fake,
                "{m} joined through invite h7Kq2mZ from <@859000000000000042>. The join counts \
                 as fake (account only 3 days old), not as a real invite.",
            ),
            (
                MessageKind::Leave,
                "{m} left (stayed: 2 hours; joined through: invite h7Kq2mZ from \
                 <@859000000000000042>).",
            ),
        ];
        for (kind, text) in expected {
            assert_eq!(
                shown(kind),
                text.replace("{m}", &format!("<@{member}>")),
                "{kind}"
            );
        }
    }
}
