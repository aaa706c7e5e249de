//! The commands anyone may use: they read what the API reads and change nothing.

use invitrack_storage::dashboard::{self, LeaderboardOrder};
use twilight_model::channel::message::component::ButtonStyle;

use super::answers::{self, Range};
use super::buttons::Button;
use super::{Answer, Commands, Request};
use crate::BotError;
use invitrack_model::UserId;

impl Commands {
    pub(super) async fn invites(
        &self,
        request: &Request,
        user: UserId,
    ) -> Result<Answer, BotError> {
        let mut conn = self.pool.get().await.map_err(BotError::pool)?;
        let counts =
            invitrack_storage::counts::inviter_counts(&mut conn, request.guild, user).await?;
        Ok(Answer::public(answers::invites(
            &request.speaker,
            user,
            &counts,
        )))
    }

    /// One leaderboard page, with Previous and Next buttons when there is more than one.
    pub(super) async fn leaderboard(
        &self,
        request: &Request,
        range: Range,
        page: i64,
    ) -> Result<Answer, BotError> {
        let since = range
            .days()
            .map(|d| chrono::Utc::now() - chrono::Duration::days(d));
        let mut conn = self.pool.get().await.map_err(BotError::pool)?;
        let result = dashboard::leaderboard(
            &mut conn,
            request.guild,
            LeaderboardOrder::Real,
            since,
            answers::LEADERBOARD_PAGE_SIZE,
            (page - 1) * answers::LEADERBOARD_PAGE_SIZE,
        )
        .await?;
        let pages = answers::pages(result.total_inviters);
        let answer = Answer::public(answers::leaderboard(&request.speaker, range, page, &result));
        if pages == 1 && page == 1 {
            return Ok(answer);
        }
        let to = |page: i64| Button::Leaderboard { range, page };
        Ok(answer.with_buttons(vec![
            (
                request.speaker.say("button-previous"),
                to(page - 1),
                ButtonStyle::Secondary,
                page <= 1,
            ),
            (
                request.speaker.say("button-next"),
                to(page + 1),
                ButtonStyle::Secondary,
                page >= pages,
            ),
        ]))
    }

    pub(super) async fn inviter(
        &self,
        request: &Request,
        member: UserId,
    ) -> Result<Answer, BotError> {
        let mut conn = self.pool.get().await.map_err(BotError::pool)?;
        let history = dashboard::member_history(&mut conn, request.guild, member).await?;
        Ok(Answer::public(answers::inviter(
            &request.speaker,
            member,
            history.joins.first(),
        )))
    }

    pub(super) async fn invite_codes(
        &self,
        request: &Request,
        user: UserId,
    ) -> Result<Answer, BotError> {
        let mut conn = self.pool.get().await.map_err(BotError::pool)?;
        let codes = dashboard::inviter_codes(&mut conn, request.guild, user).await?;
        Ok(Answer::public(answers::invite_codes(
            &request.speaker,
            user,
            &codes,
            chrono::Utc::now(),
        )))
    }

    /// Tracking health and the last 7 days' joins by source; only the caller sees it.
    pub(super) async fn tracking(&self, request: &Request) -> Result<Answer, BotError> {
        let now = chrono::Utc::now();
        let since = now - chrono::Duration::days(7);
        let mut conn = self.pool.get().await.map_err(BotError::pool)?;
        let summary = dashboard::guild_summary(&mut conn, request.guild, since, now).await?;
        let unknown = dashboard::unknown_reasons(&mut conn, request.guild, since).await?;
        Ok(Answer::private(answers::tracking(
            &request.speaker,
            &summary,
            &unknown,
        )))
    }
}
