-- Audience imports (issue 7): one row per file or parsing-service import, so
-- that its progress and its final report can be read back from the API.

CREATE TABLE imports (
    id              text PRIMARY KEY,
    owner           text NOT NULL,
    task_id         text NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    source          text NOT NULL CHECK (source IN ('csv', 'xlsx', 'json', 'parsing')),
    status          text NOT NULL CHECK (status IN ('fetching', 'validating', 'publishing', 'published', 'failed')),
    filename        text,
    parsing_task_id text,
    -- Rows read so far (validation or download), then rows handed to the importer.
    rows_read       bigint NOT NULL DEFAULT 0,
    rows_published  bigint NOT NULL DEFAULT 0,
    batches         integer NOT NULL DEFAULT 0,
    -- The source-level report (models.imports.ImportReport) once validation ended.
    report          jsonb,
    error           jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX imports_task ON imports (task_id, created_at DESC);

-- The import a batch belongs to (NULL for API batches and outside producers).
ALTER TABLE import_batches ADD COLUMN import_id text;
CREATE INDEX import_batches_import ON import_batches (import_id) WHERE import_id IS NOT NULL;
