/**
 * `npm run bench:crash`: the crash sweep and the fault campaign. First, for every named crash point and every
 * time the run reaches it (hit 1, 2, … until a run no longer reaches it), a fresh experiment's daemon is SIGKILLed
 * there, resumed to the end, and DESIGN §4's invariants are checked. Then every fault of the campaign (signals,
 * SIGKILL, a stale index.lock, a torn results.tsv, a full disk and a read-only workspace (as root, on a small
 * tmpfs), unusable steering edits; tests/helpers/fault-campaign.ts) is injected at every step of an iteration,
 * then at every point of a race of two candidates. Each benchmark step runs a real command that leaves a
 * background child: nothing may be left running. Prints % survived and every invariant violation; takes a
 * while (real processes).
 * CRASH_SWEEP_POINTS=record:after-row,gate:mid limits the points (none: CRASH_SWEEP_POINTS=-);
 * CRASH_SWEEP_MAX_HITS caps the hits per point; CRASH_SWEEP_FAULTS=SIGKILL,SIGHUP limits the faults at the
 * steps and CRASH_SWEEP_RACE_FAULTS those inside a race of two candidates (tests/helpers/race-campaign.ts).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTestLlmServer } from "../dev/llm-server/llm-server.ts";
import { EXIT_NOTHING_TO_DO } from "../src/cli/run.ts";
import { CRASH_POINTS } from "../src/crash-point.ts";
import { preparedExperiment, REAL_RECORD_CLI, spawnCli } from "../tests/helpers/experiment.ts";
import { CAMPAIGN_STEPS, FAULTS, leftovers, runScenario } from "../tests/helpers/fault-campaign.ts";
import { checkInvariants } from "../tests/helpers/invariants.ts";
import { prepareRaceExperiment, RACE_PLAN, RACE_POINTS, raceSubject } from "../tests/helpers/race-campaign.ts";
import { raceCodingModel } from "../tests/helpers/race-coding-model.ts";

const ITERATIONS = 3;
const listed = (v: string | undefined) => (v === "-" ? [] : v?.split(",").filter(Boolean));
const points = listed(process.env.CRASH_SWEEP_POINTS) ?? [...CRASH_POINTS];
const faults = FAULTS.filter((f) => listed(process.env.CRASH_SWEEP_FAULTS)?.includes(f.name) ?? true);
const raceFaults = FAULTS.filter((f) => listed(process.env.CRASH_SWEEP_RACE_FAULTS)?.includes(f.name) ?? true);
const maxHits = Number(process.env.CRASH_SWEEP_MAX_HITS ?? "40");
const env = { STAND_IN_DELAY_MS: "0", FAULT_COMMAND: "1" };

const tally = { tried: 0, survived: 0, violations: 0 };
const failures: string[] = [];
const skipped: string[] = [];
const started = Date.now();

function count(label: string, violations: string[]): void {
  tally.tried++;
  tally.violations += violations.length;
  if (violations.length === 0) tally.survived++;
  else failures.push(`${label}: ${violations.join("; ")}`);
  process.stdout.write(
    `    ${label} ${violations.length === 0 ? "survived" : "FAILED"} (${tally.survived}/${tally.tried})\n`,
  );
}

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
      let code: number | null = null;
      for (let round = 0; round < 3 && code !== EXIT_NOTHING_TO_DO; round++) {
        ({ code } = await spawnCli(["daemon", "--dir", dir], env, REAL_RECORD_CLI).exited);
      }
      const { violations } = checkInvariants(dir, ITERATIONS);
      if (code !== EXIT_NOTHING_TO_DO) violations.unshift(`exit ${code}`);
      violations.push(...leftovers(dir).map((p) => `left running: ${p}`));
      count(`${point}:${hit}`, violations);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  process.stdout.write(`  ${point.padEnd(28)} swept (${tally.tried} kills so far)\n`);
}
const killed = tally.tried;

for (const fault of faults) {
  for (const step of CAMPAIGN_STEPS) {
    const parent = mkdtempSync(join(tmpdir(), "fault-campaign-"));
    try {
      const { violations, skipped: why } = await runScenario(fault, step, parent);
      if (why) {
        skipped.push(`${fault.name} in ${step}: ${why}`);
        process.stdout.write(`    ${fault.name} in ${step} SKIPPED (${why})\n`);
      } else count(`${fault.name} in ${step}`, violations);
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  }
  process.stdout.write(`  ${fault.name.padEnd(28)} injected at every step\n`);
}
const stepFaults = tally.tried - killed;

// The same faults inside a race of two candidates, at the race's own points; the endpoint's served replies
// are compared with the journal's, to the call.
const server = await startTestLlmServer({ responder: raceCodingModel(RACE_PLAN) });
const prepared = await prepareRaceExperiment(server);
try {
  for (const fault of raceFaults) {
    for (const point of RACE_POINTS) {
      const parent = mkdtempSync(join(tmpdir(), "race-campaign-"));
      try {
        const { violations, skipped: why } = await runScenario(fault, point, parent, raceSubject(prepared, server));
        if (why) skipped.push(`${fault.name} at ${point}: ${why}`);
        else count(`${fault.name} at ${point} (race)`, violations);
      } finally {
        rmSync(parent, { recursive: true, force: true });
      }
    }
    process.stdout.write(`  ${fault.name.padEnd(28)} injected at every race point\n`);
  }
} finally {
  rmSync(prepared, { recursive: true, force: true });
  await server.close();
}

const pct = (n: number, d: number) => (d === 0 ? "n/a" : `${((100 * n) / d).toFixed(1)}%`);
process.stdout.write(`\ncrash sweep and fault campaign (${ITERATIONS}-iteration run: accepted, rejected, accepted)\n`);
process.stdout.write(`  kills at named crash points        ${killed}\n`);
process.stdout.write(`  faults injected at a step          ${stepFaults}\n`);
process.stdout.write(`  faults injected inside a race      ${tally.tried - killed - stepFaults}\n`);
process.stdout.write(`  survived with every invariant      ${tally.survived} (${pct(tally.survived, tally.tried)})\n`);
process.stdout.write(`  invariant violations               ${tally.violations}\n`);
if (skipped.length) process.stdout.write(`  skipped (not root: no small disk)   ${skipped.length}\n`);
process.stdout.write(`  minutes                            ${((Date.now() - started) / 60_000).toFixed(1)}\n`);
for (const f of failures) process.stdout.write(`  FAILED ${f}\n`);
process.exitCode = failures.length === 0 ? 0 : 1;
