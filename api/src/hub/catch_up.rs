//! Catch-up: a client that reconnects with `lastEventAt` first receives, from PostgreSQL, the
//! `Message` and `ChatMessage` events it missed, then the live ones, with no event lost or
//! repeated at the seam.
//!
//! The replay starts [`REPLAY_OVERLAP`] before `lastEventAt`: an event stamped before the
//! client's last one can have committed after it (see `herald_shared::db::commit_window`).
//! Events of the overlap the client already had come again; clients drop them by `id`.
//!
//! The connection subscribes to the user's channel *before* querying, and live events queue in
//! its outbox meanwhile; after the replay those queued events are sent, minus the `Message` and
//! `ChatMessage` events the replay already carried ([`Seam`]).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use herald_shared::db::catch_up::{missed_chat_messages, missed_notifications};
use herald_shared::db::commit_window::REPLAY_OVERLAP;
use herald_shared::events::{EventType, MessagingEvent};
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::credentials::HubUser;
use super::protocol;

/// Most events replayed on one connect. A client that receives this many should page the rest
/// through REST (`GET /Notifications?createdAfter=…`) rather than make a node stream its
/// whole inbox.
pub const REPLAY_LIMIT: i64 = 1_000;

/// How long after the replay live `Message` events are still checked against it: covers an
/// event already queued when the replay was sent, and one published just after the query read
/// its notification.
const SEAM_WINDOW: Duration = Duration::from_secs(10);

/// The `Message` event records a client may have missed since `since` (from the overlap before
/// it), oldest first, and the seam filter for the live events that follow them.
pub async fn missed_events(
    db: &PgPool,
    user: &HubUser,
    since: DateTime<Utc>,
) -> sqlx::Result<(Vec<Arc<str>>, Seam)> {
    let since = since - REPLAY_OVERLAP;
    let mut conn = db.acquire().await?;
    let (tenant_id, user_id) = (user.tenant_id, user.user_id.as_str());
    let notifications =
        missed_notifications(&mut conn, tenant_id, user_id, since, REPLAY_LIMIT).await?;
    let chat_messages =
        missed_chat_messages(&mut conn, tenant_id, user_id, since, REPLAY_LIMIT).await?;
    drop(conn);
    let mut missed: Vec<MessagingEvent> =
        notifications
            .iter()
            .map(|n| MessagingEvent::notification(EventType::Message, n.id, n.created_at))
            .chain(chat_messages.iter().map(|m| {
                MessagingEvent::chat(EventType::ChatMessage, m.id, m.chat_id, m.created_at)
            }))
            .collect();
    // Ids are UUIDv7, whose fixed-width text sorts like the number: creation order across both
    // kinds.
    missed.sort_by(|a, b| a.id.cmp(&b.id));
    missed.truncate(usize::try_from(REPLAY_LIMIT).unwrap_or(usize::MAX));
    let records = missed
        .iter()
        .filter_map(|event| protocol::event_record(event.to_json().as_bytes()))
        .collect();
    let seam = Seam {
        replayed: missed
            .iter()
            .filter_map(|event| event.id.parse::<Uuid>().ok())
            .collect(),
        until: Instant::now() + SEAM_WINDOW,
    };
    Ok((records, seam))
}

pub struct Seam {
    replayed: HashSet<Uuid>,
    until: Instant,
}

impl Seam {
    /// Whether a live event record should be sent.
    pub fn admits(&self, record: &str) -> bool {
        #[derive(Deserialize)]
        struct Head {
            #[serde(rename = "type")]
            kind: Option<String>,
            id: Option<String>,
        }
        let Ok(head) = serde_json::from_str::<Head>(protocol::event_payload(record)) else {
            return true;
        };
        let replayable = matches!(head.kind.as_deref(), Some("Message" | "ChatMessage"));
        let replayed = replayable
            && head
                .id
                .and_then(|id| id.parse::<Uuid>().ok())
                .is_some_and(|id| self.replayed.contains(&id));
        !replayed
    }

    /// Whether the filter can be dropped: nothing replayed, or the window has passed.
    pub fn is_over(&self) -> bool {
        self.replayed.is_empty() || Instant::now() >= self.until
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn record(kind: EventType, id: Uuid) -> Arc<str> {
        let at = Utc.with_ymd_and_hms(2026, 1, 15, 10, 30, 0).unwrap();
        let event = MessagingEvent::notification(kind, id, at);
        protocol::event_record(event.to_json().as_bytes()).unwrap()
    }

    #[test]
    fn a_replayed_message_is_not_sent_again_but_other_events_are() {
        let (replayed, fresh) = (Uuid::now_v7(), Uuid::now_v7());
        let seam = Seam {
            replayed: HashSet::from([replayed]),
            until: Instant::now() + SEAM_WINDOW,
        };
        assert!(!seam.admits(&record(EventType::Message, replayed)));
        assert!(seam.admits(&record(EventType::Message, fresh)));
        assert!(
            seam.admits(&record(EventType::NotificationRead, replayed)),
            "reading a replayed notification is news"
        );
        assert!(!seam.is_over());
    }

    #[test]
    fn the_seam_ends_when_nothing_was_replayed_or_the_window_passed() {
        let empty = Seam {
            replayed: HashSet::new(),
            until: Instant::now() + SEAM_WINDOW,
        };
        assert!(empty.is_over());
        let past = Seam {
            replayed: HashSet::from([Uuid::now_v7()]),
            until: Instant::now(),
        };
        assert!(past.is_over());
    }
}
