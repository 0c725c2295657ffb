-- The task store's hand-written statements, one name each (loaded by tasks/store.py).
--
-- Only the writes every task makes (creation, claim, completion), the log lines a run writes,
-- and the pusher's read of the queue are written by hand: through the ORM they cost more than
-- the statements themselves (docs/performance.md, "Which bypasses of Django pay"). Everything
-- else the store writes goes through the ORM.
--
-- A name may have a version per database ("-- name: claim_task (sqlite)"). On SQLite a write is
-- a list of statements run in one transaction: the first decides (when it returns or changes no
-- row, nothing else runs and nothing is written). On PostgreSQL it is one statement whose parts are
-- conditional on the first (data-modifying WITH), so a write costs one round trip.
-- Parameters are named: %(name)s.

-- name: create_task (sqlite)
-- A new task with its stages (%(stages)s: a JSON array of {name, position, weight}) and the
-- audit row of its creation.
INSERT INTO tasks_task (
    id, batch_id, task_type, status, progress, params, result, error_message, error_category,
    attempt, max_attempts, "trigger", priority, run_after, execution_id, checkpoint, heartbeat_at, worker,
    next_attempt_at, enqueued_at, alerted_at, created_by_id, created_at, started_at,
    completed_at, updated_at
) VALUES (
    %(id)s, %(batch_id)s, %(task_type)s, %(status)s, %(progress)s, %(params)s, %(result)s,
    %(error_message)s, %(error_category)s, %(attempt)s, %(max_attempts)s, %(trigger)s, %(priority)s, %(run_after)s,
    %(execution_id)s, %(checkpoint)s, %(heartbeat_at)s, %(worker)s, %(next_attempt_at)s,
    %(enqueued_at)s, %(alerted_at)s, %(created_by_id)s, %(created_at)s, %(started_at)s,
    %(completed_at)s, %(updated_at)s
);
INSERT INTO tasks_taskstage (task_id, name, position, weight, status, progress)
SELECT %(id)s, json_extract(value, '$.name'), json_extract(value, '$.position'),
    json_extract(value, '$.weight'), 'pending', 0.0
FROM json_each(%(stages)s);
INSERT INTO tasks_auditlog (
    actor_id, actor_name, action, target_type, target_id, from_status, to_status, details,
    client_address, created_at
) VALUES (
    %(audit_actor_id)s, %(audit_actor_name)s, %(audit_action)s, %(audit_target_type)s,
    %(audit_target_id)s, %(audit_from_status)s, %(audit_to_status)s, %(audit_details)s,
    %(audit_client_address)s, %(audit_created_at)s
);

-- name: create_task (postgresql)
WITH created AS (
    INSERT INTO tasks_task (
        id, batch_id, task_type, status, progress, params, result, error_message, error_category,
        attempt, max_attempts, "trigger", priority, run_after, execution_id, checkpoint, heartbeat_at, worker,
        next_attempt_at, enqueued_at, alerted_at, created_by_id, created_at, started_at,
        completed_at, updated_at
    ) VALUES (
        %(id)s, %(batch_id)s, %(task_type)s, %(status)s, %(progress)s, %(params)s, %(result)s,
        %(error_message)s, %(error_category)s, %(attempt)s, %(max_attempts)s, %(trigger)s, %(priority)s, %(run_after)s,
        %(execution_id)s, %(checkpoint)s, %(heartbeat_at)s, %(worker)s, %(next_attempt_at)s,
        %(enqueued_at)s, %(alerted_at)s, %(created_by_id)s, %(created_at)s, %(started_at)s,
        %(completed_at)s, %(updated_at)s
    ) RETURNING id
), stages AS (
    INSERT INTO tasks_taskstage (task_id, name, position, weight, status, progress)
    SELECT created.id, stage.name, stage.position, stage.weight, 'pending', 0.0
    FROM created, jsonb_to_recordset(%(stages)s::jsonb)
        AS stage(name varchar, position smallint, weight double precision)
), audit AS (
    INSERT INTO tasks_auditlog (
        actor_id, actor_name, action, target_type, target_id, from_status, to_status, details,
        client_address, created_at
    ) VALUES (
        %(audit_actor_id)s, %(audit_actor_name)s, %(audit_action)s, %(audit_target_type)s,
        %(audit_target_id)s, %(audit_from_status)s, %(audit_to_status)s, %(audit_details)s,
        %(audit_client_address)s, %(audit_created_at)s
    )
)
SELECT id FROM created;

-- name: claim_task (sqlite)
-- pending -> processing, stamped with the fencing token %(execution_id)s, for the task a worker's
-- message names (%(task_id)s) -- or, when a due task of higher priority waits, for the best such
-- task of the types in %(swap_types)s (a JSON array: those the message's time limit covers); when
-- the named task cannot be claimed, for the best due task of those types. A task is due when it
-- is pending, handed over, held by no execution and past its next_attempt_at, and claimable
-- when its type (tasks_tasktype) is not paused and -- only when %(limits)s is true -- has a free
-- slot: fewer executions than its max_concurrency. That count is exact only while no other claim
-- of the type runs (SQLite's single writer; PostgreSQL: the claim holds the type's row lock, see
-- tasks.store.claim). A message swaps only to types without controls: a paused or limited type's
-- task is claimed through its own message, which the pusher hands out within the type's free
-- slots, and a message naming a due task of a limited type claims that task or nothing.
-- Returns what the worker needs of the task it claimed, and writes the audit row.
UPDATE tasks_task SET
    status = 'processing', execution_id = %(execution_id)s, worker = %(worker)s,
    heartbeat_at = %(now)s, started_at = COALESCE(started_at, %(now)s), next_attempt_at = NULL,
    error_message = '', error_category = NULL, updated_at = %(now)s
WHERE id = COALESCE((
        -- INDEXED BY: SQLite's planner would rather sort every pending task by another index.
        SELECT better.id FROM tasks_task AS better INDEXED BY task_queue_idx
        WHERE better.status = 'pending' AND better.execution_id IS NULL
            AND better.enqueued_at IS NOT NULL
            AND (better.next_attempt_at IS NULL OR better.next_attempt_at <= %(now)s)
            AND better.task_type IN (SELECT value FROM json_each(%(swap_types)s))
            AND NOT EXISTS (
                SELECT 1 FROM tasks_tasktype AS control WHERE control.name = better.task_type
                    AND (control.paused OR control.max_concurrency IS NOT NULL)
            )
            AND better.priority > COALESCE((
                -- the named task when it is due and its type not paused: a limited type's task
                -- is never swapped away
                SELECT CASE WHEN control.max_concurrency IS NULL THEN named.priority ELSE 1000 END
                FROM tasks_task AS named LEFT JOIN tasks_tasktype AS control ON control.name = named.task_type
                WHERE named.id = %(task_id)s AND named.status = 'pending' AND named.execution_id IS NULL
                    AND (named.next_attempt_at IS NULL OR named.next_attempt_at <= %(now)s)
                    AND NOT COALESCE(control.paused, 0)
            ), -1000)
        ORDER BY better.priority DESC, better.created_at LIMIT 1
    ), %(task_id)s)
    AND status = 'pending' AND execution_id IS NULL
    AND (next_attempt_at IS NULL OR next_attempt_at <= %(now)s)
    AND NOT EXISTS (
        SELECT 1 FROM tasks_tasktype AS control WHERE control.name = tasks_task.task_type
            AND (control.paused OR (control.max_concurrency IS NOT NULL AND (NOT %(limits)s
                OR control.max_concurrency <= (
                    SELECT count(*) FROM tasks_task AS held INDEXED BY task_held_idx
                    WHERE held.execution_id IS NOT NULL AND held.task_type = control.name
                )
            )))
    )
RETURNING id, task_type, params, attempt, max_attempts, checkpoint, progress, batch_id;
INSERT INTO tasks_auditlog (
    actor_id, actor_name, action, target_type, target_id, from_status, to_status, details,
    client_address, created_at
)
SELECT NULL, 'system', 'worker.claim', 'task',
    -- the claimed id as the audit log writes ids (SQLite keeps a UUID as 32 hex digits)
    lower(substr(id, 1, 8) || '-' || substr(id, 9, 4) || '-' || substr(id, 13, 4) || '-'
        || substr(id, 17, 4) || '-' || substr(id, 21, 12)),
    'pending', 'processing', %(details)s, NULL, %(now)s
FROM tasks_task WHERE execution_id = %(execution_id)s;

-- name: claim_task (postgresql)
WITH claimed AS (
    UPDATE tasks_task SET
        status = 'processing', execution_id = %(execution_id)s, worker = %(worker)s,
        heartbeat_at = %(now)s, started_at = COALESCE(started_at, %(now)s), next_attempt_at = NULL,
        error_message = '', error_category = NULL, updated_at = %(now)s
    WHERE id = COALESCE((
            -- SKIP LOCKED: two workers choosing at once take different tasks.
            SELECT better.id FROM tasks_task AS better
            WHERE better.status = 'pending' AND better.execution_id IS NULL
                AND better.enqueued_at IS NOT NULL
                AND (better.next_attempt_at IS NULL OR better.next_attempt_at <= %(now)s)
                AND better.task_type = ANY(ARRAY(SELECT jsonb_array_elements_text(%(swap_types)s::jsonb)))
                AND NOT EXISTS (
                    SELECT 1 FROM tasks_tasktype AS control WHERE control.name = better.task_type
                        AND (control.paused OR control.max_concurrency IS NOT NULL)
                )
                AND better.priority > COALESCE((
                    SELECT CASE WHEN control.max_concurrency IS NULL THEN named.priority ELSE 1000 END
                    FROM tasks_task AS named LEFT JOIN tasks_tasktype AS control ON control.name = named.task_type
                    WHERE named.id = %(task_id)s AND named.status = 'pending' AND named.execution_id IS NULL
                        AND (named.next_attempt_at IS NULL OR named.next_attempt_at <= %(now)s)
                        AND NOT COALESCE(control.paused, false)
                ), -1000)
            ORDER BY better.priority DESC, better.created_at LIMIT 1
            FOR UPDATE SKIP LOCKED
        ), %(task_id)s)
        AND status = 'pending' AND execution_id IS NULL
        AND (next_attempt_at IS NULL OR next_attempt_at <= %(now)s)
        AND NOT EXISTS (
            SELECT 1 FROM tasks_tasktype AS control WHERE control.name = tasks_task.task_type
                AND (control.paused OR (control.max_concurrency IS NOT NULL AND (NOT %(limits)s
                    OR control.max_concurrency <= (
                        SELECT count(*) FROM tasks_task AS held
                        WHERE held.execution_id IS NOT NULL AND held.task_type = control.name
                    )
                )))
        )
    RETURNING id, task_type, params, attempt, max_attempts, checkpoint, progress, batch_id
), audit AS (
    INSERT INTO tasks_auditlog (
        actor_id, actor_name, action, target_type, target_id, from_status, to_status, details,
        client_address, created_at
    )
    SELECT NULL::integer, 'system', 'worker.claim', 'task', claimed.id::varchar, 'pending',
        'processing', %(details)s::jsonb, NULL::inet, %(now)s::timestamptz
    FROM claimed
)
SELECT * FROM claimed;

-- name: complete_task (sqlite)
-- processing -> completed for the execution %(execution_id)s with its result; every stage
-- completed, the run's last log lines (%(logs)s, as for insert_logs) and the audit row written.
UPDATE tasks_task SET
    status = 'completed', result = %(result)s, progress = 100.0, completed_at = %(now)s,
    execution_id = NULL, heartbeat_at = NULL, checkpoint = %(checkpoint)s, updated_at = %(now)s
WHERE id = %(task_id)s AND status = 'processing' AND execution_id = %(execution_id)s;
INSERT INTO tasks_auditlog (
    actor_id, actor_name, action, target_type, target_id, from_status, to_status, details,
    client_address, created_at
) VALUES (
    NULL, 'system', 'worker.complete', 'task', %(target_id)s, 'processing', 'completed', '{}',
    NULL, %(now)s
);
UPDATE tasks_taskstage SET status = 'completed', progress = 100.0 WHERE task_id = %(task_id)s;
INSERT INTO tasks_tasklog (task_id, "timestamp", level, message, data)
SELECT %(task_id)s, json_extract(value, '$.timestamp'), json_extract(value, '$.level'),
    json_extract(value, '$.message'), json_extract(value, '$.data')
FROM json_each(%(logs)s);

-- name: complete_task (postgresql)
WITH completed AS (
    UPDATE tasks_task SET
        status = 'completed', result = %(result)s, progress = 100.0, completed_at = %(now)s,
        execution_id = NULL, heartbeat_at = NULL, checkpoint = %(checkpoint)s, updated_at = %(now)s
    WHERE id = %(task_id)s AND status = 'processing' AND execution_id = %(execution_id)s
    RETURNING id
), audit AS (
    INSERT INTO tasks_auditlog (
        actor_id, actor_name, action, target_type, target_id, from_status, to_status, details,
        client_address, created_at
    )
    SELECT NULL::integer, 'system', 'worker.complete', 'task', %(target_id)s::varchar,
        'processing', 'completed', '{}'::jsonb, NULL::inet, %(now)s::timestamptz
    FROM completed
), stages AS (
    UPDATE tasks_taskstage SET status = 'completed', progress = 100.0
    WHERE task_id IN (SELECT id FROM completed)
), logs AS (
    INSERT INTO tasks_tasklog (task_id, "timestamp", level, message, data)
    SELECT completed.id, line."timestamp", line.level, line.message, line.data::jsonb
    FROM completed, jsonb_to_recordset(%(logs)s::jsonb)
        AS line("timestamp" timestamptz, level smallint, message text, data text)
)
SELECT id FROM completed;

-- name: insert_logs (sqlite)
-- A run's log lines: %(logs)s is a JSON array of {timestamp, level, message, data}, with each
-- line's data as JSON text (or null) and its timestamp as the database stores one.
INSERT INTO tasks_tasklog (task_id, "timestamp", level, message, data)
SELECT %(task_id)s, json_extract(value, '$.timestamp'), json_extract(value, '$.level'),
    json_extract(value, '$.message'), json_extract(value, '$.data')
FROM json_each(%(logs)s);

-- name: insert_logs (postgresql)
INSERT INTO tasks_tasklog (task_id, "timestamp", level, message, data)
SELECT %(task_id)s, line."timestamp", line.level, line.message, line.data::jsonb
FROM jsonb_to_recordset(%(logs)s::jsonb)
    AS line("timestamp" timestamptz, level smallint, message text, data text);

-- name: due_tasks (sqlite)
-- The pusher's read of the queue: the first %(limit)s tasks that are pending, handed over, due,
-- held by no execution and claimable (their type is not paused nor at its max_concurrency),
-- highest priority first, then the oldest: id, row version, type, and the free slots of a
-- limited type (null: no limit), as the database returns them. (INDEXED BY: as in claim_task.)
SELECT queued.id, queued.updated_at, queued.task_type, control.max_concurrency - (
        SELECT count(*) FROM tasks_task AS held INDEXED BY task_held_idx
        WHERE held.execution_id IS NOT NULL AND held.task_type = queued.task_type
    )
FROM tasks_task AS queued INDEXED BY task_queue_idx
    LEFT JOIN tasks_tasktype AS control ON control.name = queued.task_type
WHERE queued.status = 'pending' AND queued.execution_id IS NULL AND queued.enqueued_at IS NOT NULL
    AND (queued.next_attempt_at IS NULL OR queued.next_attempt_at <= %(now)s)
    AND NOT COALESCE(control.paused, 0)
    AND (control.max_concurrency IS NULL OR control.max_concurrency > (
        SELECT count(*) FROM tasks_task AS held INDEXED BY task_held_idx
        WHERE held.execution_id IS NOT NULL AND held.task_type = queued.task_type
    ))
ORDER BY queued.priority DESC, queued.created_at LIMIT %(limit)s;

-- name: due_tasks (postgresql)
SELECT queued.id, queued.updated_at, queued.task_type, control.max_concurrency - (
        SELECT count(*) FROM tasks_task AS held
        WHERE held.execution_id IS NOT NULL AND held.task_type = queued.task_type
    )
FROM tasks_task AS queued LEFT JOIN tasks_tasktype AS control ON control.name = queued.task_type
WHERE queued.status = 'pending' AND queued.execution_id IS NULL AND queued.enqueued_at IS NOT NULL
    AND (queued.next_attempt_at IS NULL OR queued.next_attempt_at <= %(now)s)
    AND NOT COALESCE(control.paused, false)
    AND (control.max_concurrency IS NULL OR control.max_concurrency > (
        SELECT count(*) FROM tasks_task AS held
        WHERE held.execution_id IS NOT NULL AND held.task_type = queued.task_type
    ))
ORDER BY queued.priority DESC, queued.created_at LIMIT %(limit)s;

-- name: count_due_tasks
-- How many tasks are in the queue (the condition of due_tasks).
SELECT count(*) FROM tasks_task
WHERE status = 'pending' AND execution_id IS NULL AND enqueued_at IS NOT NULL
    AND (next_attempt_at IS NULL OR next_attempt_at <= %(now)s);
