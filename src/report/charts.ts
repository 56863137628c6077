/** The report's charts, pure SVG strings, and the number formats every page of the report shares. */
import type { ReportIteration } from "./render.ts";

export function escapeHtml(s: string): string {
  return s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

export const fmtScore = (v: number | null): string => (v === null ? "—" : v.toFixed(4));
export const fmtUsd = (v: number): string => `$${v < 0.01 && v > 0 ? v.toFixed(4) : v.toFixed(2)}`;
export const num = (v: number): string => (Math.round(v * 10) / 10).toString();

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
