-- A user's inbox total is counted as every row of the user minus the rows they may not see yet
-- (scheduled or cancelled: `HIDDEN_STATUSES` in shared/src/db/notifications.rs, keep the lists
-- the same). Those rows are few, so this index is small, and both counts are index-only scans
-- with no status test per row.
CREATE INDEX notifications_hidden_idx ON notifications (tenant_id, user_id)
    WHERE status IN ('Scheduled', 'Cancelled');
