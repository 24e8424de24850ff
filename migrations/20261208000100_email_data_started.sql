-- When a claim's SMTP exchange reached the point of no return: the server answered DATA with
-- 354 and the body is about to go. A `Sending` row without it never handed the server a
-- message, so the sweep may send it again once its claim's lease ran out; one with it may have
-- been delivered, so it is never sent again.
ALTER TABLE email_deliveries ADD COLUMN data_started_at timestamptz;

-- Sends in flight under the previous code cannot say how far they got: treat them as having
-- reached DATA, which keeps them at most once.
UPDATE email_deliveries SET data_started_at = updated_at WHERE state = 'Sending';
