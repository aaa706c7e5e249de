//! The commands that change counts and settings: Manage Server only (checked by the caller of
//! these functions), answered privately, each write audited with the caller as its author.

use invitrack_model::{FakeReasons, UserId};
use invitrack_storage::admin::{self, Actor, RestoreOutcome, SettingsChange};
use twilight_model::channel::message::component::ButtonStyle;

use super::answers;
use super::buttons::Button;
use super::options::Options;
use super::{Answer, Commands, Request};
use crate::BotError;

/// The key id written in the audit log for changes made with commands: they use no API key.
const COMMAND_KEY_ID: i64 = 0;
/// The key label written in the audit log for changes made with commands.
const COMMAND_KEY_LABEL: &str = "discord command";
/// The largest bonus one command gives or takes (Discord's integer option bound).
pub const MAX_BONUS: i64 = 1_000_000;

/// The audit author of a command: the Discord user who ran it.
pub(super) fn author(request: &Request) -> String {
    format!("discord:{}", request.caller)
}

/// `/resetinvites`: nothing changes until the caller confirms.
pub(super) fn ask_reset(request: &Request, inviter: Option<UserId>) -> Answer {
    let caller = request.caller;
    Answer::private(answers::reset_question(&request.speaker, inviter)).with_buttons(vec![
        (
            request.speaker.say("button-confirm-reset"),
            Button::ConfirmReset { caller, inviter },
            ButtonStyle::Danger,
            false,
        ),
        (
            request.speaker.say("button-cancel"),
            Button::CancelReset { caller },
            ButtonStyle::Secondary,
            false,
        ),
    ])
}

impl Commands {
    pub(super) async fn bonus(
        &self,
        request: &Request,
        options: Options<'_>,
    ) -> Result<Answer, BotError> {
        let Some((sub, options)) = options.subcommand() else {
            return Ok(Answer::private(request.speaker.say("unknown-command")));
        };
        let sign = match sub {
            "add" => 1,
            "remove" => -1,
            _ => return Ok(Answer::private(request.speaker.say("unknown-command"))),
        };
        let (Some(user), Some(amount)) = (options.user("user"), options.integer("amount")) else {
            return Ok(Answer::private(request.speaker.say("unknown-command")));
        };
        let amount = sign * amount.clamp(1, MAX_BONUS);
        let reason = options.string("reason").unwrap_or_default();
        let author = author(request);
        let mut conn = self.pool.get().await.map_err(BotError::pool)?;
        let (_, after) = admin::add_bonus(
            &mut conn,
            request.guild,
            user,
            amount,
            reason,
            &actor(&author),
        )
        .await?;
        tracing::info!(guild_id = %request.guild.guild_id, user_id = %request.caller, inviter_id = %user, amount, "bonus changed");
        Ok(Answer::private(answers::bonus(
            &request.speaker,
            user,
            amount,
            &after,
        )))
    }

    /// The confirmed reset.
    pub(super) async fn reset(
        &self,
        request: &Request,
        inviter: Option<UserId>,
    ) -> Result<Answer, BotError> {
        let author = author(request);
        let mut conn = self.pool.get().await.map_err(BotError::pool)?;
        let reset = admin::reset(
            &mut conn,
            request.guild,
            inviter,
            "/resetinvites",
            &actor(&author),
        )
        .await?;
        tracing::info!(guild_id = %request.guild.guild_id, user_id = %request.caller, reset_id = reset.id, joins = reset.joins_cleared, "counts reset");
        Ok(Answer::private(answers::reset_done(
            &request.speaker,
            &reset,
        )))
    }

    /// `/restoreinvites`: undoes the latest reset not yet undone.
    pub(super) async fn restore(&self, request: &Request) -> Result<Answer, BotError> {
        let author = author(request);
        let mut conn = self.pool.get().await.map_err(BotError::pool)?;
        let resets = admin::list_resets(&mut conn, request.guild).await?;
        let Some(latest) = resets.into_iter().find(|r| r.restored_at.is_none()) else {
            return Ok(Answer::private(request.speaker.say("restore-none")));
        };
        match admin::restore(
            &mut conn,
            request.guild,
            latest.id,
            "/restoreinvites",
            &actor(&author),
        )
        .await?
        {
            RestoreOutcome::Restored(reset) => {
                tracing::info!(guild_id = %request.guild.guild_id, user_id = %request.caller, reset_id = reset.id, "reset restored");
                Ok(Answer::private(answers::restore_done(
                    &request.speaker,
                    &reset,
                )))
            }
            // Someone restored it in the meantime.
            RestoreOutcome::AlreadyRestored(_) | RestoreOutcome::NotFound => {
                Ok(Answer::private(request.speaker.say("restore-none")))
            }
        }
    }

    pub(super) async fn config(
        &self,
        request: &Request,
        options: Options<'_>,
    ) -> Result<Answer, BotError> {
        let Some((sub, options)) = options.subcommand() else {
            return Ok(Answer::private(request.speaker.say("unknown-command")));
        };
        let speaker = &request.speaker;
        let mut change = SettingsChange::default();
        match sub {
            "show" => {
                let mut conn = self.pool.get().await.map_err(BotError::pool)?;
                let settings = admin::guild_settings(&mut conn, request.guild).await?;
                return Ok(Answer::private(answers::settings(speaker, &settings)));
            }
            "template" => {
                return match options
                    .string("message")
                    .and_then(super::templates::kind_named)
                {
                    Some(kind) => self.template_form(request, kind).await,
                    None => Ok(Answer::private(speaker.say("unknown-command"))),
                };
            }
            "join-channel" => change.join_log_channel_id = Some(options.channel("channel")),
            "leave-channel" => change.leave_log_channel_id = Some(options.channel("channel")),
            "invite-channel" => change.invite_channel_id = Some(options.channel("channel")),
            "fake-rules" => {
                for (name, reason) in [
                    ("young-accounts", FakeReasons::YOUNG),
                    ("self-invites", FakeReasons::SELF),
                    ("no-avatar", FakeReasons::NO_AVATAR),
                    ("rejoins", FakeReasons::ALREADY_JOINED),
                ] {
                    match options.boolean(name) {
                        Some(true) => change.enable = change.enable.union(reason),
                        Some(false) => change.disable = change.disable.union(reason),
                        None => {}
                    }
                }
                change.young_account_days = options
                    .integer("young-days")
                    .and_then(|d| u32::try_from(d).ok())
                    .map(|d| d.min(invitrack_model::FakeSettings::MAX_YOUNG_ACCOUNT_DAYS));
            }
            _ => return Ok(Answer::private(speaker.say("unknown-command"))),
        }
        let author = author(request);
        let mut conn = self.pool.get().await.map_err(BotError::pool)?;
        let after =
            admin::update_settings(&mut conn, request.guild, change, &actor(&author)).await?;
        tracing::info!(guild_id = %request.guild.guild_id, user_id = %request.caller, setting = sub, "settings changed");
        Ok(Answer::private(match sub {
            "join-channel" => answers::channel_set(speaker, false, after.join_log_channel_id),
            "leave-channel" => answers::channel_set(speaker, true, after.leave_log_channel_id),
            "invite-channel" => answers::invite_channel_set(speaker, after.invite_channel_id),
            _ => speaker.say_with(
                "config-fake-set",
                &[super::catalogue::text(
                    "rules",
                    answers::fake_rules(speaker, &after.fake),
                )],
            ),
        }))
    }
}

pub(super) fn actor(author: &str) -> Actor<'_> {
    Actor {
        key_id: COMMAND_KEY_ID,
        key_label: COMMAND_KEY_LABEL,
        author,
    }
}
