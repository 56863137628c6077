/**
 * Deterministic crash points for the crash tests, in the style of SQLite's and FoundationDB's crash testing:
 * with `AUTO_HARNESS_CRASH_AT=<point>[:<n>]` the process SIGKILLs itself the n-th time (default 1st) it
 * reaches `<point>`. Without the variable every call is a no-op.
 */

export const CRASH_POINTS = [
  "transition:before-commit",
  "transition:after-commit",
  "record:before-commit",
  "record:after-commit",
  "record:after-row",
  "record:before-restore",
  "record:after-restore",
  "learn:after-entry",
  "gate:mid",
  "race:candidate-edited",
  "gate:screened",
  "gate:run-landed",
] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

const hits = new Map<string, number>();

function target(): { point: string; n: number } | null {
  const spec = process.env.AUTO_HARNESS_CRASH_AT;
  if (!spec) return null;
  const [point, n] = spec.split(":").length > 2 ? splitLast(spec) : [spec, "1"];
  return { point: point ?? spec, n: Math.max(1, Number(n) || 1) };
}

// Point names contain one colon themselves; an optional count follows a second one.
function splitLast(spec: string): [string, string] {
  const at = spec.lastIndexOf(":");
  return [spec.slice(0, at), spec.slice(at + 1)];
}

export function crashPoint(point: CrashPoint): void {
  const t = target();
  if (!t || t.point !== point) return;
  const count = (hits.get(point) ?? 0) + 1;
  hits.set(point, count);
  if (count !== t.n) return;
  process.stderr.write(`crash point ${point} (hit ${count}): SIGKILL\n`);
  process.kill(process.pid, "SIGKILL");
}
