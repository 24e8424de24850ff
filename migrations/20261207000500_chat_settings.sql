-- A tenant's chat settings. A tenant without a row has the defaults (the column defaults), so
-- no row is created with the tenant.
CREATE TABLE chat_settings (
    tenant_id      uuid        PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    -- Whether `<img>` in members' chat HTML is kept: each image is fetched by every other
    -- member's client, so it tells the sender their IP addresses and read times.
    remote_images  boolean     NOT NULL DEFAULT false,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
