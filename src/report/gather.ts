import { existsSync } from "node:fs";
import { readQueueHealth } from "../distributed/health.ts";
import type { Repo } from "../git/repo.ts";
import { Journal } from "../journal/journal.ts";
import { angleKey, rejectedDiffKey } from "../journal/pins.ts";
import type { IterationRow, RunRow, Stores } from "../journal/stores.ts";
import { acceptanceReason } from "../verdicts.ts";
import { loopIterationOf, type ResultRow, readResults } from "../workspace/files.ts";
import type { Paths } from "../workspace/paths.ts";
import { type NightStores, readNight } from "./night.ts";
import type { ReportData, ReportGeneration, ReportIteration, ReportRun, ReportRunLink } from "./render.ts";

interface Summary {
  hypothesis?: string | null;
  changeSummary?: string | null;
  pattern?: string | null;
  commit?: string | null;
  suitePassed?: number | null;
  suiteTotal?: number | null;
  promoted?: string[];
  reasons?: string[];
}

const str = (v: unknown): string | null => (typeof v === "string" && v !== "" ? v : null);
const int = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

/** An iteration's journaled summary (learn step), each field checked: what the report and `status` read of it. */
export function summaryOf(row: Pick<IterationRow, "summary">): Summary {
  const s = (row.summary ?? {}) as Record<string, unknown>;
  return {
    hypothesis: str(s.hypothesis),
    changeSummary: str(s.changeSummary),
    pattern: str(s.pattern),
    commit: str(s.commit),
    suitePassed: int(s.suitePassed),
    suiteTotal: int(s.suiteTotal),
    promoted: Array.isArray(s.promoted) ? s.promoted.filter((p): p is string => typeof p === "string") : [],
    reasons: Array.isArray(s.reasons) ? s.reasons.map(String) : [],
  };
}

const blank = (iteration: number): ReportIteration => ({
  iteration,
  outcome: "accepted",
  valScore: null,
  hypothesis: null,
  changeSummary: null,
  pattern: null,
  reasons: [],
  suitePassed: null,
  suiteTotal: null,
  suiteAfter: null,
  commit: null,
  costUsd: { coding: 0, agent: 0 },
  durationMs: null,
  diff: null,
});

type ReportJournal = NightStores;

/** An accepted row of results.tsv as the report's iteration (the baseline is iteration 0). */
function fromResultRow(row: ResultRow): ReportIteration {
  const it = blank(loopIterationOf(row));
  it.outcome = row.iteration === 0 ? "baseline" : "accepted";
  it.valScore = row.valScore;
  it.commit = row.iteration === 0 ? null : row.commit;
  it.suitePassed = row.iteration === 0 ? null : row.evalsPassed;
  it.suiteTotal = row.iteration === 0 ? null : row.evalsTotal;
  // evals_total is the suite at gate time, before promotion; the journal's summary refines it below.
  it.suiteAfter = row.evalsTotal;
  const reason = row.extra?.reason;
  if (row.iteration > 0 && reason) it.acceptance = reason;
  return it;
}

function toReportRun(run: RunRow): ReportRun {
  return {
    id: run.id,
    status: run.status,
    state: run.state,
    stopReason: run.stopReason,
    lastError: run.lastError,
    accepted: run.accepted,
    rejected: run.rejected,
    unsealed: (run.config as { sandbox?: string } | null)?.sandbox === "none",
  };
}

/** The run's iterations as its learn steps journaled them, over the results.tsv rows they refine. */
function addIterations(runs: ReportJournal["runs"], runId: string, byIteration: Map<number, ReportIteration>) {
  for (const row of runs.iterations(runId)) {
    const s = summaryOf(row);
    const it = byIteration.get(row.iteration) ?? blank(row.iteration);
    it.outcome = row.outcome;
    it.valScore = row.valScore ?? it.valScore;
    it.hypothesis = s.hypothesis ?? null;
    it.changeSummary = s.changeSummary ?? null;
    it.pattern = s.pattern ?? null;
    it.reasons = s.reasons ?? [];
    it.commit = s.commit ?? it.commit;
    it.suitePassed = s.suitePassed ?? it.suitePassed;
    it.suiteTotal = s.suiteTotal ?? it.suiteTotal;
    if (typeof s.suiteTotal === "number") {
      it.suiteAfter = s.suiteTotal + (row.outcome === "accepted" ? (s.promoted?.length ?? 0) : 0);
    }
    byIteration.set(row.iteration, it);
  }
}

/** The gate's records of the run: rule, P(improvement), runs spent, where it stopped, and an accepted one's reason. */
function addGateRecords(journal: ReportJournal, runId: string, byIteration: Map<number, ReportIteration>): string[] {
  const gateNotes: string[] = [];
  for (const d of journal.gateRecords.gateDecisions(runId)) {
    const it = byIteration.get(d.iteration);
    const pGood = d.details.pGood;
    if (it) {
      it.gate = { rule: d.rule, pGood: typeof pGood === "number" ? pGood : null, testRuns: d.testRuns, stage: d.stage };
      const out = (d.output as { output?: Parameters<typeof acceptanceReason>[0] & { previousBest?: number | null } })
        ?.output;
      if (d.accept && out && !it.acceptance) it.acceptance = acceptanceReason(out, out.previousBest ?? null);
    }
    const notes = (d.output as { output?: { notes?: string[] } } | null)?.output?.notes;
    for (const n of notes ?? []) gateNotes.push(`iteration ${d.iteration}: ${n}`);
  }
  return gateNotes;
}

/** A line per change of the proposer's angle (a plateau restart), in iteration order. */
function angleNotes(journal: ReportJournal, runId: string, iterations: number[]): string[] {
  return [...iterations]
    .sort((a, b) => a - b)
    .flatMap((i) => {
      const angle = journal.pins.fact(angleKey(runId, i)) as { restart?: unknown; reason?: unknown } | undefined;
      return angle?.restart === true ? [`iteration ${i}: a fresh angle, ${String(angle.reason)}`] : [];
    });
}

/** Step times and spend per iteration, and each rejected candidate's diff, all of this run. */
function addTimesAndSpend(journal: ReportJournal, runId: string, byIteration: Map<number, ReportIteration>) {
  const { runs, ledger, pins } = journal;
  for (const it of byIteration.values()) {
    // The rejected candidate's diff, kept by the record step before it restored the file.
    if (it.outcome !== "rejected") continue;
    const diff = pins.fact(rejectedDiffKey(runId, it.iteration));
    if (typeof diff === "string") it.diff = diff;
  }
  const spans = new Map<number, { start: number; end: number }>();
  for (const step of runs.steps(runId)) {
    // Iteration 0 holds only the run's opening check, not the baseline's work.
    if (step.iteration === 0) continue;
    const span = spans.get(step.iteration) ?? { start: step.startedAt, end: step.finishedAt ?? step.startedAt };
    span.start = Math.min(span.start, step.startedAt);
    span.end = Math.max(span.end, step.finishedAt ?? step.startedAt);
    spans.set(step.iteration, span);
  }
  for (const [iteration, span] of spans) {
    const it = byIteration.get(iteration);
    if (it) it.durationMs = span.end - span.start;
  }
  for (const call of ledger.llmCalls(runId)) {
    const it = call.iteration === null ? undefined : byIteration.get(call.iteration);
    if (it) it.costUsd[call.role] += call.costUsd;
  }
}

/** The generations before the run's own: shown apart, never mixed into its figures. */
function earlierGenerations({ runs, gateRecords }: ReportJournal, current: number): ReportGeneration[] {
  return runs
    .generations()
    .filter((g) => g.id < current)
    .map((g) => {
      const mine = runs.runs(g.id);
      const accepted = gateRecords.generationDecisions(g.id).filter((d) => d.accept && d.runId !== "manual");
      const scores = [...accepted.map((d) => d.valScore), ...mine.map((r) => r.bestValScore)].filter(
        (v): v is number => v !== null,
      );
      return {
        generation: g.id,
        openedAt: new Date(g.openedAt).toISOString(),
        runs: mine.map((r) => r.id),
        accepted: mine.reduce((n, r) => n + r.accepted, 0),
        bestValScore: scores.length ? Math.max(...scores) : null,
      };
    });
}

/** Every run of the journal for the picker, newest first. */
export function runLinks(runs: Pick<Stores["runs"], "runs">): ReportRunLink[] {
  return runs
    .runs()
    .map((r) => ({
      id: r.id,
      status: r.status,
      generation: r.generation,
      startedAt: new Date(r.createdAt).toISOString(),
      accepted: r.accepted,
      rejected: r.rejected,
    }))
    .reverse();
}

/** The run a report shows: the given id, else the current generation's latest; null before any run. */
export function chooseRun(runs: Pick<Stores["runs"], "getRun" | "latestRun" | "currentGeneration">, id?: string) {
  if (id !== undefined) return runs.getRun(id) ?? null;
  return runs.latestRun(runs.currentGeneration()) ?? null;
}

/**
 * Reads everything one run's page shows, read-only: from results.tsv the baseline and the run's accepted
 * rows, and from the journal the run's iterations, gate records, step times, spend and the night's figures;
 * every other run is a link, earlier generations a list apart. Without a run: the baseline only.
 */
export async function gatherReport(opts: {
  paths: Paths;
  benchmark: string;
  repo: Repo;
  now: Date;
  /** Default: the current generation's latest run. */
  runId?: string;
}): Promise<ReportData> {
  const { paths, repo } = opts;
  const results = readResults(paths.results);
  const byIteration = new Map<number, ReportIteration>();
  const data: ReportData = {
    root: paths.root,
    benchmark: opts.benchmark,
    generatedAt: opts.now.toISOString(),
    run: null,
    iterations: [],
    baselineSpendUsd: null,
    queue: readQueueHealth(paths.queueHealth),
    holdout: null,
    gateNotes: [],
    earlierGenerations: [],
  };
  let mine: (row: ResultRow) => boolean = () => true;
  if (existsSync(paths.journal)) {
    const journal = Journal.open(paths.journal, { readonly: true });
    try {
      const baselineSpend = journal.pins.fact("baseline_spend_usd");
      if (typeof baselineSpend === "number") data.baselineSpendUsd = baselineSpend;
      data.runs = runLinks(journal.runs);
      const run = chooseRun(journal.runs, opts.runId);
      // Without a run (an adopted history, only a baseline) every row is shown, as there is nothing to tell apart.
      if (run) {
        // Iteration numbers are unique across runs: this run's rows are those of its iterations.
        const own = new Set([0, ...journal.runs.steps(run.id).map((s) => s.iteration)]);
        mine = (row) => own.has(loopIterationOf(row));
        for (const row of results.filter(mine)) byIteration.set(loopIterationOf(row), fromResultRow(row));
        addIterations(journal.runs, run.id, byIteration);
        data.gateNotes = addGateRecords(journal, run.id, byIteration);
        data.angleNotes = angleNotes(journal, run.id, [...byIteration.keys()]);
        addTimesAndSpend(journal, run.id, byIteration);
        data.run = toReportRun(run);
        data.night = readNight(journal, run);
        data.holdout = data.night.holdout;
        data.bestValScore = data.night.bestValScore;
        data.earlierGenerations = earlierGenerations(journal, run.generation);
      }
    } finally {
      journal.close();
    }
  }
  if (byIteration.size === 0)
    for (const row of results.filter(mine)) byIteration.set(loopIterationOf(row), fromResultRow(row));
  data.iterations = [...byIteration.values()].sort((a, b) => a.iteration - b.iteration);
  // A rejected iteration leaves the suite as it was.
  let size: number | null = null;
  for (const it of data.iterations) {
    if (it.suiteAfter === null) it.suiteAfter = size;
    size = it.suiteAfter;
  }
  for (const it of data.iterations) {
    if (it.outcome !== "accepted" || !it.commit) continue;
    try {
      it.diff = (await repo.diffOfCommit(it.commit, paths.agentRel)).trim() || null;
    } catch {
      // A commit that is gone (rewritten history, stand-in ids) just has no diff to show.
      it.diff = null;
    }
  }
  return data;
}
