/** Append-only: migration N brings the schema from user_version N to N+1. Never edit a shipped one. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    config TEXT NOT NULL,
    snapshot TEXT,
    state TEXT,
    iteration INTEGER NOT NULL DEFAULT 0,
    best_val_score REAL,
    accepted INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0,
    stop_reason TEXT,
    last_error TEXT,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    pid INTEGER
  );
  CREATE TABLE steps (
    key TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id),
    iteration INTEGER NOT NULL,
    step TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('started', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 1,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    outcome TEXT,
    error TEXT
  );
  CREATE INDEX steps_run ON steps(run_id, iteration);
  CREATE TABLE iterations (
    run_id TEXT NOT NULL REFERENCES runs(id),
    iteration INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    val_score REAL,
    best_before REAL,
    summary TEXT,
    finished_at INTEGER NOT NULL,
    PRIMARY KEY (run_id, iteration)
  );
  CREATE TABLE task_results (
    agent_hash TEXT NOT NULL,
    split TEXT NOT NULL CHECK (split IN ('train', 'test')),
    task_id TEXT NOT NULL,
    trial INTEGER NOT NULL DEFAULT 0,
    reward REAL,
    duration_ms INTEGER,
    error TEXT,
    run_id TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (agent_hash, split, task_id, trial)
  );
  CREATE TABLE llm_calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT,
    iteration INTEGER,
    step_key TEXT,
    role TEXT NOT NULL CHECK (role IN ('coding', 'agent')),
    model TEXT NOT NULL,
    prompt_hash TEXT,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cache_creation_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL,
    latency_ms INTEGER NOT NULL,
    stop_reason TEXT,
    response TEXT,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX llm_calls_run ON llm_calls(run_id, iteration);
  CREATE INDEX llm_calls_reuse ON llm_calls(step_key, prompt_hash);
  `,
  // Results that came through a queue, by delivery: a second delivery of the same one is dropped.
  `
  CREATE TABLE task_deliveries (
    id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
  );
  `,
  // Where the current benchmark or gate run stands, counts only (no task ids): status and the live view.
  `
  CREATE TABLE run_progress (
    run_id TEXT PRIMARY KEY,
    iteration INTEGER,
    split TEXT NOT NULL,
    done INTEGER NOT NULL,
    total INTEGER NOT NULL,
    eta_s INTEGER,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE experiment_facts (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL
  );
  `,
];
