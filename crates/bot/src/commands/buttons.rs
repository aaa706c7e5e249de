//! What a button does, carried in its `custom_id` (at most 100 characters): the bot keeps no
//! state between a command and a press, so any replica can take the press.

use invitrack_model::UserId;

use super::answers::Range;

/// A button the bot puts under an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Button {
    /// Turn the leaderboard to `page`: anyone may press it.
    Leaderboard { range: Range, page: i64 },
    /// Confirm `/resetinvites` of `inviter` (everyone's when `None`): only `caller`, and only
    /// with Manage Server.
    ConfirmReset {
        caller: UserId,
        inviter: Option<UserId>,
    },
    /// Give up the reset: only `caller`.
    CancelReset { caller: UserId },
}

impl Button {
    #[must_use]
    pub fn custom_id(self) -> String {
        match self {
            Self::Leaderboard { range, page } => {
                format!("leaderboard:{}:{}", range.as_str(), page.max(1))
            }
            Self::ConfirmReset { caller, inviter } => format!(
                "reset:{caller}:{}",
                inviter.map_or_else(|| "all".to_owned(), |i| i.to_string())
            ),
            Self::CancelReset { caller } => format!("reset-cancel:{caller}"),
        }
    }

    #[must_use]
    pub fn parse(custom_id: &str) -> Option<Self> {
        let parts: Vec<&str> = custom_id.split(':').collect();
        let user = |s: &str| s.parse::<u64>().ok().filter(|&id| id != 0).map(UserId::new);
        match parts.as_slice() {
            ["leaderboard", range, page] => Some(Self::Leaderboard {
                range: Range::from_name(range)?,
                page: page.parse::<i64>().ok()?.clamp(1, 10_000),
            }),
            ["reset", caller, "all"] => Some(Self::ConfirmReset {
                caller: user(caller)?,
                inviter: None,
            }),
            ["reset", caller, inviter] => Some(Self::ConfirmReset {
                caller: user(caller)?,
                inviter: Some(user(inviter)?),
            }),
            ["reset-cancel", caller] => Some(Self::CancelReset {
                caller: user(caller)?,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_round_trip_and_anything_else_is_refused() {
        let caller = UserId::new(u64::MAX);
        let mut buttons = vec![
            Button::ConfirmReset {
                caller,
                inviter: None,
            },
            Button::ConfirmReset {
                caller,
                inviter: Some(UserId::new(42)),
            },
            Button::CancelReset { caller },
        ];
        for range in Range::ALL {
            for page in [1, 2, 10_000] {
                buttons.push(Button::Leaderboard { range, page });
            }
        }
        for button in buttons {
            let id = button.custom_id();
            assert!(id.len() <= 100, "{id}");
            assert_eq!(Button::parse(&id), Some(button), "{id}");
        }
        for bad in [
            "",
            "leaderboard",
            "leaderboard:all",
            "leaderboard:1y:2",
            "leaderboard:all:x",
            "leaderboard:all:2:3",
            "reset:0:all",
            "reset:x:all",
            "reset:1",
            "reset-cancel:",
            "other:all:2",
        ] {
            assert_eq!(Button::parse(bad), None, "{bad}");
        }
    }
}
