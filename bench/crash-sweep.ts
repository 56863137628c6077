/**
 * `npm run bench:crash`: the crash sweep. For every named crash point and every time the run reaches it (hit
 * 1, 2, … until a run no longer reaches it), a fresh experiment's daemon is SIGKILLed there, resumed to the
 * end, and DESIGN §4's invariants are checked. Prints figures; takes minutes (each scenario is real processes).
 * CRASH_SWEEP_POINTS=record:after-row,gate:mid limits the points; CRASH_SWEEP_MAX_HITS caps the hits per point.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EXIT_NOTHING_TO_DO } from "../src/cli/run.ts";
import { CRASH_POINTS } from "../src/crash-point.ts";
import { preparedExperiment, REAL_RECORD_CLI, spawnCli } from "../tests/helpers/experiment.ts";
import { checkInvariants } from "../tests/helpers/invariants.ts";

const ITERATIONS = 3;
const points = process.env.CRASH_SWEEP_POINTS?.split(",") ?? [...CRASH_POINTS];
const maxHits = Number(process.env.CRASH_SWEEP_MAX_HITS ?? "40");
const env = { STAND_IN_DELAY_MS: "0" };

let tried = 0;
let survived = 0;
const failures: string[] = [];
const started = Date.now();

for (const point of points) {
  for (let hit = 1; hit <= maxHits; hit++) {
    const dir = preparedExperiment(mkdtempSync(join(tmpdir(), "crash-sweep-")), {
      max_iterations: ITERATIONS,
      patience: 50,
    });
    try {
      const crashed = spawnCli(
        ["daemon", "--dir", dir],
        { ...env, AUTO_HARNESS_CRASH_AT: `${point}:${hit}` },
        REAL_RECORD_CLI,
      );
      const first = await crashed.exited;
      if (first.signal !== "SIGKILL") break; // The run never reaches this point a hit-th time.
      tried++;
      let code: number | null = null;
      for (let round = 0; round < 3 && code !== EXIT_NOTHING_TO_DO; round++) {
        ({ code } = await spawnCli(["daemon", "--dir", dir], env, REAL_RECORD_CLI).exited);
      }
      const { violations } = checkInvariants(dir, ITERATIONS);
      const ok = code === EXIT_NOTHING_TO_DO && violations.length === 0;
      if (ok) survived++;
      else failures.push(`${point}:${hit}: exit ${code}; ${violations.join("; ")}`);
      process.stdout.write(`    ${point}:${hit} ${ok ? "survived" : "FAILED"} (${survived}/${tried})\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  process.stdout.write(`  ${point.padEnd(28)} swept (${tried} kills so far)\n`);
}

process.stdout.write(`\ncrash sweep (${ITERATIONS}-iteration run: accepted, rejected, accepted)\n`);
process.stdout.write(`  kills                            ${tried}\n`);
process.stdout.write(`  resumed with every invariant     ${survived}\n`);
process.stdout.write(`  minutes                          ${((Date.now() - started) / 60_000).toFixed(1)}\n`);
for (const f of failures) process.stdout.write(`  FAILED ${f}\n`);
process.exitCode = failures.length === 0 ? 0 : 1;
