/**
 * The report page as a pure function of the gathered data: no I/O, no clock, no network.
 * Everything (CSS, SVG) is inline so the file can be mailed or opened from disk.
 */

import { type QueueHealth, queueSectionHtml } from "../distributed/health.ts";
import type { HoldoutSummary } from "../verdicts.ts";
import {
  escapeHtml,
  fmtDuration,
  fmtScore,
  fmtUsd,
  renderScoreChart,
  renderSpendChart,
  renderSuiteChart,
} from "./charts.ts";
import { type Night, spendWords } from "./night.ts";
import { CSS } from "./style.ts";

export { escapeHtml, fmtDuration };

export type ReportOutcome = "baseline" | "accepted" | "rejected" | "no_change";

export interface ReportIteration {
  iteration: number;
  outcome: ReportOutcome;
  /** Test-split mean reward; null when the gate stopped before the test split. */
  valScore: number | null;
  hypothesis: string | null;
  changeSummary: string | null;
  pattern: string | null;
  reasons: string[];
  suitePassed: number | null;
  suiteTotal: number | null;
  /** Suite size after this iteration (promotions included). */
  suiteAfter: number | null;
  commit: string | null;
  costUsd: { coding: number; agent: number };
  durationMs: number | null;
  /** `git show` of agent/agent.ts for an accepted change. */
  diff: string | null;
  /** How the gate decided: its rule, P(improvement), held-out runs spent and where it stopped. */
  gate?: { rule: string; pGood: number | null; testRuns: number; stage: string | null } | null;
  /** Why an accepted change was accepted, in one line (results.tsv's reason, else the gate's record). */
  acceptance?: string | null;
}

export interface ReportRun {
  id: string;
  status: string;
  state: string | null;
  stopReason: string | null;
  lastError: string | null;
  accepted: number;
  rejected: number;
  /** The agent under test ran without the sandbox (`sandbox: none`): its scores are not sealed. */
  unsealed?: boolean;
}

/** A score history before the current one (a rebaseline started it over): shown apart, never mixed in. */
export interface ReportGeneration {
  generation: number;
  openedAt: string;
  runs: string[];
  accepted: number;
  bestValScore: number | null;
}

/** A run in the picker: every run of the journal, each with its own page. */
export interface ReportRunLink {
  id: string;
  status: string;
  generation: number;
  startedAt: string;
  accepted: number;
  rejected: number;
}

export interface ReportData {
  root: string;
  benchmark: string;
  generatedAt: string;
  run: ReportRun | null;
  /** Iteration 0 (baseline) first, then every iteration in order. */
  iterations: ReportIteration[];
  /** Workers and the task queue (executor: bullmq), as the daemon last wrote them. */
  queue?: QueueHealth | null;
  /** The sealed holdout's verdict (or why there is none), shown first. */
  holdout?: HoldoutSummary | { line: string; scored: boolean; verdict?: null } | null;
  /** The run's figures as the last line, `status` and `view` read them. */
  night?: Night | null;
  /** Every run of the journal, for the picker (each has its page in reports/). */
  runs?: ReportRunLink[];
  /** How this page links to a run's page: report.html sits beside reports/, a run's page inside it. */
  runHref?: (runId: string) => string;
  /** Changes the gate noted (a threshold changed in the config, a workspace record restored from the journal). */
  gateNotes?: string[];
  /** Each change of the proposer's angle after a plateau, as "iteration N: why". */
  angleNotes?: string[];
  /** What prepare's baseline run cost (not part of any run's spend). */
  baselineSpendUsd?: number | null;
  /** The best val_score so far as the journal holds it (the gate's); default: the best row shown. */
  bestValScore?: number | null;
  earlierGenerations?: ReportGeneration[];
}

function generationsSection(gens: ReportGeneration[] | undefined): string {
  if (!gens?.length) return "";
  const rows = gens.map(
    (g) =>
      `<li>generation ${g.generation} (from ${escapeHtml(g.openedAt)}): ${g.runs.length} run(s)${g.runs.length ? ` (${g.runs.map(escapeHtml).join(", ")})` : ""}, ${g.accepted} accepted, best val_score ${fmtScore(g.bestValScore)}</li>`,
  );
  return `<section id="earlier-generations"><h2>Earlier generations</h2><p class="sub">Scored before a rebaseline, by the scorer as it was then: kept in the journal, not part of any figure above.</p><ul>${rows.join("")}</ul></section>`;
}

const STAGE_WORDS: Record<string, string> = {
  train: "train evidence, 0 held-out runs",
  look: "an early look",
  full: "the full pass",
  extra: "paired re-runs",
  infra: "infrastructure errors",
  file_guard: "file guard",
  load_check: "load check",
};

function gateCell(it: ReportIteration): string {
  const g = it.gate;
  if (!g) return "";
  const p = g.pGood === null ? "" : `P(improvement) ${g.pGood.toFixed(3)} · `;
  const where = g.stage ? ` · stopped at ${STAGE_WORDS[g.stage] ?? g.stage}` : "";
  return `<div class="gate-info">${escapeHtml(`${p}${g.testRuns} held-out run(s)${where}`)}</div>`;
}

function cell(s: string | null | undefined, cls = ""): string {
  return `<td${cls ? ` class="${cls}"` : ""}>${s === null || s === undefined || s === "" ? "—" : s}</td>`;
}

/** A unified diff, each line escaped and classed by its kind so added and removed lines are coloured. */
export function renderDiff(diff: string): string {
  const kind = (line: string): string =>
    line.startsWith("+++") || line.startsWith("---") || line.startsWith("diff ") || line.startsWith("index ")
      ? "meta"
      : line.startsWith("@@")
        ? "hunk"
        : line.startsWith("+")
          ? "add"
          : line.startsWith("-")
            ? "del"
            : "ctx";
  // Block spans, one per line: an empty line keeps its height through the space.
  const lines = diff.split("\n").map((l) => `<span class="${kind(l)}">${escapeHtml(l) || " "}</span>`);
  return `<pre class="diff">${lines.join("")}</pre>`;
}

function tableRow(it: ReportIteration): string {
  const what =
    it.outcome === "baseline"
      ? "the template as prepared"
      : [
          it.hypothesis ? `<div class="hyp">${escapeHtml(it.hypothesis)}</div>` : "",
          it.changeSummary ? `<div class="change">${escapeHtml(it.changeSummary)}</div>` : "",
          it.pattern ? `<div class="pattern">pattern: ${escapeHtml(it.pattern)}</div>` : "",
        ].join("");
  const label =
    it.outcome === "rejected" ? "diff of the rejected candidate" : `diff ${escapeHtml(it.commit?.slice(0, 7) ?? "")}`;
  const diff = it.diff ? `<details><summary>${label}</summary>${renderDiff(it.diff)}</details>` : "";
  const reasons = it.reasons.length ? `<ul>${it.reasons.map((r) => `<li>${escapeHtml(r)}</li>`).join("")}</ul>` : "";
  // A gate that stopped at the file guard or load check never ran the suite.
  const suiteRan = it.suiteTotal !== null && !(it.outcome === "rejected" && it.valScore === null);
  const suite = suiteRan ? `${it.suitePassed ?? 0}/${it.suiteTotal}` : it.outcome === "rejected" ? "not run" : null;
  const cost = it.outcome === "baseline" ? null : fmtUsd(it.costUsd.coding + it.costUsd.agent);
  return (
    `<tr class="iteration ${it.outcome}" data-iteration="${it.iteration}">` +
    cell(String(it.iteration), "num") +
    cell(`<span class="badge ${it.outcome}">${it.outcome.replace("_", " ")}</span>`) +
    cell(what + diff, "what") +
    cell(
      (reasons ||
        (it.outcome === "accepted" ? `<div class="why">${escapeHtml(it.acceptance ?? "passed")}</div>` : "")) +
        gateCell(it) || null,
      "reasons",
    ) +
    cell(suite, "num") +
    cell(fmtScore(it.valScore), "num") +
    cell(cost, "num") +
    cell(fmtDuration(it.durationMs), "num") +
    "</tr>"
  );
}

export const defaultRunHref = (runId: string): string => `reports/${encodeURIComponent(runId)}.html`;

function runPicker(data: ReportData): string {
  if (!data.runs?.length) return "";
  const href = data.runHref ?? defaultRunHref;
  const items = data.runs.map((r) => {
    const text = `${r.id} · generation ${r.generation} · ${r.status} · ${r.accepted} accepted, ${r.rejected} rejected`;
    return r.id === data.run?.id
      ? `<li class="current" aria-current="page">${escapeHtml(text)}</li>`
      : `<li><a href="${escapeHtml(href(r.id))}">${escapeHtml(text)}</a></li>`;
  });
  return `<nav id="runs" class="runs" aria-label="runs"><span class="k">runs (one page each)</span><ul>${items.join("")}</ul></nav>`;
}

function holdoutSection(h: ReportData["holdout"]): string {
  if (!h) return "";
  const title = h.scored
    ? "Sealed holdout"
    : h.line.startsWith("none sealed")
      ? "No sealed holdout"
      : "Sealed holdout (not scored yet)";
  return `<section id="holdout"><h2>${title}</h2><div class="holdout">${escapeHtml(h.line)}</div></section>`;
}

const card = (k: string, v: string, id = "") =>
  `<div class="card"${id ? ` id="${id}"` : ""}><div class="k">${k}</div><div class="v">${v}</div></div>`;

function cards(data: ReportData): string {
  const its = data.iterations;
  const baseline = its.find((i) => i.outcome === "baseline");
  const bestScore = Math.max(
    ...its.filter((i) => i.outcome === "accepted" || i.outcome === "baseline").map((i) => i.valScore ?? 0),
    0,
  );
  const accepted = its.filter((i) => i.outcome === "accepted").length;
  const rejected = its.filter((i) => i.outcome === "rejected").length;
  const n = data.night;
  // One spend total: the journal's for the run (the holdout's scoring included), else what the rows add up to.
  const spend = n ? spendWords(n.spend) : fmtUsd(its.reduce((t, i) => t + i.costUsd.coding + i.costUsd.agent, 0));
  const verdict = data.holdout?.verdict ?? (data.holdout?.scored ? "scored" : data.holdout ? "none yet" : null);
  return [
    verdict === null ? "" : card("sealed holdout", escapeHtml(verdict), "card-holdout"),
    card("baseline val_score", fmtScore(n?.baselineValScore ?? baseline?.valScore ?? null)),
    n ? card("val_score", fmtScore(n.valScore), "card-val-score") : "",
    card(
      "best val_score",
      fmtScore(data.bestValScore !== undefined ? data.bestValScore : its.length ? bestScore : null),
      "card-best",
    ),
    card("iterations", String(its.filter((i) => i.outcome !== "baseline").length)),
    card("accepted / rejected", `${accepted} / ${rejected}`),
    card("spend", escapeHtml(spend), "card-spend"),
    data.baselineSpendUsd === null || data.baselineSpendUsd === undefined
      ? ""
      : card("baseline cost", fmtUsd(data.baselineSpendUsd)),
  ]
    .filter(Boolean)
    .join("\n");
}

/** The whole page. */
export function renderReport(data: ReportData): string {
  const its = data.iterations;
  const run = data.run;
  const runLine = run
    ? `run ${escapeHtml(run.id)} · ${escapeHtml(run.status)}${run.state && run.state !== run.status ? ` (${escapeHtml(run.state)})` : ""}${run.stopReason ? ` · ${escapeHtml(run.stopReason)}` : ""}${run.lastError ? ` · last error: ${escapeHtml(run.lastError)}` : ""}${run.unsealed ? " · UNSEALED: the agent under test ran without the sandbox (sandbox: none)" : ""}`
    : "no run yet: only the baseline";
  const title = `auto-harness report · ${escapeHtml(data.benchmark)}${run ? ` · ${escapeHtml(run.id)}` : ""}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<h1>${title}</h1>
<p class="sub">${escapeHtml(data.root)} · ${runLine} · generated ${escapeHtml(data.generatedAt)}</p>
${runPicker(data)}
${holdoutSection(data.holdout)}
${data.angleNotes?.length ? `<section id="angle-changes"><h2>Angle changes</h2><ul>${data.angleNotes.map((n) => `<li>${escapeHtml(n)}</li>`).join("")}</ul></section>` : ""}
${data.gateNotes?.length ? `<section id="gate-notes"><h2>Gate notes</h2><ul>${data.gateNotes.map((n) => `<li>${escapeHtml(n)}</li>`).join("")}</ul></section>` : ""}
<div class="cards">
${cards(data)}
</div>
<section>
<h2>val_score (test split) over iterations</h2>
${renderScoreChart(its)}
<div class="legend"><span class="sw" style="background:var(--accent)"></span>baseline<span class="sw" style="background:var(--ok)"></span>accepted<span class="sw" style="background:var(--bad)"></span>rejected (×; on the axis when the gate stopped before the test split)<span class="sw" style="background:none;border:2px dashed var(--accent)"></span>best so far</div>
</section>
<div class="row2">
<section>
<h2>Regression suite size</h2>
${renderSuiteChart(its)}
</section>
<section>
<h2>Spend per iteration</h2>
${renderSpendChart(its)}
<div class="legend"><span class="sw" style="background:#0969da"></span>coding agent<span class="sw" style="background:#54aeff"></span>agent under test (train runs)</div>
</section>
</div>
<section>
<h2>Iterations</h2>
<table id="iterations">
<thead><tr><th>#</th><th>outcome</th><th>hypothesis and change</th><th>gate</th><th>suite</th><th>val_score</th><th>cost</th><th>duration</th></tr></thead>
<tbody>
${its.map(tableRow).join("\n")}
</tbody>
</table>
</section>
${data.queue ? queueSectionHtml(data.queue, escapeHtml) : ""}
${generationsSection(data.earlierGenerations)}
</main>
</body>
</html>
`;
}
