import { existsSync } from "node:fs";
import { readQueueHealth } from "../distributed/health.ts";
import { holdoutLine, holdoutOf } from "../gate/holdout.ts";
import { bestSoFar } from "../gate/records.ts";
import type { Repo } from "../git/repo.ts";
import { Journal } from "../journal/journal.ts";
import { pinnedSplit, rejectedDiffKey } from "../journal/pins.ts";
import type { IterationRow, Stores } from "../journal/stores.ts";
import { loopIterationOf, readResults } from "../workspace/files.ts";
import type { Paths } from "../workspace/paths.ts";
import type { ReportData, ReportGeneration, ReportIteration, ReportRun } from "./render.ts";

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

function summaryOf(row: IterationRow): Summary {
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

type ReportJournal = Pick<Stores, "runs" | "ledger" | "pins" | "gateRecords">;

/** What the journal adds: the current generation's latest run, its iterations, gate notes, step times, spend. */
function fromJournal(journal: ReportJournal, byIteration: Map<number, ReportIteration>) {
  const { runs, ledger, pins, gateRecords } = journal;
  const generation = runs.currentGeneration();
  const gateNotes: string[] = [];
  const latest = runs.latestRun(generation);
  if (!latest) return { run: null, holdout: null, gateNotes };
  const run: ReportRun = {
    id: latest.id,
    status: latest.status,
    state: latest.state,
    stopReason: latest.stopReason,
    lastError: latest.lastError,
    accepted: latest.accepted,
    rejected: latest.rejected,
    unsealed: (latest.config as { sandbox?: string } | null)?.sandbox === "none",
  };
  for (const row of runs.iterations(latest.id)) {
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
  for (const it of byIteration.values()) {
    // The rejected candidate's diff, kept by the record step before it restored the file.
    if (it.outcome !== "rejected") continue;
    const diff = pins.fact(rejectedDiffKey(latest.id, it.iteration));
    if (typeof diff === "string") it.diff = diff;
  }
  for (const d of gateRecords.gateDecisions(latest.id)) {
    const it = byIteration.get(d.iteration);
    const pGood = d.details.pGood;
    if (it)
      it.gate = { rule: d.rule, pGood: typeof pGood === "number" ? pGood : null, testRuns: d.testRuns, stage: d.stage };
    const out = (d.output as { output?: { notes?: string[] } } | null)?.output;
    for (const n of out?.notes ?? []) gateNotes.push(`iteration ${d.iteration}: ${n}`);
  }
  const h = holdoutOf(journal, latest.id);
  const split = pinnedSplit(pins);
  const holdout = h
    ? { line: holdoutLine(h), scored: true }
    : split && split.holdout.length > 0
      ? { line: `${split.holdout.length} task(s) sealed away; scored once, at the end of the run`, scored: false }
      : {
          line: "none sealed (holdout_fraction is 0, or the benchmark has fewer than 60 tasks): every score here was seen by the gate",
          scored: false,
        };
  const spans = new Map<number, { start: number; end: number }>();
  for (const step of runs.steps(latest.id)) {
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
  for (const call of ledger.llmCalls(latest.id)) {
    const it = call.iteration === null ? undefined : byIteration.get(call.iteration);
    if (it) it.costUsd[call.role] += call.costUsd;
  }
  return { run, holdout, gateNotes };
}

/** The generations before the current one: shown apart, never mixed into the current figures. */
function earlierGenerations({ runs, gateRecords }: ReportJournal): ReportGeneration[] {
  const current = runs.currentGeneration();
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

/**
 * Reads everything the report shows: results.tsv (every accepted row of the current generation), and from
 * the journal the best score, the latest run's iterations, step times and LLM spend, and the earlier
 * generations apart. Read-only.
 */
export async function gatherReport(opts: {
  paths: Paths;
  benchmark: string;
  repo: Repo;
  now: Date;
}): Promise<ReportData> {
  const { paths, repo } = opts;
  const results = readResults(paths.results);
  const byIteration = new Map<number, ReportIteration>();

  for (const row of results) {
    const it = blank(loopIterationOf(row));
    it.outcome = row.iteration === 0 ? "baseline" : "accepted";
    it.valScore = row.valScore;
    it.commit = row.iteration === 0 ? null : row.commit;
    it.suitePassed = row.iteration === 0 ? null : row.evalsPassed;
    it.suiteTotal = row.iteration === 0 ? null : row.evalsTotal;
    // evals_total is the suite at gate time, before promotion; the journal's summary refines it below.
    it.suiteAfter = row.evalsTotal;
    byIteration.set(loopIterationOf(row), it);
  }

  let fromRun: ReturnType<typeof fromJournal> = { run: null, holdout: null, gateNotes: [] };
  let baselineSpendUsd: number | null = null;
  let bestValScore: number | null = null;
  let generations: ReportGeneration[] = [];
  if (existsSync(paths.journal)) {
    const journal = Journal.open(paths.journal, { readonly: true });
    try {
      const baselineSpend = journal.pins.fact("baseline_spend_usd");
      if (typeof baselineSpend === "number") baselineSpendUsd = baselineSpend;
      bestValScore = bestSoFar(journal);
      fromRun = fromJournal(journal, byIteration);
      generations = earlierGenerations(journal);
    } finally {
      journal.close();
    }
  }

  const iterations = [...byIteration.values()].sort((a, b) => a.iteration - b.iteration);
  // A rejected iteration leaves the suite as it was.
  let size: number | null = null;
  for (const it of iterations) {
    if (it.suiteAfter === null) it.suiteAfter = size;
    size = it.suiteAfter;
  }
  for (const it of iterations) {
    if (it.outcome !== "accepted" || !it.commit) continue;
    try {
      it.diff = (await repo.diffOfCommit(it.commit, paths.agentRel)).trim() || null;
    } catch {
      // A commit that is gone (rewritten history, stand-in ids) just has no diff to show.
      it.diff = null;
    }
  }
  return {
    root: paths.root,
    benchmark: opts.benchmark,
    generatedAt: opts.now.toISOString(),
    run: fromRun.run,
    iterations,
    baselineSpendUsd,
    queue: readQueueHealth(paths.queueHealth),
    holdout: fromRun.holdout,
    gateNotes: fromRun.gateNotes,
    ...(bestValScore === null ? {} : { bestValScore }),
    earlierGenerations: generations,
  };
}
