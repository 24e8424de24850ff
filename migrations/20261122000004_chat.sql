-- Chat (SPEC §5): chats, their members with read and delivery receipts, messages, and chat
-- broadcasts (one message to many chats).

CREATE TABLE chats (
    tenant_id         uuid        NOT NULL,
    id                uuid        NOT NULL,
    type              text        NOT NULL CHECK (type IN ('Direct', 'Group')),
    name              text,
    metadata          jsonb       NOT NULL DEFAULT '{}',
    -- The two members of a direct chat, in order, separated by a space (user ids cannot contain
    -- one): what makes a direct chat between two users unique.
    direct_key        text,
    created_by        text,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    last_activity_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CHECK ((type = 'Direct') = (direct_key IS NOT NULL))
);

CREATE UNIQUE INDEX chats_direct_key ON chats (tenant_id, direct_key) WHERE direct_key IS NOT NULL;

CREATE TABLE chat_members (
    tenant_id                  uuid        NOT NULL,
    chat_id                    uuid        NOT NULL,
    user_id                    text        NOT NULL,
    role                       text        NOT NULL CHECK (role IN ('Owner', 'Admin', 'Member')),
    joined_at                  timestamptz NOT NULL DEFAULT now(),
    -- Receipts are cursors: every message up to this id (ids are time-ordered) was read, or
    -- delivered. Unread counts are derived from them, never stored.
    last_read_message_id       uuid,
    last_read_at               timestamptz,
    last_delivered_message_id  uuid,
    last_delivered_at          timestamptz,
    PRIMARY KEY (tenant_id, chat_id, user_id),
    FOREIGN KEY (tenant_id, chat_id) REFERENCES chats (tenant_id, id) ON DELETE CASCADE
);

-- "My chats", and erasing or renaming a user.
CREATE INDEX chat_members_user_idx ON chat_members (tenant_id, user_id);

CREATE TABLE chat_messages (
    tenant_id     uuid        NOT NULL,
    chat_id       uuid        NOT NULL,
    -- UUIDv7: its timestamp is created_at, so id order is time order for history paging.
    id            uuid        NOT NULL,
    sender_id     text        NOT NULL,
    message       text        NOT NULL,
    html_content  text,
    content_type  text        NOT NULL CHECK (content_type IN ('Text', 'Html')),
    metadata      jsonb       NOT NULL DEFAULT '{}',
    -- Set when the message came from a chat broadcast: one message per chat per broadcast.
    broadcast_id  uuid,
    created_at    timestamptz NOT NULL,
    edited_at     timestamptz,
    -- A deleted message keeps its row (content wiped) so receipts and counts stay consistent.
    deleted_at    timestamptz,
    PRIMARY KEY (tenant_id, chat_id, id),
    FOREIGN KEY (tenant_id, chat_id) REFERENCES chats (tenant_id, id) ON DELETE CASCADE
);

CREATE UNIQUE INDEX chat_messages_broadcast_key ON chat_messages (tenant_id, broadcast_id, chat_id)
    WHERE broadcast_id IS NOT NULL;
CREATE INDEX chat_messages_sender_idx ON chat_messages (tenant_id, sender_id);

-- Every move of a member's receipt cursor, so "message info" can tell when each member received
-- and read a given message: the first receipt whose cursor reached it.
CREATE TABLE chat_receipts (
    tenant_id         uuid        NOT NULL,
    chat_id           uuid        NOT NULL,
    user_id           text        NOT NULL,
    up_to_message_id  uuid        NOT NULL,
    read              boolean     NOT NULL,
    at                timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, chat_id, user_id, read, up_to_message_id),
    FOREIGN KEY (tenant_id, chat_id, user_id) REFERENCES chat_members (tenant_id, chat_id, user_id)
        ON DELETE CASCADE ON UPDATE CASCADE
);

-- One message sent to many chats: users' direct chats with the sender and group chats. The
-- targets are numbered; `cursor` is the last position done, advanced in the same transaction as
-- the messages written, so a job that runs twice can neither skip nor repeat a chunk.
CREATE TABLE chat_broadcasts (
    tenant_id      uuid        NOT NULL,
    id             uuid        NOT NULL,
    sender_id      text        NOT NULL,
    message        text        NOT NULL,
    html_content   text,
    content_type   text        NOT NULL CHECK (content_type IN ('Text', 'Html')),
    metadata       jsonb       NOT NULL DEFAULT '{}',
    status         text        NOT NULL CHECK (status IN ('Queued', 'Sending', 'Completed')),
    total_targets  integer     NOT NULL,
    sent           integer     NOT NULL DEFAULT 0,
    cursor         integer     NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    completed_at   timestamptz,
    PRIMARY KEY (tenant_id, id)
);

-- Unfinished chat broadcasts (the scheduler's sweep).
CREATE INDEX chat_broadcasts_unfinished_idx ON chat_broadcasts (updated_at)
    WHERE status <> 'Completed';

CREATE TABLE chat_broadcast_targets (
    tenant_id     uuid    NOT NULL,
    broadcast_id  uuid    NOT NULL,
    position      integer NOT NULL,
    -- Exactly one of: a user (the sender's direct chat with them) or a group chat.
    user_id       text,
    chat_id       uuid,
    PRIMARY KEY (tenant_id, broadcast_id, position),
    FOREIGN KEY (tenant_id, broadcast_id) REFERENCES chat_broadcasts (tenant_id, id) ON DELETE CASCADE,
    CHECK ((user_id IS NULL) <> (chat_id IS NULL))
);

CREATE INDEX chat_broadcast_targets_user_idx ON chat_broadcast_targets (tenant_id, user_id)
    WHERE user_id IS NOT NULL;
