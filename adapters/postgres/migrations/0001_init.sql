-- Tasks, their accounts, targets and the execution log (seed section 1.2).

CREATE TABLE tasks (
    id               text PRIMARY KEY,
    owner            text NOT NULL,
    name             text NOT NULL,
    kind             text NOT NULL,
    platform         text NOT NULL,
    chat             text,
    message_template text,
    priority         smallint NOT NULL DEFAULT 1,
    status           text NOT NULL DEFAULT 'draft',
    status_reason    text,
    limits           jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz
);
CREATE INDEX tasks_owner_created ON tasks (owner, created_at DESC);
CREATE INDEX tasks_status ON tasks (status) WHERE status IN ('running', 'paused');

CREATE TABLE task_accounts (
    task_id    text NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    account_id text NOT NULL,
    state      text NOT NULL DEFAULT 'active',
    PRIMARY KEY (task_id, account_id)
);
CREATE INDEX task_accounts_account ON task_accounts (account_id);

CREATE TABLE targets (
    id            bigserial PRIMARY KEY,
    task_id       text NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    target_key    text NOT NULL,
    username      text,
    user_id       bigint,
    phone         text,
    first_name    text,
    last_name     text,
    extra         jsonb,
    status        text NOT NULL DEFAULT 'pending',
    account_id    text,
    attempts      integer NOT NULL DEFAULT 0,  -- claims so far; part of the idempotency key
    transient_failures integer NOT NULL DEFAULT 0,
    last_outcome  text,
    reason        text,
    claimed_at    timestamptz,
    finished_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (task_id, target_key)
);
CREATE INDEX targets_task_status ON targets (task_id, status);
CREATE INDEX targets_account_status ON targets (account_id, status) WHERE account_id IS NOT NULL;

CREATE TABLE execution_log (
    id          bigserial PRIMARY KEY,
    event_id    text NOT NULL UNIQUE,
    task_id     text NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    target_id   bigint NOT NULL,
    account_id  text NOT NULL,
    action      text NOT NULL,
    attempt     integer NOT NULL,
    outcome     text NOT NULL,
    scope       text NOT NULL,
    raw_error   text,
    retry_after double precision,
    claimed_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL
);
CREATE INDEX execution_log_task ON execution_log (task_id, finished_at);
CREATE INDEX execution_log_account ON execution_log (account_id, finished_at);

CREATE TABLE import_batches (
    batch_id   text PRIMARY KEY,
    task_id    text NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    accepted   integer NOT NULL,
    duplicate  integer NOT NULL,
    invalid    integer NOT NULL,
    errors     jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX import_batches_task ON import_batches (task_id);
