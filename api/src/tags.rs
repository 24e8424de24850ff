//! Swagger sections.

use poem_openapi::Tags;

#[derive(Tags)]
pub enum ApiTags {
    /// Credentials for end users: exchange the tenant's API key for a user token.
    Auth,
    /// Users' inboxes: create, list, read and manage notifications.
    Notifications,
    /// Recipient profiles (where to email each user, their locale and preferences) and their targets.
    Users,
    /// Named groups of users that broadcasts can target, and their subscribers.
    Topics,
    /// One notification to many users (explicit ids, topics or everyone), fanned out in the background.
    Broadcasts,
    /// Direct and group chats: members, messages, history, read receipts, delivered live.
    Chat,
    /// Your tenant's settings for Herald's features.
    Settings,
    /// The services your tenant sends email, push, SMS and webhooks through.
    Providers,
}
