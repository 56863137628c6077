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
  // The gate's records: the incumbent's per-task history, each decision with everything it used, and the
  // records the gate trusts (split, suite, holdout score) pinned with their hashes. Ids and numbers only.
  `
  CREATE TABLE gate_history (
    split TEXT NOT NULL CHECK (split IN ('train', 'test')),
    task_id TEXT NOT NULL,
    s REAL NOT NULL,
    f REAL NOT NULL,
    PRIMARY KEY (split, task_id)
  );
  CREATE TABLE gate_history_runs (
    agent_hash TEXT NOT NULL,
    split TEXT NOT NULL,
    task_id TEXT NOT NULL,
    trial INTEGER NOT NULL,
    PRIMARY KEY (agent_hash, split, task_id, trial)
  );
  CREATE TABLE gate_decisions (
    run_id TEXT NOT NULL,
    iteration INTEGER NOT NULL,
    rule TEXT NOT NULL,
    order_seed INTEGER NOT NULL,
    candidate_hash TEXT NOT NULL,
    incumbent_hash TEXT NOT NULL,
    setup TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'decided')),
    accept INTEGER,
    stage TEXT,
    p_good REAL,
    p_bad REAL,
    expected_gain REAL,
    test_runs INTEGER NOT NULL DEFAULT 0,
    infra_errors INTEGER NOT NULL DEFAULT 0,
    val_score REAL,
    looks TEXT,
    output TEXT,
    created_at INTEGER NOT NULL,
    decided_at INTEGER,
    PRIMARY KEY (run_id, iteration)
  );
  CREATE TABLE gate_results (
    run_id TEXT NOT NULL,
    iteration INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('candidate', 'pair')),
    task_id TEXT NOT NULL,
    trial INTEGER NOT NULL,
    reward REAL,
    incumbent_reward REAL,
    PRIMARY KEY (run_id, iteration, seq)
  );
  CREATE TABLE pinned (
    name TEXT PRIMARY KEY,
    content TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    updated_at INTEGER NOT NULL
  );
  `,
  // The steering files' versions: accepted (committed by the harness, the operator's) and refused (changed
  // while an agent process ran). A steering commit is made only against the latest accepted version.
  `
  CREATE TABLE steering_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('accepted', 'refused')),
    commit_sha TEXT,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX steering_versions_path ON steering_versions(path, status, id);
  `,
  // Process groups the daemon started (benchmark commands), so the next start reaps what a killed daemon left.
  `
  CREATE TABLE process_groups (
    pgid INTEGER PRIMARY KEY,
    start_ticks INTEGER,
    owner_pid INTEGER NOT NULL,
    label TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  `,
  // Runs have generations: a rebaseline starts the score history over, and what looks at the history (the
  // best score, the start-up cross-checks) looks at the current generation only. A journal rebaselined before
  // this knew one restart, as a fact: the runs after it are the second generation.
  `
  CREATE TABLE generations (
    id INTEGER PRIMARY KEY,
    opened_at INTEGER NOT NULL,
    reason TEXT NOT NULL
  );
  INSERT INTO generations (id, opened_at, reason)
    VALUES (1, COALESCE((SELECT MIN(created_at) FROM runs), 0), 'the first baseline');
  INSERT INTO generations (id, opened_at, reason)
    SELECT 2, CAST(value AS INTEGER), 'rebaseline' FROM experiment_facts WHERE key = 'rebaselined_at';
  ALTER TABLE runs ADD COLUMN generation INTEGER NOT NULL DEFAULT 1;
  UPDATE runs SET generation = 2
    WHERE created_at >= (SELECT CAST(value AS INTEGER) FROM experiment_facts WHERE key = 'rebaselined_at');
  DELETE FROM experiment_facts WHERE key = 'rebaselined_at';
  CREATE INDEX runs_generation ON runs(generation, created_at);
  `,
  // A gate decision keeps what every rule has in columns; what one rule alone keeps moves into details.
  `
  ALTER TABLE gate_decisions ADD COLUMN details TEXT NOT NULL DEFAULT '{}';
  UPDATE gate_decisions SET details = json_object(
    'orderSeed', order_seed,
    'setup', CASE WHEN json_valid(setup) THEN json(setup) ELSE setup END,
    'pGood', p_good,
    'pBad', p_bad,
    'expectedGain', expected_gain,
    'looks', CASE WHEN json_valid(looks) THEN json(looks) ELSE looks END
  );
  ALTER TABLE gate_decisions DROP COLUMN order_seed;
  ALTER TABLE gate_decisions DROP COLUMN setup;
  ALTER TABLE gate_decisions DROP COLUMN p_good;
  ALTER TABLE gate_decisions DROP COLUMN p_bad;
  ALTER TABLE gate_decisions DROP COLUMN expected_gain;
  ALTER TABLE gate_decisions DROP COLUMN looks;
  `,
  // A paid call is journaled when its reply completes, before its task's outcome, under the id its executor gave
  // it: the same call reported twice (by a worker through Redis and again with its job's result) is written once.
  // Its split says whether a train or a test run paid for it.
  `
  ALTER TABLE llm_calls ADD COLUMN call_id TEXT;
  ALTER TABLE llm_calls ADD COLUMN split TEXT;
  CREATE UNIQUE INDEX llm_calls_call_id ON llm_calls(call_id) WHERE call_id IS NOT NULL;
  `,
  // Every held-out run a gate rule asked for, by arm (the incumbent or a candidate), as it landed: a resumed gate
  // replays them, and any rule over any number of candidates keeps them in one shape. Ids and numbers only.
  `
  CREATE TABLE gate_runs (
    run_id TEXT NOT NULL,
    iteration INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    arm TEXT NOT NULL,
    task_id TEXT NOT NULL,
    trial INTEGER NOT NULL,
    reward REAL,
    PRIMARY KEY (run_id, iteration, seq)
  );
  CREATE UNIQUE INDEX gate_runs_key ON gate_runs(run_id, iteration, arm, task_id, trial);
  `,
];
