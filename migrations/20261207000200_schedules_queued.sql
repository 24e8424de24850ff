-- The scheduler's sweep looks for schedule records claimed (`Queued`) whose work never started:
-- their job was lost to Redis, or the process died between claim and push.
CREATE INDEX schedules_queued_idx ON schedules (due_at) WHERE state = 'Queued';

-- A broadcast's record now becomes `Done` when its fan-out starts (as a notification's does on
-- delivery); records of broadcasts already started before this change are done too.
UPDATE schedules s SET state = 'Done', updated_at = now()
FROM broadcasts b
WHERE s.kind = 'Broadcast' AND s.state = 'Queued'
  AND b.tenant_id = s.tenant_id AND b.id = s.target_id AND b.status <> 'Scheduled';
