-- The durable record of every action an account was cleared to take, written
-- in the same statement as the claim (before the send). A new owner of an
-- account merges it into the limit state recovered from the changelog, which
-- may lack the last actions of a worker that died (DESIGN.md, Invariants).
-- It also tells the scheduler which task an account served least recently.

CREATE TABLE account_actions (
    account_id text NOT NULL,
    at         timestamptz NOT NULL,
    task_id    text NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    target_id  bigint NOT NULL,
    kind       text NOT NULL,
    PRIMARY KEY (account_id, at, target_id)
);
CREATE INDEX account_actions_served ON account_actions (account_id, task_id, at);
CREATE INDEX account_actions_at ON account_actions (at);
