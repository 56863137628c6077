import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { describeSeal } from "../benchmark/sealed/sandbox.ts";
import type { Config } from "../config/schema.ts";
import { lockHolder, readLock } from "../daemon/lock.ts";
import { limitsOf } from "../daemon/start.ts";
import { type QueueHealth, queueLines, readQueueHealth } from "../distributed/health.ts";
import { classifyFault, UserError } from "../errors.ts";
import { bestSoFar } from "../gate/records.ts";
import { Journal } from "../journal/journal.ts";
import { FINISHED_STATUSES } from "../journal/runs.ts";
import type { ProgressRow, RunRow } from "../journal/stores.ts";
import { summaryOf } from "../report/gather.ts";
import { readNight } from "../report/night.ts";
import { bestValScore } from "../scoring.ts";
import { type RejectedSteering, rejectedSteeringKey } from "../steering/validate.ts";
import { type CandidateProgress, raceLine, raceProgress } from "../steps/race.ts";
import type { HoldoutSummary } from "../verdicts.ts";
import { readResults } from "../workspace/files.ts";
import { paths, STEERING_FILES } from "../workspace/paths.ts";
import type { GlobalOptions } from "./experiment.ts";

export interface StatusReport {
  run: string | null;
  /** The score history the run belongs to (a rebaseline opens the next); null before the journal. */
  generation?: number | null;
  status: string | null;
  state: string | null;
  iteration: number | null;
  step: string | null;
  stepStatus: string | null;
  secondsInStep: number | null;
  bestValScore: number | null;
  baselineValScore: number | null;
  /** The accepted agent's val_score (the last acceptance so far, else the baseline's). */
  valScore?: number | null;
  /** The sealed holdout's verdict in words, or why there is none yet. */
  holdout?: HoldoutSummary | null;
  /** When the run ends by `deadline` or `max_hours` (ISO-8601), and the seconds left until then. */
  endsAt?: string | null;
  secondsLeft?: number | null;
  accepted: number;
  rejected: number;
  noChange: number;
  spendUsd: { total: number; coding: number; agent: number };
  budgetUsd: number | null;
  /** How the agent under test is sealed in this run (null before a run). */
  sandbox: "bwrap" | "none" | null;
  /** Sealed: who the agent runs as, and its limits with the mechanism that enforces them. */
  seal?: { who: string; limits: string } | null;
  lastError: string | null;
  stopReason: string | null;
  daemonPid: number | null;
  /** Why a paused run waits: an outage passes by itself, anything else needs the operator. */
  pausedFor?: "outage" | "operator" | null;
  /** The benchmark or gate run in flight: counts only. */
  progress: { split: string; done: number; total: number; etaS: number | null } | null;
  /** A race's candidates in the iteration in flight (config `candidates` > 1): where each stands. */
  candidates?: CandidateProgress[] | null;
  /** The last finished iteration's verdict. */
  lastIteration: {
    iteration: number;
    outcome: string;
    valScore: number | null;
    bestBefore: number | null;
    /** Why a rejected change was rejected (the gate's reasons), null otherwise. */
    reason?: string | null;
  } | null;
  /** What `prepare`'s baseline run cost (null: not journaled). */
  baselineSpendUsd: number | null;
  /** Workers and the task queue (executor: bullmq), as the daemon last wrote them. */
  queue: QueueHealth | null;
  /** Steering edits the harness would not use (a config that does not load, an empty PROGRAM.md): not committed. */
  steeringRejected?: RejectedSteering[];
}

/** Reads only: answers at once from the journal, also while a daemon is writing to it. */
export function readStatus(dir: string, now = Date.now(), options: { inProcess?: boolean } = {}): StatusReport {
  const p = paths(resolve(dir));
  const rows = existsSync(p.results) ? safeResults(p.results) : [];
  const empty: StatusReport = {
    run: null,
    generation: null,
    status: null,
    state: null,
    iteration: null,
    step: null,
    stepStatus: null,
    secondsInStep: null,
    bestValScore: bestValScore(rows),
    baselineValScore: rows.find((r) => r.iteration === 0)?.valScore ?? null,
    accepted: 0,
    rejected: 0,
    noChange: 0,
    spendUsd: { total: 0, coding: 0, agent: 0 },
    budgetUsd: null,
    sandbox: null,
    lastError: null,
    stopReason: null,
    // The live view reads from inside the daemon's own process, which lockHolder leaves out.
    daemonPid:
      lockHolder(p.lock)?.pid ?? (options.inProcess && readLock(p.lock)?.pid === process.pid ? process.pid : null),
    progress: null,
    lastIteration: null,
    baselineSpendUsd: null,
    queue: readQueueHealth(p.queueHealth),
    steeringRejected: [],
  };
  if (!existsSync(p.journal)) return empty;
  const journal = Journal.open(p.journal, { readonly: true });
  try {
    // A daemon may be creating the journal right now: no schema yet means no run yet.
    if (journal.schemaVersion() === 0) return empty;
    const { runs, ledger, pins } = journal;
    const baseline = pins.fact("baseline_spend_usd");
    empty.steeringRejected = STEERING_FILES.map(
      (f) => pins.fact(rejectedSteeringKey(f)) as RejectedSteering | null,
    ).filter((r): r is RejectedSteering => Boolean(r));
    empty.baselineSpendUsd = typeof baseline === "number" ? baseline : null;
    // The current generation only: a run before a rebaseline was scored by the old scorer.
    empty.generation = runs.currentGeneration();
    empty.bestValScore = bestSoFar(journal) ?? empty.bestValScore;
    const run: RunRow | undefined = runs.unfinishedRun() ?? runs.latestRun(empty.generation);
    if (!run) return empty;
    const step = runs.currentStep(run.id);
    const spend = ledger.spend(run.id);
    const iterations = runs.iterations(run.id);
    const config = run.config as (Partial<Config> & { sandbox?: "bwrap" | "none" }) | null;
    const last = iterations.at(-1);
    const night = readNight(journal, run);
    // A run row from before a key existed holds no value for it: no end from that key.
    const limit = run.config ? limitsOf(run.config as Config, run.createdAt).deadline : null;
    const ends = limit !== null && Number.isFinite(limit) ? limit : null;
    return {
      ...empty,
      valScore: night.valScore,
      holdout: night.holdout,
      endsAt: ends === null ? null : new Date(ends).toISOString(),
      // A finished run has no time left to show.
      secondsLeft:
        ends === null || FINISHED_STATUSES.includes(run.status) ? null : Math.max(0, Math.round((ends - now) / 1000)),
      run: run.id,
      status: run.status,
      state: run.state,
      iteration: run.iteration,
      step: step?.step ?? null,
      stepStatus: step?.status ?? null,
      // Only a live daemon is "in" a step; a stopped run's step is merely where it will resume.
      secondsInStep:
        step && step.status === "started" && empty.daemonPid !== null
          ? Math.max(0, Math.round((now - step.startedAt) / 1000))
          : null,
      bestValScore: empty.bestValScore,
      accepted: run.accepted,
      rejected: run.rejected,
      noChange: iterations.filter((i) => i.outcome === "no_change").length,
      spendUsd: { total: spend.totalUsd, coding: spend.byRole.coding, agent: spend.byRole.agent },
      budgetUsd: config?.budget_usd ?? null,
      sandbox: config?.sandbox ?? null,
      seal: config?.sandbox === "bwrap" ? describeSeal(config) : null,
      lastError: run.lastError,
      pausedFor: pausedFor(run),
      stopReason: run.stopReason,
      progress: progressOf(runs.progress(run.id), step, empty.daemonPid !== null),
      // Only while the round is in flight: before its edit starts, the candidates are not there yet.
      candidates: ["edit", "gate", "record"].includes(step?.step ?? "")
        ? raceProgress(journal, run.id, run.iteration, config?.candidates ?? 1)
        : null,
      lastIteration: last
        ? {
            iteration: last.iteration,
            outcome: last.outcome,
            valScore: last.valScore,
            bestBefore: last.bestBefore,
            reason: last.outcome === "rejected" ? summaryOf(last).reasons?.join("; ") || null : null,
          }
        : null,
    };
  } catch (error) {
    // A damaged page surfaces on the first query that reads it: JOURNAL_CORRUPT with the file, never "a bug".
    throw classifyFault(error, p.journal) ?? error;
  } finally {
    journal.close();
  }
}

function pausedFor(run: RunRow): "outage" | "operator" | null {
  if (run.status !== "paused") return null;
  const kind = (run.snapshot as { context?: { lastError?: { kind?: string } | null } } | null)?.context?.lastError
    ?.kind;
  return kind === undefined || kind === "resumable" ? "outage" : "operator";
}

/** Progress belongs to the step in flight only: journaled since it started, while a daemon runs it. */
function progressOf(
  row: ProgressRow | undefined,
  step: { status: string; startedAt: number } | undefined,
  live: boolean,
): StatusReport["progress"] {
  if (!row || !step || step.status !== "started" || !live || (row.updatedAt ?? 0) < step.startedAt) return null;
  return { split: row.split, done: row.done, total: row.total, etaS: row.etaS };
}

function safeResults(file: string) {
  try {
    return readResults(file);
  } catch {
    return [];
  }
}

// An agent's calls cost fractions of a cent each: under a dollar, cents alone would show nothing spent.
const money = (usd: number) => `$${usd.toFixed(usd > 0 && usd < 1 ? 4 : 2)}`;

export function formatDuration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${s}s` : `${s}s`;
}

/**
 * What continues a run with no daemon, and what pm2 does by itself: it restarts a daemon that crashed or
 * was killed, and one that paused on an outage (exit 75), but never one stopped with `pm2 stop`.
 */
const NEXT: Record<string, string> = {
  stopped:
    "`auto-harness resume` continues from this step; under pm2, `npx pm2 start auto-harness` (pm2 does not restart a stopped daemon)",
  running:
    "the daemon died mid-step; pm2, if it runs it, restarts it by itself; otherwise `auto-harness resume` continues from this step",
  paused:
    "paused on an outage; pm2, if it runs it, retries with backoff; otherwise `auto-harness resume` continues from this step",
  failed: "fix the last error, then `auto-harness run --new` (or `daemon --new` under pm2) starts a new run",
  // Paused for the operator (a refused key, a damaged file): exit 2, which pm2 does not restart.
  "paused-operator":
    "fix the last error, then `auto-harness resume` (under pm2, `npx pm2 start auto-harness`) continues from this step; pm2 does not retry it by itself",
};

/** "train 12/40 [######..............] 30%  eta 2m 10s" */
export function progressLine(p: NonNullable<StatusReport["progress"]>, width = 20): string {
  const share = p.done / Math.max(1, p.total);
  const filled = Math.round(share * width);
  const eta = p.etaS === null || p.done >= p.total ? "" : `  eta ${formatDuration(p.etaS)}`;
  return `${p.split} ${p.done}/${p.total} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${Math.round(share * 100)}%${eta}`;
}

export function verdictLine(i: NonNullable<StatusReport["lastIteration"]>): string {
  const score = i.valScore === null ? "" : ` val_score ${i.valScore.toFixed(4)}`;
  const best = i.bestBefore === null ? "" : ` (best before ${i.bestBefore.toFixed(4)})`;
  const what = i.outcome === "no_change" ? "no change, gate skipped" : i.outcome;
  return `iteration ${i.iteration} ${what}${score}${i.outcome === "no_change" ? "" : best}`;
}

export function formatStatus(s: StatusReport, now = Date.now()): string {
  if (!s.run) {
    const best = s.bestValScore === null ? "" : ` (baseline val_score ${s.bestValScore.toFixed(4)})`;
    const cost = s.baselineSpendUsd === null ? "" : `; the baseline cost ${money(s.baselineSpendUsd)}`;
    return `no run yet${best}${cost}; start one with \`auto-harness run\`\n`;
  }
  const daemon = s.daemonPid ? `daemon pid ${s.daemonPid}` : "no daemon running";
  const where =
    s.stepStatus === "started" && s.secondsInStep !== null
      ? `${s.state}, iteration ${s.iteration}, ${formatDuration(s.secondsInStep)} in step`
      : `${s.state}, iteration ${s.iteration}`;
  const budget = s.budgetUsd === null ? "" : ` of ${money(s.budgetUsd)}`;
  const lines = [
    ["run", `${s.run}  ${s.status}  (${daemon})`],
    ["state", where],
    [
      "best",
      `val_score ${s.bestValScore?.toFixed(4) ?? "n/a"}${s.baselineValScore === null ? "" : ` (baseline ${s.baselineValScore.toFixed(4)})`}`,
    ],
    ...(s.valScore === undefined || s.valScore === null
      ? []
      : [["val_score", `${s.valScore.toFixed(4)} (the accepted agent's, on the test split)`]]),
    ["changes", `${s.accepted} accepted, ${s.rejected} rejected, ${s.noChange} unchanged`],
    [
      "spend",
      `${money(s.spendUsd.total)}${budget}  (coding agent ${money(s.spendUsd.coding)}, agent under test ${money(s.spendUsd.agent)})`,
    ],
  ];
  if (s.generation && s.generation > 1) {
    lines.push([
      "generation",
      `${s.generation}: a rebaseline started the score history over; the report lists earlier runs`,
    ]);
  }
  if (s.holdout) lines.push(["holdout", s.holdout.line]);
  if (s.endsAt) {
    const left = s.secondsLeft === null || s.secondsLeft === undefined ? "" : `${formatDuration(s.secondsLeft)} left, `;
    lines.push(["time", `${left}ends ${s.endsAt} (deadline / max_hours)`]);
  }
  if (s.progress) lines.push(["progress", progressLine(s.progress)]);
  if (s.candidates?.length) lines.push(["candidates", raceLine(s.candidates)]);
  if (s.lastIteration) lines.push(["last gate", verdictLine(s.lastIteration)]);
  if (s.lastIteration?.reason) lines.push(["why", s.lastIteration.reason]);
  if (s.baselineSpendUsd !== null)
    lines.push(["baseline", `cost ${money(s.baselineSpendUsd)} (prepare, not in the run's spend)`]);
  if (s.queue) lines.push(...queueLines(s.queue, now));
  if (s.sandbox === "none") lines.push(["sandbox", "none: UNSEALED, the agent under test runs without the sandbox"]);
  if (s.seal) lines.push(["sandbox", s.seal.who], ["limits", s.seal.limits]);
  for (const r of s.steeringRejected ?? []) {
    lines.push([
      "steering",
      `${r.file} edit rejected at ${r.at}, not committed: ${r.problems.join("; ")}; the run uses the last accepted version; your text is in ${r.keptAt}: fix it and save it again`,
    ]);
  }
  if (s.stopReason) lines.push(["stopped", s.stopReason]);
  lines.push(["last error", s.lastError ?? "none"]);
  if (!s.daemonPid) {
    const next = NEXT[s.status === "paused" && s.pausedFor === "operator" ? "paused-operator" : (s.status ?? "")];
    if (next) lines.push(["next", next]);
  }
  return `${lines.map(([k, v]) => `${(k as string).padEnd(11)}${v}`).join("\n")}\n`;
}

export async function statusCommand(
  options: GlobalOptions & { json?: boolean; watch?: boolean; intervalMs?: number; stdout?: NodeJS.WritableStream },
): Promise<number> {
  const out = options.stdout ?? process.stdout;
  const dir = options.dir ?? process.cwd();
  if (!existsSync(dir)) throw new UserError("USAGE", `${resolve(dir)} does not exist; pass --dir <experiment>`);
  if (
    !existsSync(paths(resolve(dir)).workspace) &&
    !existsSync(resolve(dir, options.config ?? "experiment_config.yaml"))
  ) {
    throw new UserError(
      "RUN_STATE",
      `${resolve(dir)} holds no experiment (no experiment_config.yaml, no workspace/); pass --dir <experiment>`,
    );
  }
  const render = () => {
    const report = readStatus(dir);
    return options.json ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report);
  };
  if (!options.watch) {
    out.write(render());
    return 0;
  }
  // Refresh in place until interrupted.
  await new Promise<void>((resolveWatch) => {
    const tick = () => out.write(`\x1b[H\x1b[2J${new Date().toISOString()}\n${render()}`);
    tick();
    const timer = setInterval(tick, options.intervalMs ?? 2000);
    process.once("SIGINT", () => {
      clearInterval(timer);
      resolveWatch();
    });
  });
  return 0;
}
