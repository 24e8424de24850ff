-- The notification inbox, its schedule records and idempotency records.

-- `id` is a UUIDv7 and `created_at` is exactly its embedded timestamp, so "newest first" is
-- `ORDER BY id DESC` and `createdAfter`/`createdBefore` become id ranges: one per-user index
-- serves paging and time filters. Enums are text (or a rank for priority, so sorting by
-- priority means urgency) with CHECKs, which evolve more easily than Postgres enum types.
--
-- No foreign key to tenants: every tenant_id comes from a verified credential, and a per-row
-- FK probe would slow broadcast fan-out (100k rows per statement) for no integrity gained.
CREATE TABLE notifications (
    tenant_id      uuid        NOT NULL,
    id             uuid        NOT NULL,
    user_id        text        NOT NULL,
    client_id      text,
    subject        text        NOT NULL,
    message        text        NOT NULL,
    html_content   text,
    summary        text,
    type           text        NOT NULL CHECK (type IN ('UserInvite', 'RegistrationWelcome',
                       'InactivityReminder', 'SystemAnnouncement', 'PasswordReset', 'AccountVerification')),
    priority       smallint    NOT NULL CHECK (priority BETWEEN 0 AND 3),
    status         text        NOT NULL CHECK (status IN ('Pending', 'Scheduled', 'Sent', 'Read',
                       'Failed', 'Cancelled', 'Grouped')),
    created_at     timestamptz NOT NULL,
    scheduled_for  timestamptz,
    sent_at        timestamptz,
    read_at        timestamptz,
    metadata       jsonb       NOT NULL DEFAULT '{}',
    group_id       uuid,
    broadcast_id   uuid,
    email          text,
    retry_count    integer     NOT NULL DEFAULT 0,
    error_message  text,
    PRIMARY KEY (tenant_id, id)
);

-- A user's inbox: newest first, page N, createdAfter/createdBefore. `status` is included so page
-- totals and unread counts of a large inbox are index-only scans ("unread" is status <> 'Read',
-- which every write keeps equivalent to read_at IS NULL).
CREATE INDEX notifications_user_idx ON notifications (tenant_id, user_id, id) INCLUDE (status);
-- analytics/failed-notifications without scanning the tenant; holds only failed rows.
CREATE INDEX notifications_failed_idx ON notifications (tenant_id, id) WHERE status = 'Failed';

-- Work that must happen later: the scheduler claims due rows (SPEC §6).
CREATE TABLE schedules (
    id          uuid        PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('Notification', 'Broadcast')),
    target_id   uuid        NOT NULL,
    due_at      timestamptz NOT NULL,
    state       text        NOT NULL DEFAULT 'Pending'
                    CHECK (state IN ('Pending', 'Queued', 'Done', 'Cancelled')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT schedules_target_key UNIQUE (tenant_id, kind, target_id)
);

CREATE INDEX schedules_due_idx ON schedules (due_at) WHERE state = 'Pending';

-- Idempotency-Key records: the first response to a key is replayed for 24 hours.
CREATE TABLE idempotency_keys (
    tenant_id        uuid        NOT NULL,
    caller           text        NOT NULL,
    key              text        NOT NULL,
    request_hash     bytea       NOT NULL,
    response_status  smallint,
    response_body    jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, caller, key)
);

CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
