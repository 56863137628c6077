import type { Experiment, Opened } from "../../src/cli/experiment.ts";
import type { Clock } from "../../src/clock.ts";
import { openRepo, type Repo } from "../../src/git/repo.ts";
import { agentsSealed, createSteeringGuard } from "../../src/steering/steering.ts";
import { createSteps } from "../../src/steps/steps.ts";

/**
 * The production record, learn and summarize steps over the real git repository, and the steering look the
 * production benchmark step makes first: for runs whose benchmark, analyze, edit and gate are stand-ins (the crash
 * tests, the fault campaign, the soak bench).
 */
export function realBookkeeping(
  exp: Experiment,
  opened: Opened,
  clock: Clock,
): Pick<ReturnType<typeof createSteps>, "record" | "learn" | "summarize"> & {
  repo: Repo;
  commitSteering(): Promise<string | null>;
} {
  const { journal, log } = opened;
  const repo = openRepo(exp.root);
  const real = createSteps({
    root: exp.root,
    config: exp.config,
    journal,
    log,
    clock,
    // Only the benchmark, analyze, edit and gate steps use these, and they are the stand-ins'.
    runner: null as never,
    codingAgent: null as never,
    repo,
  });
  const steering = createSteeringGuard({ root: exp.root, journal, log, agentsSealed: agentsSealed(exp.config) });
  return {
    repo,
    record: real.record,
    learn: real.learn,
    summarize: real.summarize,
    commitSteering: () => steering.commitChanges(repo),
  };
}
