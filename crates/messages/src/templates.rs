//! A guild's set of templates, and the defaults for the kinds it did not word.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::kind::MessageKind;
use crate::template::{Template, TemplateSource};

/// The default wording of each kind. They say plainly when the evidence cannot tell:
/// invitrack never guesses.
const DEFAULT_TEXTS: [(MessageKind, &str); MessageKind::ALL.len()] = [
    (
        MessageKind::Invite,
        "{member.mention} joined using invite {code} from {inviter.mention} \
         (real invites: {inviter.real}).",
    ),
    (
        MessageKind::Vanity,
        "{member.mention} joined using the vanity URL {code}.",
    ),
    (
        MessageKind::AmbiguousInviter,
        "{member.mention} joined using an invite from {inviter.mention}: one of {candidates}, \
         the evidence cannot tell which (real invites: {inviter.real}).",
    ),
    (
        MessageKind::Ambiguous,
        "{member.mention} joined using one of the invites {candidates}; the evidence cannot \
         tell which, so nobody is credited.",
    ),
    (
        MessageKind::Unknown,
        "{member.mention} joined, but the evidence cannot tell how: {unknown.reason}. \
         Nobody is credited.",
    ),
    (
        MessageKind::Fake,
        "{member.mention} joined through {join.how}. The join counts as fake \
         ({fake.reasons}), not as a real invite.",
    ),
    (
        MessageKind::Leave,
        "{member.mention} left (stayed: {member.stayed}; joined through: {join.how}).",
    ),
];

static DEFAULTS: LazyLock<BTreeMap<MessageKind, Template>> = LazyLock::new(|| {
    DEFAULT_TEXTS
        .into_iter()
        .map(|(kind, text)| {
            let template = Template::parse(TemplateSource::Text(text.to_owned()))
                .expect("the default templates are valid (tested)");
            (kind, template)
        })
        .collect()
});

impl MessageKind {
    /// The template used when a guild wrote none for this kind.
    #[must_use]
    pub fn default_template(self) -> &'static Template {
        &DEFAULTS[&self]
    }
}

/// The templates a guild wrote, by kind; the defaults stand in for the others. As JSON, an
/// object keyed by kind: `{"invite": {"text": "..."}, "leave": {"embed": {...}}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Templates(BTreeMap<MessageKind, Template>);

impl Templates {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The template to render for `kind`: the guild's, else the default.
    #[must_use]
    pub fn get(&self, kind: MessageKind) -> &Template {
        self.0.get(&kind).unwrap_or_else(|| kind.default_template())
    }

    /// The guild's own template for `kind`, if it wrote one.
    #[must_use]
    pub fn custom(&self, kind: MessageKind) -> Option<&Template> {
        self.0.get(&kind)
    }

    /// Sets the guild's template for `kind`, returning the one it replaces.
    pub fn set(&mut self, kind: MessageKind, template: Template) -> Option<Template> {
        self.0.insert(kind, template)
    }

    /// Goes back to the default for `kind`, returning the guild's template.
    pub fn reset(&mut self, kind: MessageKind) -> Option<Template> {
        self.0.remove(&kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_valid_default() {
        for kind in MessageKind::ALL {
            let TemplateSource::Text(text) = kind.default_template().source() else {
                panic!("{kind}: defaults are text");
            };
            assert!(text.starts_with("{member.mention} "), "{kind}");
        }
        assert_eq!(DEFAULTS.len(), MessageKind::ALL.len());
    }

    #[test]
    fn missing_kinds_use_the_defaults() {
        let mine = Template::parse(TemplateSource::Text("hi {member.name}".into())).expect("valid");
        let mut templates = Templates::new();
        assert_eq!(templates.set(MessageKind::Leave, mine.clone()), None);
        assert_eq!(templates.get(MessageKind::Leave), &mine);
        assert_eq!(templates.custom(MessageKind::Leave), Some(&mine));
        assert_eq!(
            templates.get(MessageKind::Invite),
            MessageKind::Invite.default_template()
        );
        assert_eq!(templates.custom(MessageKind::Invite), None);
        assert_eq!(templates.reset(MessageKind::Leave), Some(mine));
        assert_eq!(
            templates.get(MessageKind::Leave),
            MessageKind::Leave.default_template()
        );
    }

    #[test]
    fn json_is_keyed_by_kind() {
        let json = r#"{"ambiguous_inviter":{"text":"{inviter.mention}"},"leave":{"embed":{"title":"bye"}}}"#;
        let templates: Templates = serde_json::from_str(json).expect("valid");
        assert!(templates.custom(MessageKind::AmbiguousInviter).is_some());
        assert!(templates.custom(MessageKind::Leave).is_some());
        assert_eq!(serde_json::to_string(&templates).expect("serializes"), json);
        assert_eq!(
            serde_json::from_str::<Templates>("{}").expect("valid"),
            Templates::new()
        );
        for refused in [
            r#"{"invites":{"text":"x"}}"#,
            r#"{"invite":{"text":"{code"}}"#,
            r#"{"invite":{"text":""}}"#,
            r#"{"invite":"x"}"#,
        ] {
            assert!(
                serde_json::from_str::<Templates>(refused).is_err(),
                "{refused}"
            );
        }
    }
}
