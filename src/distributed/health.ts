/**
 * The queue's health as the daemon last saw it (workspace/queue.json, rewritten every sweep while a batch runs
 * on workers): read by `status` and the report. Counts only — never a task id — so it is safe for test batches.
 */
import { existsSync, readFileSync } from "node:fs";
import type { WorkerHealth } from "./queue.ts";

/** The queue as `status` and the report show it: counts only, never a task id. */
export interface QueueHealth {
  at: number;
  split: string;
  done: number;
  total: number;
  waiting: number;
  active: number;
  delayed: number;
  /** Jobs found stalled (their worker stopped renewing its lock) during this batch. */
  stalled: number;
  workers: WorkerHealth[];
}

export function readQueueHealth(file: string): QueueHealth | null {
  if (!existsSync(file)) return null;
  try {
    const h = JSON.parse(readFileSync(file, "utf8")) as QueueHealth;
    return typeof h.at === "number" && Array.isArray(h.workers) ? h : null;
  } catch {
    return null;
  }
}

/** The worker whose tasks take longest on average: where to look first when a batch drags. */
export function slowestWorker(h: QueueHealth): QueueHealth["workers"][number] | null {
  let slowest: QueueHealth["workers"][number] | null = null;
  for (const w of h.workers)
    if (w.meanTaskMs !== null && (slowest === null || w.meanTaskMs > (slowest.meanTaskMs ?? 0))) slowest = w;
  return h.workers.filter((w) => w.meanTaskMs !== null).length > 1 ? slowest : null;
}

/** `status` lines: the batch's progress and the queue, then one line per worker. */
export function queueLines(h: QueueHealth, now: number): [string, string][] {
  const age = Math.max(0, Math.round((now - h.at) / 1000));
  const lines: [string, string][] = [
    [
      "queue",
      `${h.split} ${h.done}/${h.total} done, ${h.waiting} waiting, ${h.active} running, ${h.delayed} delayed, ${h.stalled} stalled (as of ${age}s ago)`,
    ],
  ];
  if (h.workers.length === 0) lines.push(["workers", "none connected: start `auto-harness worker --redis <url>`"]);
  const slowest = slowestWorker(h);
  for (const w of h.workers) {
    const mean = w.meanTaskMs === null ? "" : `, mean ${(w.meanTaskMs / 1000).toFixed(1)}s a task`;
    const flags = [w.refused ? w.refused : null, slowest?.id === w.id ? "slowest" : null].filter(Boolean);
    lines.push([
      "worker",
      `${w.id}: ${w.running}/${w.concurrency} running, ${w.done} done, ${w.failed} failed${mean}${flags.length ? `  [${flags.join("; ")}]` : ""}`,
    ]);
  }
  return lines;
}

/** The report's section on the workers: the queue at the daemon's last look, one row per worker. */
export function queueSectionHtml(h: QueueHealth, esc: (s: string) => string): string {
  const slowest = slowestWorker(h);
  const rows = h.workers
    .map(
      (w) =>
        `<tr><td>${esc(w.id)}</td><td>${esc(w.host)}</td><td>${w.running}/${w.concurrency}</td><td>${w.done}</td><td>${w.failed}</td><td>${w.meanTaskMs === null ? "—" : `${(w.meanTaskMs / 1000).toFixed(1)}s`}</td><td>${esc([w.refused, slowest?.id === w.id ? "slowest" : null].filter(Boolean).join("; "))}</td></tr>`,
    )
    .join("\n");
  return `<section>
<h2>Workers (executor: bullmq)</h2>
<p>${esc(h.split)} batch: ${h.done}/${h.total} done · ${h.waiting} waiting · ${h.active} running · ${h.delayed} delayed · ${h.stalled} stalled · as of ${esc(new Date(h.at).toISOString())}</p>
<table id="workers">
<thead><tr><th>worker</th><th>host</th><th>running</th><th>done</th><th>failed</th><th>mean task</th><th>note</th></tr></thead>
<tbody>
${rows || '<tr><td colspan="7">no worker connected</td></tr>'}
</tbody>
</table>
</section>`;
}
