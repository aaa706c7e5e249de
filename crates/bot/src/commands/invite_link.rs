//! `/invite link`: a personal invite for the caller, created by the bot in the guild's invite
//! channel, so members without Create Invite can bring people and each code's credit is exact.
//! The code is recorded as the caller's before it is shown, so every join through it is
//! credited to them (`docs/commands.md#invite-link`).

use invitrack_discord::GateError;
use invitrack_model::{ChannelId, InviteCode};
use invitrack_storage::{admin, member_invites};
use twilight_model::id::Id;

use super::catalogue::text;
use super::{Answer, Commands, Request};
use crate::BotError;

impl Commands {
    pub(super) async fn invite_link(&self, request: &Request) -> Result<Answer, BotError> {
        let speaker = &request.speaker;
        let mut conn = self.pool.get().await.map_err(BotError::pool)?;
        let Some(channel) = admin::guild_settings(&mut conn, request.guild)
            .await?
            .invite_channel_id
        else {
            return Ok(Answer::private(speaker.say("invite-link-off")));
        };
        // One live invite per member: asking again gives the same one back.
        if let Some((code, _)) =
            member_invites::live_code_of(&mut conn, request.guild, request.caller).await?
        {
            return Ok(Answer::private(speaker.say_with(
                "invite-link",
                &[text("code", code.as_str().to_owned())],
            )));
        }
        let code = match self.create_invite(channel).await {
            Ok(Some(code)) => code,
            Ok(None) => {
                tracing::warn!(guild_id = %request.guild.guild_id, channel_id = %channel, "the created invite could not be read");
                return Ok(Answer::private(speaker.say("invite-link-failed")));
            }
            Err(error) => {
                tracing::warn!(guild_id = %request.guild.guild_id, user_id = %request.caller, channel_id = %channel, error = &error as &dyn std::error::Error, "invite not created");
                let forbidden = matches!(&error, GateError::Http(e) if invitrack_discord::status_of(e) == Some(403));
                return Ok(Answer::private(if forbidden {
                    speaker.say_with(
                        "invite-link-forbidden",
                        &[text("channel", format!("<#{channel}>"))],
                    )
                } else {
                    speaker.say("invite-link-failed")
                }));
            }
        };
        member_invites::record(&mut conn, request.guild, &code, request.caller, channel).await?;
        tracing::info!(guild_id = %request.guild.guild_id, user_id = %request.caller, code = code.as_str(), "personal invite created");
        Ok(Answer::private(speaker.say_with(
            "invite-link",
            &[text("code", code.as_str().to_owned())],
        )))
    }

    /// Creates a permanent, unlimited invite in `channel`, a new one (`unique`) so its uses
    /// are the caller's alone. `None` when Discord's answer cannot be read.
    async fn create_invite(&self, channel: ChannelId) -> Result<Option<InviteCode>, GateError> {
        let channel = Id::new(channel.get());
        let response = self
            .gate
            .call(|| {
                self.http
                    .create_invite(channel)
                    .max_age(0)
                    .max_uses(0)
                    .unique(true)
            })
            .await?;
        Ok(response
            .model()
            .await
            .ok()
            .and_then(|invite| InviteCode::parse(&invite.code).ok()))
    }
}
