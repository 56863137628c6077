import { resolve } from "node:path";
import { type Config, providersOf } from "../../config/schema.ts";
import { UserError } from "../../errors.ts";
import { createLogger, type Logger } from "../../log.ts";
import { sandboxUserOf } from "../sealed/sandbox-user.ts";
import { createCommandAdapter } from "./command.ts";
import { createExampleAdapter } from "./example.ts";
import { createLocalAdapter } from "./local.ts";
import type { Adapter, ProcessGroupTracker } from "./types.ts";

export type { Adapter, AgentAdapter, CommandAdapter, Score, TaskRunResult, TaskSpec } from "./types.ts";
export { createCommandAdapter, createExampleAdapter, createLocalAdapter };

/** The adapter `config.benchmark` names; relative paths in the config are relative to the experiment root. */
export function createAdapter(config: Config, root: string, log?: Logger, groups?: ProcessGroupTracker): Adapter {
  switch (config.benchmark) {
    case "example":
      return createExampleAdapter();
    case "local":
      if (!config.local)
        throw new UserError("CONFIG_INVALID", "benchmark is `local` but the `local:` section is missing");
      return createLocalAdapter({
        tasksFile: resolve(root, config.local.tasks),
        scorerFile: resolve(root, config.local.scorer),
      });
    case "command":
      if (!config.command) {
        throw new UserError("CONFIG_INVALID", "benchmark is `command` but the `command:` section is missing");
      }
      return createCommandAdapter({
        command: config.command.run,
        timeoutS: config.command.timeout,
        ...(config.command.sandbox
          ? {
              sandbox: {
                network: config.command.network,
                writable: config.command.writable.map((w) => resolve(root, w)),
                user: sandboxUserOf(config),
              },
            }
          : {}),
        cwd: root,
        settings: {
          agentModel: config.agent_model,
          maxConcurrency: config.max_concurrency,
          taskTimeoutS: config.per_task_timeout,
        },
        log: log ?? createLogger({ stdout: false }).log,
        ...(groups ? { groups } : {}),
        secretEnv: Object.values(providersOf(config)).flatMap((p) => (p.api_key_env ? [p.api_key_env] : [])),
      });
  }
}
