import { createAdapter } from "../benchmark/adapters/index.ts";
import { createRunner } from "../benchmark/runner.ts";
import type { BenchmarkRunner } from "../benchmark/types.ts";
import type { Clock } from "../clock.ts";
import { createCodingAgent } from "../coding-agent/index.ts";
import type { Steps } from "../daemon/daemon.ts";
import { createProcessGroupTracker } from "../daemon/process-groups.ts";
import { limitsOf } from "../daemon/start.ts";
import { createBullmqExecutor } from "../distributed/bullmq-executor.ts";
import { versionsOf } from "../distributed/versions.ts";
import { openRepo, type Repo } from "../git/repo.ts";
import { learningsDigest } from "../learnings/learnings.ts";
import { createAnthropic } from "../llm/client.ts";
import { agentsSealed, createSteeringGuard } from "../steering/steering.ts";
import { angleHistory, decideAngle, triedPatterns } from "../steps/angle.ts";
import { acceptedAgentContent, agentCheck, createSteps } from "../steps/steps.ts";
import { editableSpecs } from "../workspace/editable.ts";
import type { Experiment, Opened } from "./experiment.ts";

export interface Services {
  runner: BenchmarkRunner;
  repo: Repo;
  steps: Steps;
}

export function createRunnerFor(exp: Experiment, opened: Opened, clock: Clock): BenchmarkRunner {
  const { root, config } = exp;
  return createRunner({
    root,
    config,
    journal: opened.journal,
    log: opened.log,
    adapter: createAdapter(config, root, opened.log, createProcessGroupTracker(opened.journal.processGroups)),
    clock,
    infraErrorShare: config.infra_error_share,
    reuse: config.reuse_results,
    incumbentAgent: () => incumbentAgent(root, config.agent_file),
    ...(config.executor === "bullmq" && config.redis_url
      ? {
          executor: createBullmqExecutor({
            redisUrl: config.redis_url,
            versions: versionsOf(config, root),
            model: config.agent_model,
            timeoutMs: config.per_task_timeout * 1000,
            log: opened.log,
            healthFile: exp.paths.queueHealth,
            outageMs: config.redis_outage_minutes * 60_000,
            clock,
          }),
        }
      : {}),
  });
}

/** The last accepted agent file's content, or null before there is one. */
async function incumbentAgent(root: string, agentFile: string): Promise<string | null> {
  try {
    const repo = openRepo(root);
    return await repo.fileAtCommit(await repo.lastAcceptedCommit(agentFile), agentFile);
  } catch {
    return null;
  }
}

/**
 * The proposer's angle of a round (src/steps/angle.ts), decided at the round's first coding call; null when
 * `plateau_rounds` is 0 or outside a run.
 */
function roundAngle(exp: Experiment, opened: Opened, clock: Clock, ref: { runId: string; iteration: number }) {
  const { config, paths: p } = exp;
  const run = opened.journal.runs.getRun(ref.runId);
  if (!run || config.plateau_rounds === 0) return null;
  return decideAngle({
    journal: opened.journal,
    runId: ref.runId,
    iteration: ref.iteration,
    now: clock.now(),
    startedAt: run.createdAt,
    deadline: limitsOf(config, run.createdAt).deadline,
    budgetUsd: config.budget_usd,
    plateauRounds: config.plateau_rounds,
    codingModels: config.coding_models,
    log: opened.log,
    learningsFile: p.learnings,
  });
}

/** The production wiring: real runner, real coding agent over the Anthropic API, real git. */
export function createServices(exp: Experiment, opened: Opened, clock: Clock): Services {
  const { root, config } = exp;
  const { journal, log } = opened;
  // Every agent process the loop starts (task runs, the coding agent's runs, load checks) runs in a steering window.
  const steering = createSteeringGuard({ root, journal, log, agentsSealed: agentsSealed(config) });
  const runner = steering.wrapRunner(createRunnerFor(exp, opened, clock));
  const repo = openRepo(root);
  const codingAgent = createCodingAgent({
    root,
    journal,
    log,
    client: createAnthropic(),
    clock,
    model: config.coding_model,
    runner,
    checkAgent: steering.wrapCheck(agentCheck(root, config)),
    baseContent: () => acceptedAgentContent(repo, root, config.agent_file, editableSpecs(config)),
    agentFile: config.agent_file,
    editable: editableSpecs(config),
    limits: {
      maxTurns: config.coding_max_turns,
      maxTokens: config.coding_max_tokens,
      maxPhaseTokens: config.coding_max_phase_tokens,
      taskRunBudget: config.coding_task_run_budget,
      budgetUsd: config.budget_usd,
      outageMs: config.llm_outage_minutes * 60_000,
    },
    prices: config.prices,
    maxResultChars: config.coding_max_result_chars,
    // After a plateau the round's coding model reads no learnings, and may be the next of `coding_models`.
    digest: (ref) =>
      angleHistory(
        roundAngle(exp, opened, clock, ref),
        learningsDigest(exp.paths.learnings),
        triedPatterns(journal, ref.runId),
      ),
    modelFor: (ref) => roundAngle(exp, opened, clock, ref)?.codingModel ?? config.coding_model,
  });
  return {
    runner,
    repo,
    steps: createSteps({ root, config, journal, log, clock, runner, codingAgent, repo, steering }),
  };
}
