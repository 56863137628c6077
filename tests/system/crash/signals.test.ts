/**
 * Every signal that ends a daemon ends it the same way: SIGINT (pm2 stop, Ctrl-C), SIGTERM, and SIGHUP (the
 * terminal closed, an ssh session dropped) stop taking work, persist the state, exit 0 within pm2's kill timeout,
 * and say that `auto-harness resume` continues; resume then finishes the run. Real daemon processes.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { preparedExperiment, readState, spawnCli, waitForState } from "../../helpers/experiment.ts";
import { tempDir } from "../../helpers/temp.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("stop signals", () => {
  it.each(["SIGINT", "SIGTERM", "SIGHUP"] as const)(
    "%s: exit 0 with the state persisted and the resume hint; resume completes",
    async (signal) => {
      const dir = preparedExperiment(tempDir("signals-"), { max_iterations: 1 });
      const journalFile = join(dir, "workspace", "journal.sqlite");
      const cli = spawnCli(["run", "--dir", dir], { STAND_IN_DELAY_MS: "60000" });
      await waitForState(journalFile, "benchmark");
      cli.child.kill(signal);
      const outcome = await Promise.race([cli.exited, sleep(8000).then(() => "still running" as const)]);
      expect(outcome, cli.stderr()).toEqual({ code: 0, signal: null });
      expect(readState(journalFile)).toEqual({ state: "benchmark", status: "stopped" });
      expect(cli.stderr()).toContain(
        `stopped by ${signal} with the state persisted: \`auto-harness resume\` continues from benchmark, iteration 1`,
      );

      const resumed = spawnCli(["resume", "--dir", dir], { STAND_IN_DELAY_MS: "5" });
      const { code } = await resumed.exited;
      expect(code, resumed.stderr()).toBe(0);
      expect(readState(journalFile)).toEqual({ state: "done", status: "done" });
    },
    60_000,
  );
});
