//! `/config template <message>`: a form (a modal) holding the message's wording and a preview
//! of it; its submit saves the new wording and shows the message as the bot will post it, on
//! sample data (`docs/commands.md#config-template`).

use std::collections::HashMap;

use invitrack_messages::{
    EmbedSource, MessageKind, RenderedMessage, Template, TemplateSource, limits, render,
    sample_context,
};
use invitrack_storage::admin::{self, SettingsChange};
use twilight_model::application::interaction::modal::{
    ModalInteractionComponent, ModalInteractionData,
};
use twilight_model::channel::message::component::{
    Component, Label, TextDisplay, TextInput, TextInputStyle,
};
use twilight_model::channel::message::embed::{Embed, EmbedFooter};
use twilight_model::http::interaction::InteractionResponseData;

use super::catalogue::{Speaker, text};
use super::{Answer, Commands, Request};
use crate::BotError;

/// What a template form's `custom_id` starts with; the message kind follows.
const MODAL_PREFIX: &str = "template:";
/// The text inputs of the form, by `custom_id`.
const CONTENT: &str = "content";
const TITLE: &str = "title";
const DESCRIPTION: &str = "description";
const FOOTER: &str = "footer";
/// The longest preview shown in the form (a text display holds up to 4000 characters with
/// the rest of the form).
const PREVIEW_CHARS: usize = 1_500;

/// The message kind of a template form's `custom_id`.
pub(super) fn form_kind(custom_id: &str) -> Option<MessageKind> {
    let name = custom_id.strip_prefix(MODAL_PREFIX)?;
    MessageKind::ALL.into_iter().find(|k| k.as_str() == name)
}

/// The kind named by the command's `message` option.
pub(super) fn kind_named(name: &str) -> Option<MessageKind> {
    MessageKind::ALL.into_iter().find(|k| k.as_str() == name)
}

fn message_name(speaker: &Speaker, kind: MessageKind) -> String {
    speaker.say(&format!("template-message-{}", kind.as_str()))
}

/// A rendered message as text: its content, or its embed's parts one per line.
fn as_text(rendered: &RenderedMessage) -> String {
    let mut lines: Vec<String> = rendered.content.iter().cloned().collect();
    if let Some(embed) = &rendered.embed {
        lines.extend(embed.title.iter().map(|t| format!("**{t}**")));
        lines.extend(embed.description.iter().cloned());
        lines.extend(embed.footer.iter().map(|f| format!("-# {f}")));
    }
    let text = lines.join("\n");
    match text.char_indices().nth(PREVIEW_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

fn input(custom_id: &str, style: TextInputStyle, max: usize, value: &str) -> TextInput {
    #[allow(deprecated)]
    TextInput {
        custom_id: custom_id.to_owned(),
        id: None,
        label: None,
        max_length: u16::try_from(max).ok(),
        min_length: None,
        placeholder: None,
        required: Some(false),
        style,
        value: (!value.is_empty()).then(|| value.to_owned()),
    }
}

fn labelled(label: String, description: Option<String>, input: TextInput) -> Component {
    Component::Label(Label {
        component: Box::new(Component::TextInput(input)),
        description,
        id: None,
        label,
    })
}

/// The values of a submitted form, by text input `custom_id`.
pub(super) fn submitted_values(data: &ModalInteractionData) -> HashMap<String, String> {
    fn collect(component: &ModalInteractionComponent, out: &mut HashMap<String, String>) {
        match component {
            ModalInteractionComponent::TextInput(input) => {
                out.insert(input.custom_id.clone(), input.value.clone());
            }
            ModalInteractionComponent::Label(label) => collect(&label.component, out),
            ModalInteractionComponent::ActionRow(row) => {
                for inner in &row.components {
                    collect(inner, out);
                }
            }
            _ => {}
        }
    }
    let mut values = HashMap::new();
    for component in &data.components {
        collect(component, &mut values);
    }
    values
}

/// What the form says to store: `Ok(None)` when every field is empty (back to the default),
/// `Err` with a catalogue id when both text and embed parts are filled.
fn source_of(
    values: &HashMap<String, String>,
    color: Option<u32>,
) -> Result<Option<TemplateSource>, &'static str> {
    let field = |name: &str| values.get(name).map_or("", |v| v.trim()).to_owned();
    let (content, title, description, footer) = (
        field(CONTENT),
        field(TITLE),
        field(DESCRIPTION),
        field(FOOTER),
    );
    let embed = !(title.is_empty() && description.is_empty() && footer.is_empty());
    match (content.is_empty(), embed) {
        (true, false) => Ok(None),
        (false, false) => Ok(Some(TemplateSource::Text(content))),
        (true, true) => Ok(Some(TemplateSource::Embed(EmbedSource {
            title,
            description,
            color,
            footer,
        }))),
        (false, true) => Err("template-text-or-embed"),
    }
}

/// The message as Discord shows it: its content and its embed.
fn preview(rendered: RenderedMessage) -> (Option<String>, Vec<Embed>) {
    let embeds = rendered
        .embed
        .map(|e| {
            #[allow(deprecated)]
            Embed {
                author: None,
                color: e.color,
                description: e.description,
                fields: Vec::new(),
                flags: None,
                footer: e.footer.map(|text| EmbedFooter {
                    icon_url: None,
                    proxy_icon_url: None,
                    text,
                }),
                image: None,
                kind: "rich".to_owned(),
                provider: None,
                thumbnail: None,
                timestamp: None,
                title: e.title,
                url: None,
                video: None,
            }
        })
        .into_iter()
        .collect();
    (rendered.content, embeds)
}

impl Commands {
    /// The form for `kind`'s wording, filled with the guild's current one.
    pub(super) async fn template_form(
        &self,
        request: &Request,
        kind: MessageKind,
    ) -> Result<Answer, BotError> {
        let speaker = &request.speaker;
        let mut conn = self.pool.get().await.map_err(BotError::pool)?;
        let settings = admin::guild_settings(&mut conn, request.guild).await?;
        let template = settings.templates.get(kind);
        let (content, embed) = match template.source() {
            TemplateSource::Text(text) => (text.clone(), EmbedSource::default()),
            TemplateSource::Embed(embed) => (String::new(), embed.clone()),
        };
        let now = as_text(&render(template, &sample_context(kind)));
        let title = speaker.say_with(
            "template-title",
            &[text("message", message_name(speaker, kind))],
        );
        let modal = InteractionResponseData {
            custom_id: Some(format!("{MODAL_PREFIX}{}", kind.as_str())),
            // Discord's limit for a modal's title is 45 characters.
            title: Some(title.chars().take(45).collect()),
            components: Some(vec![
                Component::TextDisplay(TextDisplay {
                    content: format!("{}\n{now}", speaker.say("template-preview-now")),
                    id: None,
                }),
                labelled(
                    speaker.say("template-label-content"),
                    Some(speaker.say("template-describe-content")),
                    input(
                        CONTENT,
                        TextInputStyle::Paragraph,
                        limits::CONTENT_LIMIT,
                        &content,
                    ),
                ),
                labelled(
                    speaker.say("template-label-title"),
                    None,
                    input(
                        TITLE,
                        TextInputStyle::Short,
                        limits::TITLE_LIMIT,
                        &embed.title,
                    ),
                ),
                labelled(
                    speaker.say("template-label-description"),
                    None,
                    input(
                        DESCRIPTION,
                        TextInputStyle::Paragraph,
                        // A text input holds at most 4000 characters.
                        limits::DESCRIPTION_LIMIT.min(4_000),
                        &embed.description,
                    ),
                ),
                labelled(
                    speaker.say("template-label-footer"),
                    None,
                    input(
                        FOOTER,
                        TextInputStyle::Short,
                        limits::FOOTER_LIMIT.min(4_000),
                        &embed.footer,
                    ),
                ),
            ]),
            ..InteractionResponseData::default()
        };
        Ok(Answer::form(modal, speaker.say("template-too-slow")))
    }

    /// The form submitted: checks and saves the wording, then shows it on sample data.
    pub(super) async fn save_template(
        &self,
        request: &Request,
        kind: MessageKind,
        values: &HashMap<String, String>,
    ) -> Result<Answer, BotError> {
        let speaker = &request.speaker;
        let mut conn = self.pool.get().await.map_err(BotError::pool)?;
        // An embed keeps its colour: the form has no field for it.
        let color = match admin::guild_settings(&mut conn, request.guild)
            .await?
            .templates
            .get(kind)
            .source()
        {
            TemplateSource::Embed(embed) => embed.color,
            TemplateSource::Text(_) => None,
        };
        let template = match source_of(values, color) {
            Ok(None) => None,
            Ok(Some(source)) => match Template::parse(source) {
                Ok(template) => Some(template),
                Err(problem) => {
                    return Ok(Answer::private(speaker.say_with(
                        "template-invalid",
                        &[text("problem", problem.to_string())],
                    )));
                }
            },
            Err(why) => return Ok(Answer::private(speaker.say(why))),
        };
        let author = super::admin::author(request);
        let change = SettingsChange {
            templates: vec![(kind, template.clone())],
            ..SettingsChange::default()
        };
        let after = admin::update_settings(
            &mut conn,
            request.guild,
            change,
            &super::admin::actor(&author),
        )
        .await?;
        tracing::info!(guild_id = %request.guild.guild_id, user_id = %request.caller, message = kind.as_str(), "template changed");
        let name = message_name(speaker, kind);
        let said = match template {
            Some(_) => speaker.say_with("template-saved", &[text("message", name)]),
            None => speaker.say_with("template-reset", &[text("message", name)]),
        };
        let (content, embeds) = preview(render(after.templates.get(kind), &sample_context(kind)));
        let mut answer = Answer::private(match content {
            Some(content) => format!("{said}\n\n{content}"),
            None => said,
        });
        answer.embeds = embeds;
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_form_is_text_or_an_embed_or_nothing() {
        assert_eq!(source_of(&values(&[(CONTENT, "  ")]), None), Ok(None));
        assert_eq!(
            source_of(&values(&[(CONTENT, " hi ")]), Some(1)),
            Ok(Some(TemplateSource::Text("hi".into())))
        );
        assert_eq!(
            source_of(&values(&[(TITLE, "t"), (FOOTER, "f")]), Some(7)),
            Ok(Some(TemplateSource::Embed(EmbedSource {
                title: "t".into(),
                description: String::new(),
                color: Some(7),
                footer: "f".into(),
            })))
        );
        assert_eq!(
            source_of(&values(&[(CONTENT, "x"), (DESCRIPTION, "d")]), None),
            Err("template-text-or-embed")
        );
    }

    #[test]
    fn form_ids_round_trip() {
        for kind in MessageKind::ALL {
            let id = format!("{MODAL_PREFIX}{}", kind.as_str());
            assert!(id.len() <= 100);
            assert_eq!(form_kind(&id), Some(kind));
            assert_eq!(kind_named(kind.as_str()), Some(kind));
        }
        assert_eq!(form_kind("template:nope"), None);
        assert_eq!(form_kind("invite"), None);
    }
}
