//! A decision as Discord message: which kind, what the template sees, and the body of
//! `POST /channels/{id}/messages`. Pure.

use invitrack_bus::proto::{self, decision::Kind};
use invitrack_messages::limits::{CONTENT_LIMIT, EMBED_TOTAL_LIMIT};
use invitrack_messages::{
    InviterCounts, MessageKind, RenderContext, RenderedEmbed, RenderedMessage, Templates, render,
};
use invitrack_model::{FakeReasons, InviteCode, JoinSource, UnknownReason, UserId};
use serde_json::json;

/// Which channel a decision's message goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogChannel {
    Join,
    Leave,
}

/// What to post for a decision: its channel, and the rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub channel: LogChannel,
    pub kind: MessageKind,
    pub message: RenderedMessage,
}

/// The message of `decision` with the guild's `templates`; `None` for a decision without kind.
#[must_use]
pub fn plan(decision: &proto::Decision, templates: &Templates) -> Option<Planned> {
    let member_id = UserId::new(decision.member_id);
    let (channel, kind, context) = match decision.kind.as_ref()? {
        Kind::Join(join) => {
            let source = join.source.parse().unwrap_or(JoinSource::Unknown);
            let fake = join
                .fake_reasons
                .iter()
                .filter_map(|name| FakeReasons::from_name(name))
                .fold(FakeReasons::default(), FakeReasons::union);
            let inviter_id = UserId::new_checked(join.inviter_id);
            let context = RenderContext {
                joined_at: Some(join.joined_at_ms),
                source: Some(source),
                code: InviteCode::parse(&join.code).ok(),
                inviter_id,
                candidates: join
                    .candidates
                    .iter()
                    .filter_map(|c| InviteCode::parse(c).ok())
                    .collect(),
                unknown_reason: join.unknown_reason.parse::<UnknownReason>().ok(),
                fake,
                inviter_counts: join.inviter_counts.as_ref().map(counts),
                ..RenderContext::empty(member_id)
            };
            (
                LogChannel::Join,
                MessageKind::for_join(source, inviter_id, fake),
                context,
            )
        }
        Kind::Leave(leave) => {
            let context = RenderContext {
                joined_at: Some(leave.joined_at_ms),
                left_at: Some(leave.left_at_ms),
                inviter_id: UserId::new_checked(leave.inviter_id),
                inviter_counts: leave.inviter_counts.as_ref().map(counts),
                ..RenderContext::empty(member_id)
            };
            (LogChannel::Leave, MessageKind::Leave, context)
        }
    };
    Some(Planned {
        channel,
        kind,
        message: render(templates.get(kind), &context),
    })
}

fn counts(c: &proto::InviterCounts) -> InviterCounts {
    InviterCounts {
        total: c.total,
        real: c.real,
        fake: c.fake,
        leaves: c.leaves,
        bonus: c.bonus,
    }
}

/// The nonce of a decision's message: Discord answers a second create with the same nonce and
/// `enforce_nonce` with the message already created, so a post retried after a crash is not
/// doubled. At most 25 characters (`d` and at most 19 digits).
#[must_use]
pub fn nonce(decision_id: i64) -> String {
    format!("d{decision_id}")
}

/// Most decisions one message carries.
pub const MAX_PER_MESSAGE: usize = 10;
/// Most embeds Discord takes in one message.
const MAX_EMBEDS: usize = 10;

/// One message carrying one or more decisions: their texts one per line, their embeds side by
/// side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Combined {
    pub content: Option<String>,
    pub embeds: Vec<RenderedEmbed>,
}

/// As many of `messages` (in order, at most [`MAX_PER_MESSAGE`]) as one Discord message holds
/// within its limits, and how many that is. The first always fits: each message was rendered
/// within the limits.
#[must_use]
pub fn combine(messages: &[RenderedMessage]) -> (Combined, usize) {
    let chars = |text: &Option<String>| text.as_ref().map_or(0, |t| t.chars().count());
    let embed_chars =
        |e: &RenderedEmbed| chars(&e.title) + chars(&e.description) + chars(&e.footer);
    let mut combined = Combined::default();
    let (mut content_chars, mut embeds_chars) = (0, 0);
    let mut taken = 0;
    for message in messages.iter().take(MAX_PER_MESSAGE) {
        let text = message.content.as_ref().map_or(0, |t| t.chars().count());
        let separator = usize::from(text > 0 && content_chars > 0);
        let embed = message.embed.as_ref().map_or(0, embed_chars);
        let fits = content_chars + separator + text <= CONTENT_LIMIT
            && combined.embeds.len() + usize::from(message.embed.is_some()) <= MAX_EMBEDS
            && embeds_chars + embed <= EMBED_TOTAL_LIMIT;
        if taken > 0 && !fits {
            break;
        }
        if let Some(text) = &message.content {
            let content = combined.content.get_or_insert_with(String::new);
            if !content.is_empty() {
                content.push('\n');
            }
            content.push_str(text);
            content_chars += separator + text.chars().count();
        }
        if let Some(embed) = &message.embed {
            combined.embeds.push(embed.clone());
            embeds_chars += embed_chars(embed);
        }
        taken += 1;
    }
    (combined, taken)
}

/// The JSON body of `POST /channels/{id}/messages`: the content and embeds, the nonce of the
/// batch's first decision, and no mention allowed to ping anyone (a join log must not notify
/// the member or the inviter).
#[must_use]
pub fn create_body(message: &Combined, batch_id: i64) -> Vec<u8> {
    let mut body = json!({
        "nonce": nonce(batch_id),
        "enforce_nonce": true,
        "allowed_mentions": {"parse": []},
    });
    if let Some(content) = &message.content {
        body["content"] = json!(content);
    }
    if !message.embeds.is_empty() {
        body["embeds"] = json!(message.embeds);
    }
    body.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(source: &str, code: &str, inviter: u64, fake: &[&str]) -> proto::Decision {
        proto::Decision {
            id: 42,
            bot_id: 7,
            guild_id: 9,
            member_id: 5_000_000_001,
            decided_at_ms: 1_800_000_000_000,
            kind: Some(Kind::Join(proto::JoinDecided {
                joined_at_ms: 1_800_000_000_000,
                source: source.into(),
                code: code.into(),
                inviter_id: inviter,
                candidates: vec![],
                unknown_reason: String::new(),
                fake_reasons: fake.iter().map(|f| (*f).to_owned()).collect(),
                rejoin: false,
                inviter_counts: Some(proto::InviterCounts {
                    total: 3,
                    fake: 0,
                    leaves: 1,
                    bonus: 0,
                    real: 2,
                }),
            })),
        }
    }

    #[test]
    fn each_decision_gets_its_kind_and_channel() {
        let templates = Templates::new();
        let invite = plan(&join("invite", "abc", 42, &[]), &templates).expect("planned");
        assert_eq!(
            (invite.channel, invite.kind),
            (LogChannel::Join, MessageKind::Invite)
        );
        let content = invite.message.content.expect("text");
        assert!(
            content.contains("<@5000000001>")
                && content.contains("<@42>")
                && content.contains("abc"),
            "{content}"
        );
        let fake = plan(&join("invite", "abc", 42, &["young"]), &templates).expect("planned");
        assert_eq!(fake.kind, MessageKind::Fake);
        let unknown = plan(&join("unknown", "", 0, &[]), &templates).expect("planned");
        assert_eq!(unknown.kind, MessageKind::Unknown);
        let leave = proto::Decision {
            kind: Some(Kind::Leave(proto::MemberLeft {
                left_at_ms: 1_800_000_100_000,
                joined_at_ms: 1_800_000_000_000,
                inviter_id: 42,
                inviter_counts: None,
            })),
            ..join("invite", "abc", 42, &[])
        };
        let leave = plan(&leave, &templates).expect("planned");
        assert_eq!(
            (leave.channel, leave.kind),
            (LogChannel::Leave, MessageKind::Leave)
        );
    }

    #[test]
    fn the_body_pings_nobody_and_carries_the_nonce() {
        let planned = plan(&join("invite", "abc", 42, &[]), &Templates::new()).expect("planned");
        let (combined, taken) = combine(std::slice::from_ref(&planned.message));
        assert_eq!(taken, 1);
        let body: serde_json::Value =
            serde_json::from_slice(&create_body(&combined, 1_234)).expect("JSON");
        assert_eq!(body["nonce"], "d1234");
        assert_eq!(body["enforce_nonce"], true);
        assert_eq!(body["allowed_mentions"], json!({"parse": []}));
        assert!(body["content"].is_string());
        assert!(nonce(i64::MAX).len() <= 25);
    }

    #[test]
    fn a_raid_goes_out_in_messages_that_fit() {
        let templates = Templates::new();
        let one = plan(&join("invite", "abc", 42, &[]), &templates)
            .expect("planned")
            .message;
        let many = vec![one.clone(); 25];
        let (combined, taken) = combine(&many);
        assert_eq!(taken, MAX_PER_MESSAGE);
        let content = combined.content.expect("text");
        assert_eq!(content.lines().count(), MAX_PER_MESSAGE);
        assert!(content.chars().count() <= CONTENT_LIMIT);

        // Long lines: only as many as fit in 2,000 characters.
        let long = RenderedMessage {
            content: Some("x".repeat(900)),
            embed: None,
        };
        let (combined, taken) = combine(&[long.clone(), long.clone(), long]);
        assert_eq!(taken, 2);
        assert_eq!(combined.content.map(|c| c.chars().count()), Some(1_801));

        // Embeds side by side, within 6,000 characters over all of them.
        let embed = RenderedMessage {
            content: None,
            embed: Some(RenderedEmbed {
                title: Some("t".repeat(200)),
                description: Some("d".repeat(2_000)),
                color: None,
                footer: None,
            }),
        };
        let (combined, taken) = combine(&vec![embed; 5]);
        assert_eq!((taken, combined.embeds.len()), (2, 2));
        assert_eq!(combined.content, None);
    }
}
