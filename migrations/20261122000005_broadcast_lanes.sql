-- Lanes: a broadcast's audience split at user-id boundaries into ranges fanned out side by side,
-- one chunk job per lane at a time, each lane with its own cursor. One cursor on the broadcast
-- row made every chunk of a broadcast wait for the previous one, so a second fan-out process
-- (or a second core) could not speed up a large broadcast.
CREATE TABLE broadcast_lanes (
    tenant_id     uuid     NOT NULL,
    broadcast_id  uuid     NOT NULL,
    lane          smallint NOT NULL,
    -- The last user id written; the lane goes on after it. At first, the lane's exclusive lower bound.
    cursor        text     NOT NULL,
    -- The lane's last user id (inclusive); NULL for the lane that runs to the audience's end.
    upper_bound   text,
    done          boolean  NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, broadcast_id, lane),
    FOREIGN KEY (tenant_id, broadcast_id) REFERENCES broadcasts (tenant_id, id) ON DELETE CASCADE
);

-- A broadcast fanning out while this migration runs carries on as one lane from its cursor.
INSERT INTO broadcast_lanes (tenant_id, broadcast_id, lane, cursor)
SELECT tenant_id, id, 0, coalesce(cursor, '') FROM broadcasts WHERE status = 'FanningOut';

ALTER TABLE broadcasts DROP COLUMN cursor;
