-- Audience import (issue 7): the per-user suppression list and what imports report.

-- People a user never wants contacted, by any identity that reaches them.
-- Values are normalized exactly like targets (lower-case username, user id as
-- decimal text, E.164 phone), so a lookup is an equality on the unique key.
CREATE TABLE suppressions (
    id         bigserial PRIMARY KEY,
    owner      text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('username', 'user_id', 'phone')),
    value      text NOT NULL,
    reason     text NOT NULL CHECK (reason IN ('opt_out', 'never_contact', 'privacy')),
    -- The task whose privacy failure added the entry; no foreign key, because
    -- the memory must outlive a deleted task.
    task_id    text,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner, kind, value)
);
-- Keyset pagination of one owner's list, newest first.
CREATE INDEX suppressions_owner_id ON suppressions (owner, id DESC);

-- Targets the importer skipped because the owner's suppression list holds them.
ALTER TABLE import_batches ADD COLUMN suppressed integer NOT NULL DEFAULT 0;

-- Task option: also skip people earlier tasks found privacy-restricted.
ALTER TABLE tasks ADD COLUMN skip_privacy_failed boolean NOT NULL DEFAULT true;
