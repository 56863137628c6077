/**
 * A long night in a few minutes: the real CLI's `run` in this process over a few hundred iterations, with the
 * real journal, record (git commits), learnings, steering look and the gate's per-iteration work on the example
 * benchmark (its adapter and held-out tasks, whose scorer import once leaked a message port and two module copies
 * per iteration); the benchmark, analyze, edit and the gate's verdict are stand-ins (no models). Prints RSS and
 * journal bytes per iteration after a warm-up: the goal is RSS flat within noise. `tsx bench/soak.ts [iterations]`.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { startTestLlmServer, textReply } from "../dev/llm-server/llm-server.ts";
import { realBookkeeping } from "../dev/steps/bookkeeping.ts";
import { createStandInSteps } from "../dev/steps/stand-in.ts";
import { createAdapter, createExampleAdapter } from "../src/benchmark/adapters/index.ts";
import { runCommand } from "../src/cli/run.ts";
import { heldOutOf } from "../src/gate/held-out.ts";
import { writeSplit } from "../src/workspace/files.ts";
import { preparedExperiment } from "../tests/helpers/experiment.ts";
import { tracedCall } from "../tests/helpers/traced-call.ts";

const WARM_UP = 50;
setFlagsFromString("--expose-gc");
const collectGarbage = runInNewContext("gc") as () => void;

/** Least-squares slope of ys over their index. */
function slope(ys: number[]): number {
  const n = ys.length;
  const mx = (n - 1) / 2;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  ys.forEach((y, x) => {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  });
  return den === 0 ? 0 : num / den;
}

const journalBytes = (file: string) =>
  statSync(file).size + (statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0);

export async function benchSoak(iterations = 300): Promise<Record<string, number>> {
  const dir = preparedExperiment(mkdtempSync(join(tmpdir(), "bench-soak-")), {
    max_iterations: iterations,
    patience: iterations + 1,
  });
  // The example benchmark's own tasks, split as prepare would.
  const ids = await createExampleAdapter().listTasks();
  const train = ids.filter((_, i) => i % 10 < 7);
  const test = ids.filter((_, i) => i % 10 >= 7);
  writeSplit(join(dir, "workspace", "split.json"), {
    seed: 1,
    created_at: "2026-11-24T00:00:00.000Z",
    train,
    test,
    excluded: [],
    counts: { train: train.length, test: test.length, train_passing: 0, test_passing: 0, excluded: 0 },
  });
  const rss: number[] = [];
  const heap: number[] = [];
  const journalAt: number[] = [];
  const journalFile = join(dir, "workspace", "journal.sqlite");
  // The live view's stream: the run's JSON stays in its log file, off the bench's figures.
  const sink = { write: () => true, isTTY: false } as unknown as NodeJS.WritableStream;
  const t0 = performance.now();
  try {
    const code = await runCommand({
      dir,
      mode: "run",
      stderr: sink,
      live: true,
      handleSignals: false,
      stepsFactory: (exp, opened, clock) => {
        const { journal, log } = opened;
        const standIn = createStandInSteps({ paths: exp.paths, journal, clock, delayMs: 0 });
        const real = realBookkeeping(exp, opened, clock);
        return {
          ...standIn,
          benchmark: async (input, signal) => {
            await real.commitSteering();
            return standIn.benchmark(input, signal);
          },
          gate: async (input, signal) => {
            // What the production gate step builds every iteration: the benchmark's adapter and held-out tasks.
            await heldOutOf(createAdapter(exp.config, exp.root, log), exp.paths.split)();
            return standIn.gate(input, signal);
          },
          record: real.record,
          learn: async (input, signal) => {
            const output = await real.learn(input, signal);
            // A full collection first: what is left is what the night holds on to, not garbage not yet collected.
            collectGarbage();
            const m = process.memoryUsage();
            rss.push(m.rss / 1e6);
            heap.push(m.heapUsed / 1e6);
            journalAt.push(journalBytes(journalFile));
            return output;
          },
          summarize: real.summarize,
        };
      },
    });
    if (code !== 0) throw new Error(`the soak run ended with exit ${code}`);
    const ms = performance.now() - t0;
    const after = rss.slice(WARM_UP);
    const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
    return {
      iterations: rss.length,
      rss_mb_after_warm_up: round(after[0] ?? 0),
      rss_mb_at_end: round(rss.at(-1) ?? 0),
      rss_kb_per_iteration: round(slope(after) * 1000),
      heap_kb_per_iteration: round(slope(heap.slice(WARM_UP)) * 1000),
      journal_bytes_per_iteration: Math.round(slope(journalAt.slice(WARM_UP))),
      ms_per_iteration: round(ms / rss.length),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Six 10 MB model replies through the harness's side of the agent's calls, their trace events held as a running
 * train task holds them: the heap they keep (the agent still gets every byte, and the spend is still metered).
 */
export async function benchBigReplies(): Promise<Record<string, number>> {
  // One reply text, held by the server before the first measurement: what is measured is what the harness keeps.
  const huge = "x".repeat(10_000_000);
  const server = await startTestLlmServer({ responder: () => textReply(huge) });
  const body = JSON.stringify({
    model: "claude-sonnet-4-6",
    max_tokens: 10,
    messages: [{ role: "user", content: "hi" }],
  });
  try {
    collectGarbage();
    const before = process.memoryUsage();
    const events: unknown[] = [];
    for (let i = 0; i < 6; i++) {
      events.push((await tracedCall(server.url, body)).event);
    }
    collectGarbage();
    const after = process.memoryUsage();
    return {
      replies: events.length,
      heap_mb_kept: Math.round((after.heapUsed - before.heapUsed) / 1e5) / 10,
      rss_mb_growth: Math.round((after.rss - before.rss) / 1e5) / 10,
    };
  } finally {
    await server.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const n = Number(process.argv[2] ?? "300");
  for (const [k, v] of Object.entries(await benchSoak(n))) process.stdout.write(`${k.padEnd(32)} ${v}\n`);
  for (const [k, v] of Object.entries(await benchBigReplies())) process.stdout.write(`${k.padEnd(32)} ${v}\n`);
}
