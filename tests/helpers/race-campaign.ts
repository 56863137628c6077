/**
 * The fault campaign inside a race of several candidates: the real CLI and daemon, git worktrees per candidate,
 * the stochastic benchmark (known truth) and the test LLM server playing each candidate's coding session. A fault
 * lands at a race's own crash points (a candidate edited, the candidates screened, a held-out run landed), and
 * beyond DESIGN §4's invariants the run must leave no candidate copy behind and have journaled every reply the
 * endpoint served, to the call. Free of vitest: the suite runs a slice, `npm run bench:crash` every fault.
 */
import { execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestLlmServer } from "../../dev/llm-server/llm-server.ts";
import type { CrashPoint } from "../../src/crash-point.ts";
import { Journal } from "../../src/journal/journal.ts";
import { REPO_ROOT, spawnCli } from "./experiment.ts";
import type { Subject } from "./fault-campaign.ts";
import type { Plan } from "./race-coding-model.ts";
import { stochasticAgent } from "./stochastic.ts";

export const RACE_POINTS = [
  "race:candidate-edited",
  "gate:screened",
  "gate:run-landed",
] as const satisfies CrashPoint[];
export const RACE_CANDIDATES = 2;

const CLI = join(REPO_ROOT, "bin", "auto-harness.js");
const TASKS = join(REPO_ROOT, "benchmarks", "stochastic", "tasks.jsonl");
const SCORER = join(REPO_ROOT, "benchmarks", "stochastic", "scorer.ts");

/** c2 holds a real fix, c1 only changes its noise: the race has a winner to record. */
export const RACE_PLAN: Plan = (s) =>
  s.candidate === "c2" ? { skills: ["alpha", "delta"], variant: "fix-c2" } : { variant: `neutral-${s.candidate}` };

const git = (dir: string, ...a: string[]) => execFileSync("git", a, { cwd: dir, encoding: "utf8" });

/** What the campaign's races run with: two candidates, one round, room in the bank for a first-round race. */
export const RACE_SETTINGS = { candidates: RACE_CANDIDATES, max_iterations: 1, gate_bank_slack: 8 };

/** A prepared stochastic experiment (with `settings` added to its config), to be copied for each scenario. */
export async function prepareRaceExperiment(
  server: TestLlmServer,
  settings: Record<string, unknown> = RACE_SETTINGS,
): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "race-prepared-"));
  mkdirSync(join(dir, "agent"), { recursive: true });
  writeFileSync(join(dir, "agent", "agent.ts"), stochasticAgent({ variant: "v0" }));
  writeFileSync(
    join(dir, "experiment_config.yaml"),
    [
      "benchmark: local",
      `local: { tasks: ${JSON.stringify(TASKS)}, scorer: ${JSON.stringify(SCORER)} }`,
      "max_concurrency: 8",
      "seed: 7",
      "sandbox: none",
      "patience: 10",
      "coding_model: claude-opus-4-6",
      ...Object.entries(settings).map(([k, v]) => `${k}: ${JSON.stringify(v)}`),
      "",
    ].join("\n"),
  );
  const prep = spawn(process.execPath, [CLI, "prepare", "--dir", dir], {
    env: { ...process.env, ANTHROPIC_BASE_URL: server.url, ANTHROPIC_API_KEY: "test-key" },
    stdio: "ignore",
  });
  const code = await new Promise((r) => prep.on("exit", r));
  if (code !== 0) throw new Error(`prepare of the race experiment exited ${code}`);
  return dir;
}

const messages = (server: TestLlmServer) => server.served.filter((r) => r.path === "/v1/messages").length;

/** Coding replies in the journal, over every run. */
function journaledReplies(dir: string): number {
  const journal = Journal.open(join(dir, "workspace", "journal.sqlite"), { readonly: true });
  try {
    return journal.runs.runs().reduce((n, run) => n + journal.ledger.llmCalls(run.id).length, 0);
  } finally {
    journal.close();
  }
}

/** The campaign's subject for races: copies of `prepared`, daemons of the real CLI talking to `server`. */
export function raceSubject(prepared: string, server: TestLlmServer): Subject {
  let servedBefore = 0;
  return {
    iterations: 1,
    make: (root) => {
      cpSync(prepared, root, { recursive: true });
      servedBefore = messages(server);
      return root;
    },
    daemon: (dir, env) =>
      spawnCli(
        ["daemon", "--dir", dir],
        { ANTHROPIC_BASE_URL: server.url, ANTHROPIC_API_KEY: "test-key", LOG_LEVEL: "warn", ...env },
        CLI,
      ),
    check: (dir, fault) => {
      const out: string[] = [];
      if (existsSync(join(dir, "workspace", "candidates"))) out.push("a candidate's copy was left in the workspace");
      const trees = git(dir, "worktree", "list").trim().split("\n").length;
      if (trees !== 1) out.push(`${trees - 1} candidate worktree(s) left registered with git`);
      const served = messages(server) - servedBefore;
      const journaled = journaledReplies(dir);
      // A reply written to a daemon SIGKILLed before it read it is paid and lost: no journal can win that race;
      // nor can one paid while the journal cannot be written (a full or read-only disk). At most one such reply
      // per candidate session can be on its way.
      const lossy = fault.firstEnd === "SIGKILL" || fault.disk === true;
      const lost = served - journaled;
      if (lost < 0 || lost > (lossy ? RACE_CANDIDATES : 0))
        out.push(`the endpoint served ${served} replies and the journal counts ${journaled}`);
      return out;
    },
  };
}
