/**
 * The report page as a pure function of the gathered data: no I/O, no clock, no network.
 * Everything (CSS, SVG) is inline so the file can be mailed or opened from disk.
 */

import { type QueueHealth, queueSectionHtml } from "../distributed/health.ts";

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

export interface ReportData {
  root: string;
  benchmark: string;
  generatedAt: string;
  run: ReportRun | null;
  /** Iteration 0 (baseline) first, then every iteration in order. */
  iterations: ReportIteration[];
  /** Workers and the task queue (executor: bullmq), as the daemon last wrote them. */
  queue?: QueueHealth | null;
  /** The sealed holdout's result (or why there is none), shown first. */
  holdout?: { line: string; scored: boolean } | null;
  /** Changes the gate noted (a threshold changed in the config, a workspace record restored from the journal). */
  gateNotes?: string[];
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

export function escapeHtml(s: string): string {
  return s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

const fmtScore = (v: number | null): string => (v === null ? "—" : v.toFixed(4));
const fmtUsd = (v: number): string => `$${v < 0.01 && v > 0 ? v.toFixed(4) : v.toFixed(2)}`;
const num = (v: number): string => (Math.round(v * 10) / 10).toString();

export function fmtDuration(ms: number | null): string {
  if (ms === null) return "—";
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

const FRAME: Frame = { width: 760, height: 240, left: 52, right: 16, top: 16, bottom: 34 };
// The two side-by-side charts: a narrower viewBox keeps their text the same size as the big chart's.
const HALF: Frame = { width: 400, height: 190, left: 52, right: 24, top: 12, bottom: 34 };

function xScale(frame: Frame, maxIteration: number): (i: number) => number {
  const span = Math.max(1, maxIteration);
  const w = frame.width - frame.left - frame.right;
  return (i) => frame.left + (i / span) * w;
}

function yScale(frame: Frame, max: number): (v: number) => number {
  const h = frame.height - frame.top - frame.bottom;
  return (v) => frame.top + h - (max === 0 ? 0 : (v / max) * h);
}

function axes(frame: Frame, maxIteration: number, yTicks: number[], yMax: number, yLabel: (v: number) => string) {
  const x = xScale(frame, maxIteration);
  const y = yScale(frame, yMax);
  const parts: string[] = [];
  for (const t of yTicks) {
    parts.push(
      `<line class="grid" x1="${frame.left}" x2="${frame.width - frame.right}" y1="${num(y(t))}" y2="${num(y(t))}"/>`,
      `<text class="tick" x="${frame.left - 6}" y="${num(y(t) + 4)}" text-anchor="end">${escapeHtml(yLabel(t))}</text>`,
    );
  }
  const step = Math.max(1, Math.ceil(maxIteration / 12));
  for (let i = 0; i <= maxIteration; i += step) {
    parts.push(
      `<text class="tick" x="${num(x(i))}" y="${frame.height - frame.bottom + 16}" text-anchor="middle">${i}</text>`,
    );
  }
  parts.push(
    `<text class="axis-label" x="${(frame.width + frame.left) / 2}" y="${frame.height - 2}" text-anchor="middle">iteration</text>`,
  );
  return { x, y, svg: parts.join("") };
}

function svg(id: string, title: string, frame: Frame, body: string): string {
  return `<svg id="${id}" class="chart" viewBox="0 0 ${frame.width} ${frame.height}" role="img" aria-label="${escapeHtml(title)}" xmlns="http://www.w3.org/2000/svg">${body}</svg>`;
}

const maxIterationOf = (its: ReportIteration[]): number => Math.max(1, ...its.map((i) => i.iteration));

/** val_score per iteration: accepted as filled circles, rejected as crosses, the best-so-far as a step line. */
export function renderScoreChart(its: ReportIteration[]): string {
  const f = FRAME;
  const scored = its.filter((i) => i.valScore !== null || i.outcome === "rejected");
  const { x, y, svg: ax } = axes(f, maxIterationOf(its), [0, 0.25, 0.5, 0.75, 1], 1, (v) => v.toFixed(2));
  const parts = [ax];
  // The best accepted score so far: what the gate compares against.
  let best: number | null = null;
  const steps: string[] = [];
  for (const it of its) {
    if ((it.outcome === "accepted" || it.outcome === "baseline") && it.valScore !== null) {
      if (best !== null) steps.push(`L${num(x(it.iteration))},${num(y(best))}`);
      best = best === null ? it.valScore : Math.max(best, it.valScore);
      steps.push(`${steps.length === 0 ? "M" : "L"}${num(x(it.iteration))},${num(y(best))}`);
    }
  }
  if (best !== null && steps.length > 0) {
    steps.push(`L${num(x(maxIterationOf(its)))},${num(y(best))}`);
    parts.push(`<path class="best-line" d="${steps.join(" ")}"/>`);
  }
  for (const it of scored) {
    const cx = num(x(it.iteration));
    const title = `<title>iteration ${it.iteration}: ${it.outcome}, val_score ${fmtScore(it.valScore)}</title>`;
    const data = `data-iteration="${it.iteration}" data-outcome="${it.outcome}"`;
    if (it.outcome === "rejected") {
      // Rejected before the test split ran: no score, drawn on the axis.
      const cy = y(it.valScore ?? 0);
      const d = 5;
      parts.push(
        `<g class="point rejected${it.valScore === null ? " unscored" : ""}" ${data}>${title}` +
          `<path d="M${num(Number(cx) - d)},${num(cy - d)} L${num(Number(cx) + d)},${num(cy + d)} M${num(Number(cx) - d)},${num(cy + d)} L${num(Number(cx) + d)},${num(cy - d)}"/></g>`,
      );
    } else {
      parts.push(
        `<g class="point ${it.outcome}" ${data}>${title}<circle cx="${cx}" cy="${num(y(it.valScore ?? 0))}" r="5"/></g>`,
      );
    }
  }
  return svg("score-chart", "val_score over iterations", f, parts.join(""));
}

/** Regression-suite size after each iteration. */
export function renderSuiteChart(its: ReportIteration[]): string {
  const f = HALF;
  const sized = its.filter((i) => i.suiteAfter !== null);
  const top = Math.max(4, ...sized.map((i) => i.suiteAfter as number));
  const ticks = [0, Math.round(top / 2), top];
  const { x, y, svg: ax } = axes(f, maxIterationOf(its), ticks, top, String);
  const parts = [ax];
  if (sized.length > 0) {
    const d = sized
      .map((it, k) => {
        const prev = k > 0 ? `L${num(x(it.iteration))},${num(y(sized[k - 1]?.suiteAfter as number))} ` : "";
        return `${k === 0 ? "M" : `${prev}L`}${num(x(it.iteration))},${num(y(it.suiteAfter as number))}`;
      })
      .join(" ");
    parts.push(`<path class="suite-line" d="${d}"/>`);
    for (const it of sized) {
      parts.push(
        `<circle class="suite-point" data-iteration="${it.iteration}" cx="${num(x(it.iteration))}" cy="${num(y(it.suiteAfter as number))}" r="3"><title>iteration ${it.iteration}: ${it.suiteAfter} tasks in the suite</title></circle>`,
      );
    }
  }
  return svg("suite-chart", "suite size over iterations", f, parts.join(""));
}

/** LLM spend per iteration, coding agent and agent under test stacked. */
export function renderSpendChart(its: ReportIteration[]): string {
  const f = HALF;
  const totals = its.map((i) => i.costUsd.coding + i.costUsd.agent);
  const top = Math.max(0.01, ...totals);
  const { x, y, svg: ax } = axes(f, maxIterationOf(its), [0, top / 2, top], top, (v) => fmtUsd(v));
  const parts = [ax];
  const span = x(1) - x(0);
  const w = Math.max(3, Math.min(28, span * 0.6));
  for (const it of its) {
    if (it.outcome === "baseline") continue;
    const x0 = num(x(it.iteration) - w / 2);
    const yCoding = y(it.costUsd.coding);
    const yTotal = y(it.costUsd.coding + it.costUsd.agent);
    const base = y(0);
    parts.push(
      `<g class="spend-bar" data-iteration="${it.iteration}"><title>iteration ${it.iteration}: coding ${fmtUsd(it.costUsd.coding)}, agent ${fmtUsd(it.costUsd.agent)}</title>` +
        `<rect class="coding" x="${x0}" y="${num(yCoding)}" width="${num(w)}" height="${num(base - yCoding)}"/>` +
        `<rect class="agent" x="${x0}" y="${num(yTotal)}" width="${num(w)}" height="${num(yCoding - yTotal)}"/></g>`,
    );
  }
  return svg("spend-chart", "spend per iteration", f, parts.join(""));
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
    cell((reasons || (it.outcome === "accepted" ? "passed" : "")) + gateCell(it) || null, "reasons") +
    cell(suite, "num") +
    cell(fmtScore(it.valScore), "num") +
    cell(cost, "num") +
    cell(fmtDuration(it.durationMs), "num") +
    "</tr>"
  );
}

const CSS = `
:root { color-scheme: light; --ok: #1a7f37; --bad: #cf222e; --muted: #6e7781; --line: #d0d7de; --accent: #0969da; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1f2328; background: #f6f8fa; }
main { max-width: 1100px; margin: 0 auto; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 0 0 8px; }
.sub { color: var(--muted); margin: 0 0 16px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; margin-bottom: 16px; }
.card, section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; }
section { margin-bottom: 16px; }
.card .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .v { font-size: 20px; font-weight: 600; }
.row2 { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.row2 section { margin-bottom: 16px; }
.chart { width: 100%; height: auto; display: block; }
.chart .grid { stroke: #eaeef2; }
.chart .tick, .chart .axis-label { fill: var(--muted); font-size: 11px; }
.chart .best-line { fill: none; stroke: var(--accent); stroke-width: 2; stroke-dasharray: 4 3; }
.chart .point.accepted circle, .chart .point.baseline circle { fill: var(--ok); stroke: #fff; stroke-width: 1.5; }
.chart .point.baseline circle { fill: var(--accent); }
.chart .point.no_change circle { fill: var(--muted); }
.chart .point.rejected path { stroke: var(--bad); stroke-width: 2.5; fill: none; }
.chart .suite-line { fill: none; stroke: #8250df; stroke-width: 2; }
.chart .suite-point { fill: #8250df; }
.chart .spend-bar .coding { fill: #0969da; }
.chart .spend-bar .agent { fill: #54aeff; }
.legend { color: var(--muted); font-size: 12px; margin-top: 4px; }
.legend .sw { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin: 0 4px 0 12px; vertical-align: -1px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 6px 8px; border-bottom: 1px solid var(--line); }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
td.what { max-width: 460px; }
td ul { margin: 0; padding-left: 16px; }
.hyp { font-weight: 500; }
.change, .pattern, .gate-info { color: var(--muted); }
.holdout { font-size: 18px; font-weight: 600; }
.badge { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 12px; font-weight: 600; color: #fff; background: var(--muted); white-space: nowrap; }
.badge.accepted { background: var(--ok); }
.badge.rejected { background: var(--bad); }
.badge.baseline { background: var(--accent); }
details summary { cursor: pointer; color: var(--accent); margin-top: 4px; }
pre.diff { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f6f8fa; border: 1px solid var(--line); border-radius: 6px; padding: 8px; white-space: pre-wrap; overflow-wrap: anywhere; }
pre.diff span { display: block; }
pre.diff .add { background: #e6ffec; color: #116329; }
pre.diff .del { background: #ffebe9; color: #82071e; }
pre.diff .hunk { color: #8250df; }
pre.diff .meta { color: var(--muted); }
@media (max-width: 800px) { .row2 { grid-template-columns: 1fr; } }
`;

/** The whole page. */
export function renderReport(data: ReportData): string {
  const its = data.iterations;
  const baseline = its.find((i) => i.outcome === "baseline");
  const bestScore = Math.max(
    ...its.filter((i) => i.outcome === "accepted" || i.outcome === "baseline").map((i) => i.valScore ?? 0),
    0,
  );
  const accepted = its.filter((i) => i.outcome === "accepted").length;
  const rejected = its.filter((i) => i.outcome === "rejected").length;
  const spend = its.reduce((n, i) => n + i.costUsd.coding + i.costUsd.agent, 0);
  const card = (k: string, v: string) => `<div class="card"><div class="k">${k}</div><div class="v">${v}</div></div>`;
  const run = data.run;
  const runLine = run
    ? `run ${escapeHtml(run.id)} · ${escapeHtml(run.status)}${run.state ? ` (${escapeHtml(run.state)})` : ""}${run.stopReason ? ` · ${escapeHtml(run.stopReason)}` : ""}${run.lastError ? ` · last error: ${escapeHtml(run.lastError)}` : ""}${run.unsealed ? " · UNSEALED: the agent under test ran without the sandbox (sandbox: none)" : ""}`
    : "no run yet: only the baseline";
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>auto-harness report · ${escapeHtml(data.benchmark)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<h1>auto-harness report · ${escapeHtml(data.benchmark)}</h1>
<p class="sub">${escapeHtml(data.root)} · ${runLine} · generated ${escapeHtml(data.generatedAt)}</p>
${data.holdout ? `<section id="holdout"><h2>Sealed holdout${data.holdout.scored ? "" : " (not scored yet)"}</h2><div class="holdout">${escapeHtml(data.holdout.line)}</div></section>` : ""}
${data.gateNotes?.length ? `<section id="gate-notes"><h2>Gate notes</h2><ul>${data.gateNotes.map((n) => `<li>${escapeHtml(n)}</li>`).join("")}</ul></section>` : ""}
<div class="cards">
${card("baseline val_score", fmtScore(baseline?.valScore ?? null))}
${card("best val_score", fmtScore(data.bestValScore !== undefined ? data.bestValScore : its.length ? bestScore : null))}
${card("iterations", String(its.filter((i) => i.outcome !== "baseline").length))}
${card("accepted / rejected", `${accepted} / ${rejected}`)}
${card("spend", fmtUsd(spend))}
${data.baselineSpendUsd === null || data.baselineSpendUsd === undefined ? "" : card("baseline cost", fmtUsd(data.baselineSpendUsd))}
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
