/**
 * Deterministic crash points for the crash tests, in the style of SQLite's and FoundationDB's crash testing:
 * with `AUTO_HARNESS_CRASH_AT=<point>[:<n>]` the process SIGKILLs itself the n-th time (default 1st) it
 * reaches `<point>`. With `AUTO_HARNESS_STOP_AT=<point>[:<n>]` it SIGSTOPs itself there instead (a point, or a
 * step of the loop as it is entered), so a fault test injects its fault at that exact moment and then sends
 * SIGCONT: polling the journal for a step misses short steps on a loaded machine. Without the variables every
 * call is a no-op.
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

function target(variable: "AUTO_HARNESS_CRASH_AT" | "AUTO_HARNESS_STOP_AT"): { point: string; n: number } | null {
  const spec = process.env[variable];
  if (!spec) return null;
  const [point, n] = spec.split(":").length > 2 ? splitLast(spec) : [spec, "1"];
  return { point: point ?? spec, n: Math.max(1, Number(n) || 1) };
}

// Point names contain one colon themselves; an optional count follows a second one.
function splitLast(spec: string): [string, string] {
  const at = spec.lastIndexOf(":");
  return [spec.slice(0, at), spec.slice(at + 1)];
}

/** Whether this is the targeted hit of `point` under `variable` (each variable counts its own hits). */
function targeted(variable: "AUTO_HARNESS_CRASH_AT" | "AUTO_HARNESS_STOP_AT", point: string): number | null {
  const t = target(variable);
  if (!t || t.point !== point) return null;
  const key = `${variable}|${point}`;
  const count = (hits.get(key) ?? 0) + 1;
  hits.set(key, count);
  return count === t.n ? count : null;
}

export function crashPoint(point: CrashPoint): void {
  stopPoint(point);
  const count = targeted("AUTO_HARNESS_CRASH_AT", point);
  if (count === null) return;
  process.stderr.write(`crash point ${point} (hit ${count}): SIGKILL\n`);
  process.kill(process.pid, "SIGKILL");
}

/** A crash point, or a step of the loop as the daemon enters it. */
export function stopPoint(point: string): void {
  const count = targeted("AUTO_HARNESS_STOP_AT", point);
  if (count === null) return;
  process.stderr.write(`stop point ${point} (hit ${count}): SIGSTOP\n`);
  process.kill(process.pid, "SIGSTOP");
}
