//! Chat bounds.

use super::Env;

/// `HERALD_CHAT_MAX_MEMBERS` when unset.
pub const DEFAULT_CHAT_MAX_MEMBERS: usize = 10_000;

#[derive(Clone, Debug)]
pub struct ChatConfig {
    /// `HERALD_CHAT_MAX_MEMBERS`: most members one group chat may have. Every message reaches
    /// each member, so this bounds the work one sender can cause per message.
    pub max_members: usize,
}

impl ChatConfig {
    pub fn read(env: &mut Env) -> Self {
        let max_members = env.parsed(
            "HERALD_CHAT_MAX_MEMBERS",
            DEFAULT_CHAT_MAX_MEMBERS,
            "a whole number, at least 2",
        );
        if max_members < 2 {
            env.error("HERALD_CHAT_MAX_MEMBERS", "expected at least 2");
        }
        Self { max_members }
    }
}
