//! The catalogue of every string the commands answer with (`crates/bot/locales/*/commands.ftl`,
//! Fluent), compiled into the binary. English is complete; another language answers where it
//! has a translation, English where it has none.

use std::borrow::Cow;
use std::collections::HashMap;

use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader as _, langid};

fluent_templates::static_loader! {
    static LOCALES = {
        locales: "./locales",
        fallback_language: "en-US",
        // Arguments are Discord markup (mentions, code spans, timestamps): Unicode isolation
        // marks around them would break it.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

const ENGLISH: LanguageIdentifier = langid!("en-US");

/// One argument of a message: text (a mention, a code) or a number (plurals follow it).
pub type Arg = (&'static str, FluentValue<'static>);

/// Answers in one language: the interaction's locale when the catalogue has it.
#[derive(Debug, Clone)]
pub struct Speaker {
    language: LanguageIdentifier,
}

impl Default for Speaker {
    fn default() -> Self {
        Self { language: ENGLISH }
    }
}

impl Speaker {
    /// The speaker for Discord's locale name (`en-US`, `fr`, `pt-BR` …); English for a locale
    /// that is missing or not a language tag.
    #[must_use]
    pub fn for_locale(locale: Option<&str>) -> Self {
        locale
            .and_then(|l| l.parse::<LanguageIdentifier>().ok())
            .map_or_else(Self::default, |language| Self { language })
    }

    /// The message `id` without arguments.
    #[must_use]
    pub fn say(&self, id: &str) -> String {
        self.say_with(id, &[])
    }

    /// The message `id` with `args`.
    #[must_use]
    pub fn say_with(&self, id: &str, args: &[Arg]) -> String {
        let args: HashMap<Cow<'static, str>, FluentValue<'static>> = args
            .iter()
            .map(|(name, value)| (Cow::Borrowed(*name), value.clone()))
            .collect();
        LOCALES
            .try_lookup_with_args(&self.language, id, &args)
            .unwrap_or_else(|| {
                // A message missing from English is a bug the catalogue test catches; say
                // something rather than nothing.
                tracing::error!(id, "message missing from the catalogue");
                id.to_owned()
            })
    }
}

/// A text argument.
pub fn text(name: &'static str, value: impl Into<String>) -> Arg {
    (name, FluentValue::from(value.into()))
}

/// A number argument.
pub fn number(name: &'static str, value: i64) -> Arg {
    (name, FluentValue::from(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fluent_templates::fluent_bundle::FluentResource;

    fn ids(ftl: &str) -> Vec<String> {
        ftl.lines()
            .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
            .filter_map(|l| l.split_once(" =").map(|(id, _)| id.trim().to_owned()))
            .collect()
    }

    #[test]
    fn every_translation_has_an_english_original_and_parses() {
        let english_ftl = include_str!("../../locales/en-US/commands.ftl");
        let french_ftl = include_str!("../../locales/fr/commands.ftl");
        for ftl in [english_ftl, french_ftl] {
            // A message with a syntax error would silently fall back to English.
            if let Err((_, errors)) = FluentResource::try_new(ftl.to_owned()) {
                panic!("{errors:?}");
            }
        }
        let english = ids(english_ftl);
        assert!(english.len() > 40, "{english:?}");
        for id in ids(french_ftl) {
            assert!(english.contains(&id), "{id} is not in English");
        }
    }

    #[test]
    fn a_locale_answers_where_translated_and_english_elsewhere() {
        let args = [
            text("user", "<@1>"),
            number("total", 1),
            number("real", 1),
            number("fake", 0),
            number("left", 0),
            number("bonus", 0),
        ];
        assert_eq!(
            Speaker::for_locale(Some("en-GB")).say_with("invites", &args),
            "<@1> has **1** invite (1 real, 0 fake, 0 left, 0 bonus)."
        );
        assert_eq!(
            Speaker::for_locale(Some("fr")).say_with("invites", &args),
            "<@1> a **1** invitation (1 réelles, 0 fausses, 0 parties, 0 bonus)."
        );
        // Not translated: English.
        assert_eq!(
            Speaker::for_locale(Some("fr")).say("restore-none"),
            "There is no reset to undo."
        );
        assert_eq!(
            Speaker::for_locale(Some("not a locale!")).say("restore-none"),
            "There is no reset to undo."
        );
    }
}
