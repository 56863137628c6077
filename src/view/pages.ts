/**
 * `view`'s pages as pure functions of what read.ts gathered: no I/O, no script, every text escaped. A round
 * with several candidates shows them side by side.
 */
import { escapeHtml, fmtScore, fmtUsd } from "../report/charts.ts";
import { nightLine, spendWords } from "../report/night.ts";
import { renderDiff } from "../report/render.ts";
import { CSS } from "../report/style.ts";
import { STAGE_WORDS } from "../verdicts.ts";
import {
  type GateEvidence,
  type TraceRead,
  type TraceSet,
  type ViewCandidate,
  type ViewRound,
  type ViewRun,
  WITHHELD,
} from "./read.ts";

const e = escapeHtml;
const href = (...parts: string[]) => `/${parts.map(encodeURIComponent).join("/")}`;
const p3 = (v: number | null) => (v === null ? "n/a" : v.toFixed(3));

const VIEW_CSS = `
nav.top { display: flex; gap: 16px; margin-bottom: 12px; }
.candidates { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 12px; }
.candidate { border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; background: #fff; }
.candidate.won { border-color: var(--ok); box-shadow: 0 0 0 1px var(--ok); }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 8px 0; }
dl.kv dt { color: var(--muted); }
.turn { border-left: 3px solid var(--line); padding: 4px 10px; margin: 8px 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.turn .who { font-size: 12px; font-weight: 600; color: var(--muted); text-transform: uppercase; }
.turn.assistant { border-color: var(--accent); }
.turn.tool { border-color: #8250df; font-family: ui-monospace, Menlo, monospace; font-size: 12px; }
.turn.verdict { border-color: var(--ok); }
.turn.verdict.fail { border-color: var(--bad); }
`;

export function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(title)} · auto-harness view</title>
<style>${CSS}${VIEW_CSS}</style>
</head>
<body>
<main>
<nav class="top"><a href="/">runs</a><a href="/traces">train traces</a><span class="sub">read-only view of the journal</span></nav>
<h1>${e(title)}</h1>
${body}
</main>
</body>
</html>
`;
}

export function runsPage(benchmark: string, runs: ViewRun[]): string {
  const rows = runs.map(
    ({ run, night }) =>
      `<tr data-run="${e(run.id)}"><td><a href="${href("runs", run.id)}">${e(run.id)}</a></td><td>${run.generation}</td><td>${e(run.status)}</td>` +
      `<td class="num">${fmtScore(night.valScore)}</td><td class="num">${fmtScore(night.bestValScore)}</td>` +
      `<td>${e(night.holdout.verdict ?? "—")}</td><td class="num">${e(spendWords(night.spend))}</td>` +
      `<td class="num">${run.accepted} / ${run.rejected}</td></tr>`,
  );
  const table = `<table id="runs"><thead><tr><th>run</th><th>generation</th><th>status</th><th>val_score</th><th>best</th><th>sealed holdout</th><th>spend</th><th>accepted / rejected</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
  return layout(`runs · ${benchmark}`, runs.length ? `<section>${table}</section>` : "<p>No run yet.</p>");
}

function evidence(g: GateEvidence): string {
  const looks = g.looks.map(
    (l) =>
      `<li>${l.fraction === 0 ? "train evidence (no held-out run)" : `look at ${Math.round(l.fraction * 100)}% (${l.tasksRun} held-out tasks)`}: P(improvement) ${p3(l.pGood)}, P(harm) ${p3(l.pBad)}</li>`,
  );
  const kv: [string, string][] = [
    ["rule", g.rule],
    ["decision", g.accept === null ? "not decided yet" : g.accept ? "accepted" : "rejected"],
    ["stopped", g.stage ? (STAGE_WORDS[g.stage] ?? g.stage) : "—"],
    ["val_score", `${fmtScore(g.valScore)} (the gate's record)`],
    ["first pass", `${g.firstPass.runs} held-out run(s), mean ${fmtScore(g.firstPass.mean)}`],
    [
      "paired re-runs",
      g.pairs.count
        ? `${g.pairs.count} pair(s): candidate ahead in ${g.pairs.candidateAhead}, incumbent ahead in ${g.pairs.incumbentAhead}, even in ${g.pairs.even} (extra evidence, not part of the first pass)`
        : "none",
    ],
    ["P(improvement)", p3(g.pGood)],
    ["P(harm)", p3(g.pBad)],
    ["held-out runs", `${g.testRuns} (${g.infraErrors} infrastructure error(s))`],
  ];
  if (g.improvement) {
    const i = g.improvement;
    kv.push(["improvement", `${i.diff.toFixed(4)} (95% interval ${i.low.toFixed(4)} to ${i.high.toFixed(4)})`]);
  }
  if (g.reason) kv.push(["why", g.reason]);
  return `<dl class="kv gate">${kv.map(([k, v]) => `<dt>${e(k)}</dt><dd>${e(v)}</dd>`).join("")}</dl>${looks.length ? `<ul class="looks">${looks.join("")}</ul>` : ""}`;
}

function candidate(c: ViewCandidate): string {
  const facts = [
    c.stage ? `stopped ${STAGE_WORDS[c.stage] ?? c.stage}` : null,
    c.pGood === null ? null : `P(improvement) ${p3(c.pGood)}`,
    c.valScore === null ? null : `val_score ${fmtScore(c.valScore)}`,
  ].filter(Boolean);
  return (
    `<div class="candidate${c.won ? " won" : ""}" data-candidate="${e(c.id)}"><h3>${e(c.id)}${c.won ? " · won" : ""}</h3>` +
    `<div class="hyp">${e(c.hypothesis ?? "no hypothesis recorded")}</div>` +
    (c.changeSummary ? `<div class="change">${e(c.changeSummary)}</div>` : "") +
    (facts.length ? `<div class="gate-info">${e(facts.join(" · "))}</div>` : "") +
    (c.why ? `<div class="why">${e(c.why)}</div>` : "") +
    (c.diff
      ? `<details open><summary>diff</summary>${renderDiff(c.diff)}</details>`
      : `<div class="sub withheld">${c.withheld ? e(`diff ${WITHHELD.slice(1, -1)}`) : "no diff kept"}</div>`) +
    "</div>"
  );
}

function round(r: ViewRound): string {
  const reasons = r.reasons.length ? `<ul>${r.reasons.map((x) => `<li>${e(x)}</li>`).join("")}</ul>` : "";
  return (
    `<section class="round" id="round-${r.iteration}" data-iteration="${r.iteration}">` +
    `<h2>round ${r.iteration} · <span class="badge ${e(r.outcome)}">${e(r.outcome.replace("_", " "))}</span> · val_score ${fmtScore(r.valScore)} (best before ${fmtScore(r.bestBefore)})</h2>` +
    `${reasons}<div class="candidates">${r.candidates.map(candidate).join("")}</div>` +
    (r.gate ? `<h3>gate evidence</h3>${evidence(r.gate)}` : "") +
    `<div class="sub">spend: coding agent ${fmtUsd(r.spend.codingUsd)}, agent under test ${fmtUsd(r.spend.agentUsd)}</div></section>`
  );
}

export function runPage(v: ViewRun, rounds: ViewRound[], others: ViewRun[]): string {
  const n = v.night;
  const spend = `<dl class="kv" id="spend"><dt>total</dt><dd>${e(spendWords(n.spend))}</dd><dt>coding agent</dt><dd>${fmtUsd(n.spend.codingUsd)}</dd><dt>agent under test</dt><dd>${fmtUsd(n.spend.agentUsd)} (train, gate and holdout runs)</dd></dl>`;
  const links = others
    .filter((o) => o.run.id !== v.run.id)
    .map(
      (o) =>
        `<li><a href="${href("runs", o.run.id)}">${e(o.run.id)}</a> (generation ${o.run.generation}, ${e(o.run.status)})</li>`,
    );
  return layout(
    `run ${v.run.id}`,
    `<section id="night"><p class="holdout" id="night-line">${e(nightLine(n))}</p>` +
      `<dl class="kv"><dt>val_score</dt><dd id="val-score">${fmtScore(n.valScore)}</dd><dt>best</dt><dd id="best">${fmtScore(n.bestValScore)}</dd>` +
      `<dt>sealed holdout</dt><dd id="holdout">${e(n.holdout.line)}</dd><dt>status</dt><dd>${e(v.run.status)}${v.run.stopReason ? ` · ${e(v.run.stopReason)}` : ""}</dd></dl></section>` +
      `<section><h2>spend by role</h2>${spend}</section>` +
      (rounds.length ? rounds.map(round).join("\n") : "<p>No finished round yet.</p>") +
      (links.length ? `<section><h2>other runs</h2><ul>${links.join("")}</ul></section>` : ""),
  );
}

export function tracesPage(sets: Record<TraceSet, string[]>): string {
  const list = (set: TraceSet) =>
    sets[set].length
      ? `<ul>${sets[set].map((id) => `<li><a href="${href("traces", set, id)}">${e(id)}</a></li>`).join("")}</ul>`
      : '<p class="sub">none yet</p>';
  return layout(
    "train traces",
    `<section><h2>latest train run</h2>${list("latest")}</section><section><h2>baseline (the first train run of each task)</h2>${list("baseline")}</section>`,
  );
}

const text = (v: unknown): string => (typeof v === "string" ? v : (JSON.stringify(v, null, 2) ?? String(v)));

/** An assistant message's blocks (Anthropic's content, or OpenAI's message) as turns. */
function assistantTurns(response: unknown): string[] {
  const r = (response ?? {}) as Record<string, unknown>;
  const out: string[] = [];
  const blocks = Array.isArray(r.content) ? (r.content as Record<string, unknown>[]) : [];
  const msg =
    (Array.isArray(r.choices) ? (r.choices[0] as { message?: Record<string, unknown> })?.message : null) ?? null;
  for (const b of blocks) {
    if (b.type === "text") out.push(turn("assistant", "model", text(b.text)));
    else if (b.type === "tool_use") out.push(turn("tool", `tool call · ${text(b.name)}`, text(b.input)));
  }
  if (msg) {
    if (msg.content) out.push(turn("assistant", "model", text(msg.content)));
    for (const c of (msg.tool_calls as { function?: { name?: string; arguments?: string } }[] | undefined) ?? []) {
      out.push(turn("tool", `tool call · ${text(c.function?.name)}`, text(c.function?.arguments)));
    }
  }
  return out;
}

const turn = (kind: string, who: string, body: string) =>
  `<div class="turn ${kind}"><div class="who">${e(who)}</div>${e(body)}</div>`;

export function tracePage(set: TraceSet, taskId: string, t: TraceRead): string {
  const events = (t.trace?.events ?? []) as Record<string, unknown>[];
  const parts: string[] = [];
  const first = events.find((ev) => ev.kind === "llm");
  const req = (first?.request ?? {}) as { system?: unknown; messages?: { role?: string; content?: unknown }[] };
  if (req.system) parts.push(turn("system", "system prompt", text(req.system)));
  const opening = req.messages?.[0];
  if (opening) parts.push(turn("user", "task", text(opening.content)));
  for (const ev of events) {
    if (ev.kind === "llm") {
      if (ev.error) parts.push(turn("tool", "model call failed", text(ev.error)));
      else parts.push(...assistantTurns(ev.response));
    } else if (ev.kind === "tool") {
      const out = ev.error === undefined ? text(ev.output) : `error: ${text(ev.error)}`;
      parts.push(turn("tool", `tool · ${text(ev.name)}`, `${text(ev.input)}\n→ ${out}`));
    } else if (ev.kind === "note") {
      parts.push(turn("user", "agent note", text(ev.message)));
    }
  }
  if (t.trace?.answer !== undefined && t.trace.answer !== null)
    parts.push(turn("assistant", "answer", text(t.trace.answer)));
  const reward = t.result?.reward;
  const verdict = `reward ${reward === null || reward === undefined ? "none (infrastructure error)" : reward}${t.result?.error ? ` · ${t.result.error}` : ""}`;
  parts.push(
    `<div class="turn verdict${reward && reward >= 0.5 ? "" : " fail"}" id="verdict"><div class="who">scorer's verdict</div>${e(verdict)}</div>`,
  );
  return layout(`${taskId} · ${set} train trace`, `<section id="transcript">${parts.join("\n")}</section>`);
}
