-- REST API (issue 6): soft deletion, schedule windows, and the indexes the
-- API's filtered, keyset-paginated reads use.

-- A deleted task disappears from every read but keeps its rows: its targets'
-- outcomes and the account action record (limit recovery reads it) stay.
ALTER TABLE tasks ADD COLUMN deleted_at timestamptz;
-- Optional sending window: the scheduler picks the task only inside it.
ALTER TABLE tasks ADD COLUMN schedule_start_at timestamptz;
ALTER TABLE tasks ADD COLUMN schedule_end_at timestamptz;

CREATE INDEX tasks_owner_live ON tasks (owner, created_at DESC, id) WHERE deleted_at IS NULL;
-- Target lists page by id within a task (stable while targets are inserted).
CREATE INDEX targets_task_id ON targets (task_id, id);
CREATE INDEX execution_log_task_id ON execution_log (task_id, id);
