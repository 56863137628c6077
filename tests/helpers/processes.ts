import { readdirSync, readFileSync } from "node:fs";

const parentOf = (pid: number): number =>
  Number(readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ")[1]);

/** Pids of this test process's descendants whose command line holds `text` (other test files run beside it). */
export function descendants(text: string): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => {
      try {
        if (pid === process.pid || !readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(text)) return false;
        for (let p = parentOf(pid), hops = 0; p > 1 && hops < 20; p = parentOf(p), hops++) {
          if (p === process.pid) return true;
        }
      } catch {
        // gone meanwhile
      }
      return false;
    });
}

/**
 * Waits until `test` holds, checking every 25 ms; fails naming `what` after `timeoutMs` (a loaded machine is
 * slow), with the tail of `seen()` when given (a process's output, say).
 */
export async function until(
  what: string,
  test: () => boolean | Promise<boolean>,
  timeoutMs = 120_000,
  seen?: () => string,
): Promise<void> {
  const started = Date.now();
  while (!(await test())) {
    if (Date.now() - started > timeoutMs)
      throw new Error(`timed out waiting for ${what}${seen ? `: ${seen().slice(-2000)}` : ""}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
