//! Chat over REST and the hub: chats, members, messages, history, content, limits and live events.

mod bounds;
mod chats;
mod content;
mod edits_and_catch_up;
mod history;
mod live;
mod members;
mod messages;
mod users;
