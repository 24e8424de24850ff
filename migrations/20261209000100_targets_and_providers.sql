-- Channels beyond the inbox: where each user is reached (targets) and what a tenant sends
-- through (providers).

-- A user's addresses: email addresses, E.164 phone numbers, webhook URLs and browser push
-- subscriptions (`address` is then the push endpoint, with the subscription's keys). The same
-- address registered twice for a user is one target.
CREATE TABLE targets (
    tenant_id    uuid        NOT NULL,
    id           uuid        NOT NULL,
    user_id      text        NOT NULL,
    type         text        NOT NULL CHECK (type IN ('email', 'webPush', 'sms', 'webhook')),
    address      text        NOT NULL,
    push_p256dh  text,
    push_auth    text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT targets_address_key UNIQUE (tenant_id, user_id, type, address),
    CHECK ((type = 'webPush') = (push_p256dh IS NOT NULL AND push_auth IS NOT NULL))
);

-- A provider's `config` is what GET shows; `secret` is the rest (passwords, tokens, private
-- keys) as JSON sealed with AES-256-GCM under HERALD_SECRETS_KEY, bound to this row's tenant
-- and id.
CREATE TABLE providers (
    tenant_id   uuid        NOT NULL,
    id          uuid        NOT NULL,
    type        text        NOT NULL CHECK (type IN ('smtp', 'webPush', 'sms', 'webhook')),
    name        text        NOT NULL,
    priority    integer     NOT NULL,
    enabled     boolean     NOT NULL,
    config      jsonb       NOT NULL,
    secret      bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT providers_name_key UNIQUE (tenant_id, name)
);

-- A push subscription works only with the VAPID key it was made with, and every webhook
-- target is signed with the one secret: one of each per tenant.
CREATE UNIQUE INDEX providers_single_kind_key ON providers (tenant_id, type)
    WHERE type IN ('webPush', 'webhook');
