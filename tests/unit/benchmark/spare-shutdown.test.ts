/**
 * No spare agent process is started once shutdown has begun: a batch aborted by the shutdown restocks its spare in
 * a `finally`, and a spare started then was seen outliving its harness. Real agent processes (unsealed: the spare
 * of `sandbox: none` has no bubblewrap to die with).
 */
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { keepSpareAgentProcess, stopSpareAgentProcesses } from "../../../src/benchmark/local/spares.ts";
import { specOf } from "../../../src/benchmark/sealed/sandbox.ts";

/** This process's live agent processes (no zombies; esbuild's own service is not one), by pid. */
function children(): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        const agent = /harness_runtime\.py|auto-harness-\d+\/child-/.test(readFileSync(`/proc/${pid}/cmdline`, "utf8"));
        return Number(fields[1]) === process.pid && fields[0] !== "Z" && agent;
      } catch {
        return false;
      }
    })
    .map(Number);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("spare agent processes and shutdown", () => {
  it("keeps a spare until shutdown begins; after that none is started, and the kept one is gone", async () => {
    const before = new Set(children());
    keepSpareAgentProcess(specOf("none"), "ts");
    const spare = children().filter((pid) => !before.has(pid));
    expect(spare).toHaveLength(1);

    stopSpareAgentProcesses();
    for (let i = 0; i < 250 && children().some((pid) => spare.includes(pid)); i++) await sleep(20);
    expect(children().filter((pid) => !before.has(pid))).toEqual([]);

    // What an aborted batch's `finally` does during the shutdown: nothing is started.
    keepSpareAgentProcess(specOf("none"), "ts");
    keepSpareAgentProcess(specOf("none"), "python");
    await sleep(100);
    expect(children().filter((pid) => !before.has(pid))).toEqual([]);
  });
});
