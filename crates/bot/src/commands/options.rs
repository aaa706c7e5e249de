//! Reading a command's options by name and type: an option of the wrong type counts as absent
//! (Discord checks types; an old registration might not match).

use invitrack_model::{ChannelId, UserId};
use twilight_model::application::interaction::application_command::{
    CommandDataOption, CommandOptionValue,
};

/// The options of a command or subcommand.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a>(pub &'a [CommandDataOption]);

impl<'a> Options<'a> {
    fn value(self, name: &str) -> Option<&'a CommandOptionValue> {
        self.0.iter().find(|o| o.name == name).map(|o| &o.value)
    }

    #[must_use]
    pub fn user(self, name: &str) -> Option<UserId> {
        match self.value(name)? {
            CommandOptionValue::User(id) => Some(UserId::new(id.get())),
            _ => None,
        }
    }

    #[must_use]
    pub fn channel(self, name: &str) -> Option<ChannelId> {
        match self.value(name)? {
            CommandOptionValue::Channel(id) => Some(ChannelId::new(id.get())),
            _ => None,
        }
    }

    #[must_use]
    pub fn string(self, name: &str) -> Option<&'a str> {
        match self.value(name)? {
            CommandOptionValue::String(s) => Some(s),
            _ => None,
        }
    }

    #[must_use]
    pub fn integer(self, name: &str) -> Option<i64> {
        match self.value(name)? {
            CommandOptionValue::Integer(i) => Some(*i),
            _ => None,
        }
    }

    #[must_use]
    pub fn boolean(self, name: &str) -> Option<bool> {
        match self.value(name)? {
            CommandOptionValue::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The subcommand chosen and its options.
    #[must_use]
    pub fn subcommand(self) -> Option<(&'a str, Options<'a>)> {
        self.0.iter().find_map(|o| match &o.value {
            CommandOptionValue::SubCommand(inner) => Some((o.name.as_str(), Options(inner))),
            _ => None,
        })
    }
}
