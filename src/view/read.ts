/**
 * What `view` shows, read from the journal's stores (opened read-only) and the train traces on disk: runs,
 * their rounds, each round's candidate(s) with the gate's evidence, and train transcripts. Held-out results
 * leave here as counts and means only: never a test task's id, input or output.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { traceDirName } from "../benchmark/traces.ts";
import type { Repo } from "../git/repo.ts";
import { rejectedDiffKey } from "../journal/pins.ts";
import type { GateDecisionRow, IterationRow, RunRow } from "../journal/stores.ts";
import { type Night, type NightStores, readNight } from "../report/night.ts";
import type { Paths } from "../workspace/paths.ts";

export type ViewStores = NightStores;

/**
 * One candidate of a round. A rule that races several candidates journals them in the decision's details
 * as `candidates: [{ id, hypothesis, diff, stage, pGood, valScore, won, why }]`; a round of today's rules
 * has one, built from the iteration and its diff.
 */
export interface ViewCandidate {
  id: string;
  hypothesis: string | null;
  changeSummary: string | null;
  diff: string | null;
  /** Where the gate stopped for it, and how sure it was. */
  stage: string | null;
  pGood: number | null;
  valScore: number | null;
  won: boolean;
  why: string | null;
  /** Its diff was kept from the page: it names or copies held-out tasks. */
  withheld?: boolean;
}

export interface GateEvidence {
  rule: string;
  accept: boolean | null;
  stage: string | null;
  testRuns: number;
  infraErrors: number;
  valScore: number | null;
  pGood: number | null;
  pBad: number | null;
  reason: string | null;
  looks: { fraction: number; tasksRun: number; pGood: number; pBad: number }[];
  /** The first pass over the held-out split: how many runs, and their mean (val_score's definition). */
  firstPass: { runs: number; mean: number | null };
  /** The paired re-runs, counted: never which tasks. */
  pairs: { count: number; candidateAhead: number; incumbentAhead: number; even: number };
  improvement: { diff: number; low: number; high: number } | null;
}

export interface ViewRound {
  iteration: number;
  outcome: string;
  valScore: number | null;
  bestBefore: number | null;
  reasons: string[];
  candidates: ViewCandidate[];
  gate: GateEvidence | null;
  spend: { codingUsd: number; agentUsd: number };
}

const str = (v: unknown): string | null => (typeof v === "string" && v !== "" ? v : null);
const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

export function gateEvidence(
  d: GateDecisionRow,
  results: { kind: string; reward: number | null; incumbentReward: number | null }[],
): GateEvidence {
  const looks = (d.details.looks ?? {}) as { looks?: GateEvidence["looks"]; reason?: string };
  const first = results.filter((r) => r.kind === "candidate" && r.reward !== null).map((r) => r.reward as number);
  const pairs = results.filter((r) => r.kind === "pair");
  const ahead = (a: number | null, b: number | null) => (a ?? 0) > (b ?? 0);
  const improvement = d.details.improvement as GateEvidence["improvement"] | undefined;
  return {
    rule: d.rule,
    accept: d.accept,
    stage: d.stage,
    testRuns: d.testRuns,
    infraErrors: d.infraErrors,
    valScore: d.valScore,
    pGood: num(d.details.pGood),
    pBad: num(d.details.pBad),
    reason: str(looks.reason),
    looks: (looks.looks ?? []).map((l) => ({
      fraction: l.fraction,
      tasksRun: l.tasksRun,
      pGood: l.pGood,
      pBad: l.pBad,
    })),
    firstPass: { runs: first.length, mean: first.length ? first.reduce((a, b) => a + b, 0) / first.length : null },
    pairs: {
      count: pairs.length,
      candidateAhead: pairs.filter((p) => ahead(p.reward, p.incumbentReward)).length,
      incumbentAhead: pairs.filter((p) => ahead(p.incumbentReward, p.reward)).length,
      even: pairs.filter((p) => (p.reward ?? 0) === (p.incumbentReward ?? 0)).length,
    },
    improvement: improvement && typeof improvement.diff === "number" ? improvement : null,
  };
}

function raced(d: GateDecisionRow | undefined): ViewCandidate[] | null {
  const list = d?.details.candidates;
  if (!Array.isArray(list) || list.length === 0) return null;
  return list.map((c: Record<string, unknown>, i) => ({
    id: str(c.id) ?? `candidate ${i + 1}`,
    hypothesis: str(c.hypothesis),
    changeSummary: str(c.changeSummary),
    diff: str(c.diff),
    stage: str(c.stage),
    pGood: num(c.pGood),
    valScore: num(c.valScore),
    won: c.won === true,
    why: str(c.why),
  }));
}

async function diffOf(stores: ViewStores, repo: Repo | null, paths: Paths, runId: string, it: IterationRow) {
  const s = (it.summary ?? {}) as Record<string, unknown>;
  if (it.outcome === "rejected") return str(stores.pins.fact(rejectedDiffKey(runId, it.iteration)));
  const commit = str(s.commit);
  if (it.outcome !== "accepted" || !commit || !repo) return null;
  try {
    return (await repo.diffOfCommit(commit, paths.agentRel)).trim() || null;
  } catch {
    return null;
  }
}

/** Whether a text may be shown: false when it names a held-out task or copies its input. */
export type HeldOutGuard = (text: string) => boolean;

export const WITHHELD = "[withheld: it names or copies held-out tasks]";

/** A candidate's free texts (the coding agent's words, its diff) as they may be shown. */
function guarded(c: ViewCandidate, safe: HeldOutGuard): ViewCandidate {
  const text = (t: string | null) => (t === null || safe(t) ? t : WITHHELD);
  const diffSafe = c.diff === null || safe(c.diff);
  return {
    ...c,
    hypothesis: text(c.hypothesis),
    changeSummary: text(c.changeSummary),
    why: text(c.why),
    diff: diffSafe ? c.diff : null,
    ...(diffSafe ? {} : { withheld: true }),
  };
}

/** A run's rounds, oldest first, each with its candidates, gate evidence and spend. */
export async function readRounds(
  stores: ViewStores,
  repo: Repo | null,
  paths: Paths,
  runId: string,
  safe: HeldOutGuard,
): Promise<ViewRound[]> {
  const decisions = new Map(stores.gateRecords.gateDecisions(runId).map((d) => [d.iteration, d]));
  const calls = stores.ledger.llmCalls(runId);
  const rounds: ViewRound[] = [];
  for (const it of stores.runs.iterations(runId)) {
    const s = (it.summary ?? {}) as Record<string, unknown>;
    const d = decisions.get(it.iteration);
    const single: ViewCandidate = {
      id: "candidate",
      hypothesis: str(s.hypothesis),
      changeSummary: str(s.changeSummary),
      diff: await diffOf(stores, repo, paths, runId, it),
      stage: d?.stage ?? null,
      pGood: num(d?.details.pGood),
      valScore: it.valScore,
      won: it.outcome === "accepted",
      why: null,
    };
    const mine = calls.filter((c) => c.iteration === it.iteration);
    rounds.push({
      iteration: it.iteration,
      outcome: it.outcome,
      valScore: it.valScore,
      bestBefore: it.bestBefore,
      reasons: Array.isArray(s.reasons) ? s.reasons.map(String) : [],
      candidates: (raced(d) ?? [single]).map((c) => guarded(c, safe)),
      gate: d ? gateEvidence(d, stores.gateRecords.gateResults(runId, it.iteration)) : null,
      spend: {
        codingUsd: mine.filter((c) => c.role === "coding").reduce((n, c) => n + c.costUsd, 0),
        agentUsd: mine.filter((c) => c.role === "agent").reduce((n, c) => n + c.costUsd, 0),
      },
    });
  }
  return rounds;
}

export interface ViewRun {
  run: RunRow;
  night: Night;
}

export function readRuns(stores: ViewStores): ViewRun[] {
  return stores.runs
    .runs()
    .reverse()
    .map((run) => ({ run, night: readNight(stores, run) }));
}

// ---- train traces

export type TraceSet = "latest" | "baseline";

/** The train tasks with a trace in a set, as their folder names. */
export function traceIds(paths: Paths, set: TraceSet, train: ReadonlySet<string>): string[] {
  const dir = set === "latest" ? paths.tracesLatest : paths.tracesBaseline;
  if (!existsSync(dir)) return [];
  const folders = new Set(readdirSync(dir));
  // Only folders of train tasks: a stray folder (another split's, a command's own) is never served.
  return [...train].filter((id) => folders.has(traceDirName(id))).sort();
}

export interface TraceRead {
  trace: { events?: unknown[]; answer?: unknown; error?: unknown; task?: unknown } | null;
  result: { reward?: number | null; error?: string | null; duration_ms?: number } | null;
}

export function readTrace(paths: Paths, set: TraceSet, taskId: string): TraceRead {
  const dir = join(set === "latest" ? paths.tracesLatest : paths.tracesBaseline, traceDirName(taskId));
  const json = (file: string) => {
    try {
      return JSON.parse(readFileSync(join(dir, file), "utf8"));
    } catch {
      return null;
    }
  };
  return { trace: json("trace.json"), result: json("result.json") };
}
