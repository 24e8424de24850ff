-- Every send beyond the inbox is a delivery: one row per notification, channel and target, with
-- the same claim-before-send state machine email has always had. `email_deliveries` becomes
-- `deliveries`; its rows are the email channel's sends to the notification's own address.

ALTER TABLE email_deliveries RENAME TO deliveries;
ALTER TABLE deliveries RENAME COLUMN email TO address;
ALTER INDEX email_deliveries_broadcast_idx RENAME TO deliveries_broadcast_idx;
ALTER INDEX email_deliveries_unfinished_idx RENAME TO deliveries_unfinished_idx;

ALTER TABLE deliveries
    ADD COLUMN channel text NOT NULL DEFAULT 'email'
        CHECK (channel IN ('email', 'webPush', 'sms', 'webhook')),
    -- The target sent to; the nil uuid is the notification's own address (its `email`, or the
    -- recipient profile's), which is no row of `targets`. A key column, so it cannot be NULL.
    ADD COLUMN target_id uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
    -- The provider that sent it, or that the last attempt went through.
    ADD COLUMN provider text;
ALTER TABLE deliveries ALTER COLUMN channel DROP DEFAULT, ALTER COLUMN target_id DROP DEFAULT;

ALTER TABLE deliveries DROP CONSTRAINT email_deliveries_pkey;
ALTER TABLE deliveries ADD PRIMARY KEY (tenant_id, notification_id, channel, target_id);

-- `Skipped`: nothing to send through (the target was removed, or no provider is set up).
ALTER TABLE deliveries DROP CONSTRAINT email_deliveries_state_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_state_check
    CHECK (state IN ('Pending', 'Sending', 'Retrying', 'Sent', 'Failed', 'Skipped'));

-- The channels a notification (or broadcast) goes out on; NULL is the default: the inbox, and
-- email when the notification names an address (a broadcast: when it emails).
ALTER TABLE notifications ADD COLUMN channels text[];
ALTER TABLE broadcasts ADD COLUMN channels text[];
