/**
 * The foreground run's view on a terminal: where the loop is, the benchmark or gate progress with its ETA,
 * the last gate's verdict and the spend against the budget, repainted in place from the journal (the same
 * source as `status`). The JSON log then goes only to workspace/logs/.
 */
import { raceLine } from "../steps/race.ts";
import { formatDuration, progressLine, readStatus, type StatusReport, verdictLine } from "./status.ts";

const money = (usd: number) => `$${usd.toFixed(2)}`;

/** The view's lines for one status reading. */
export function formatLive(s: StatusReport): string[] {
  if (!s.run) return ["starting…"];
  const inStep = s.secondsInStep === null ? "" : ` · ${formatDuration(s.secondsInStep)} in step`;
  const lines = [`${s.run} · iteration ${s.iteration} · ${s.state}${inStep}`];
  if (s.progress) lines.push(`  progress   ${progressLine(s.progress, 30)}`);
  if (s.candidates?.length) lines.push(`  candidates ${raceLine(s.candidates)}`);
  lines.push(`  last gate  ${s.lastIteration ? verdictLine(s.lastIteration) : "none yet"}`);
  const baseline = s.baselineValScore === null ? "" : ` (baseline ${s.baselineValScore.toFixed(4)})`;
  lines.push(
    `  best       val_score ${s.bestValScore?.toFixed(4) ?? "n/a"}${baseline} · ${s.accepted} accepted, ${s.rejected} rejected`,
  );
  const budget = s.budgetUsd === null ? " (no budget)" : ` of ${money(s.budgetUsd)}`;
  lines.push(`  spend      ${money(s.spendUsd.total)}${budget}`);
  if (s.lastError) lines.push(`  last error ${s.lastError}`);
  return lines;
}

export interface LiveViewOptions {
  dir: string;
  out: NodeJS.WritableStream & { columns?: number };
  intervalMs?: number;
}

export class LiveView {
  private painted = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: LiveViewOptions) {}

  start(): void {
    this.paint();
    this.timer = setInterval(() => this.paint(), this.o.intervalMs ?? 1000);
    this.timer.unref();
  }

  /** Leaves the last frame on screen. Idempotent. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.paint();
    this.painted = 0;
  }

  private paint(): void {
    let lines: string[];
    try {
      lines = formatLive(readStatus(this.o.dir, Date.now(), { inProcess: true }));
    } catch {
      return;
    }
    // Wrapped lines would break the count of lines to repaint.
    const width = Math.max(20, (this.o.out.columns ?? 120) - 1);
    const frame = lines.map((l) => (l.length > width ? `${l.slice(0, width - 1)}…` : l));
    const up = this.painted > 0 ? `\x1b[${this.painted}F\x1b[0J` : "";
    this.o.out.write(`${up}${frame.join("\n")}\n`);
    this.painted = frame.length;
  }
}
