-- The delivery pipeline: recipients, topics, broadcasts and email deliveries.

-- A tenant's users as Herald knows them: where to email them and what they opted out of.
CREATE TABLE recipients (
    tenant_id      uuid        NOT NULL,
    user_id        text        NOT NULL,
    email          text,
    display_name   text,
    locale         text,
    email_enabled  boolean     NOT NULL DEFAULT true,
    -- Notification types the user does not want by email.
    email_opt_out  text[]      NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);

-- Named groups of users.
CREATE TABLE topics (
    tenant_id    uuid        NOT NULL,
    id           uuid        NOT NULL,
    name         text        NOT NULL,
    description  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT topics_name_key UNIQUE (tenant_id, name)
);

CREATE TABLE topic_subscriptions (
    tenant_id   uuid        NOT NULL,
    topic_id    uuid        NOT NULL,
    user_id     text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, topic_id, user_id),
    FOREIGN KEY (tenant_id, topic_id) REFERENCES topics (tenant_id, id) ON DELETE CASCADE
);

-- A user's subscriptions (erasing and renaming users).
CREATE INDEX topic_subscriptions_user_idx ON topic_subscriptions (tenant_id, user_id);

-- One notification template sent to many users. `cursor` is the last user id fanned out: the
-- fan-out advances it in the same transaction as the inbox rows it writes, so a job that runs
-- twice (or a worker that dies) can neither skip nor repeat a chunk.
CREATE TABLE broadcasts (
    tenant_id         uuid        NOT NULL,
    id                uuid        NOT NULL,
    status            text        NOT NULL CHECK (status IN ('Queued', 'Scheduled', 'FanningOut',
                          'Completed', 'Cancelled', 'Failed')),
    audience          text        NOT NULL CHECK (audience IN ('Users', 'Topics', 'AllUsers')),
    topic_ids         uuid[]      NOT NULL DEFAULT '{}',
    subject           text        NOT NULL,
    message           text        NOT NULL,
    html_content      text,
    summary           text,
    type              text        NOT NULL,
    priority          smallint    NOT NULL,
    metadata          jsonb       NOT NULL DEFAULT '{}',
    send_email        boolean     NOT NULL DEFAULT false,
    scheduled_for     timestamptz,
    cursor            text,
    total_recipients  integer,
    delivered         integer     NOT NULL DEFAULT 0,
    error_message     text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    completed_at      timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

-- The scheduler's sweep: broadcasts that stopped making progress.
CREATE INDEX broadcasts_active_idx ON broadcasts (updated_at) WHERE status IN ('Queued', 'FanningOut');

-- The explicit audience of a `Users` broadcast.
CREATE TABLE broadcast_recipients (
    tenant_id     uuid NOT NULL,
    broadcast_id  uuid NOT NULL,
    user_id       text NOT NULL,
    PRIMARY KEY (tenant_id, broadcast_id, user_id)
);

-- Exactly one inbox row per broadcast and recipient, whatever happens to the fan-out jobs.
CREATE UNIQUE INDEX notifications_broadcast_user_key ON notifications (tenant_id, broadcast_id, user_id)
    WHERE broadcast_id IS NOT NULL;

-- The scheduler's sweep: notifications accepted but never delivered (lost enqueue, Redis flush).
CREATE INDEX notifications_pending_idx ON notifications (created_at) WHERE status = 'Pending';

-- One email per notification at most: the worker claims the row (`Sending`) before talking to
-- SMTP, so a second run of the job, or a run after a crash, never sends again.
CREATE TABLE email_deliveries (
    tenant_id        uuid        NOT NULL,
    notification_id  uuid        NOT NULL,
    broadcast_id     uuid,
    email            text        NOT NULL,
    state            text        NOT NULL DEFAULT 'Pending' CHECK (state IN ('Pending', 'Sending',
                         'Retrying', 'Sent', 'Failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    PRIMARY KEY (tenant_id, notification_id)
);

-- A broadcast's email outcomes are counted from here when read: a counter on the broadcast row
-- would make every email of a broadcast wait for the same row lock.
CREATE INDEX email_deliveries_broadcast_idx ON email_deliveries (tenant_id, broadcast_id, state)
    WHERE broadcast_id IS NOT NULL;

-- The scheduler's sweep: emails that stopped making progress.
CREATE INDEX email_deliveries_unfinished_idx ON email_deliveries (updated_at)
    WHERE state IN ('Pending', 'Retrying', 'Sending');
