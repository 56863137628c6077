import { join } from "node:path";

/** Every path the harness uses inside an experiment directory, in one place. */
export interface Paths {
  root: string;
  config: string;
  /** Absolute path of the agent under optimization (config `agent_file`). */
  agentFile: string;
  /** The agent file relative to the root, as git and the file guard name it. */
  agentRel: string;
  agentTemplates: string;
  programTemplates: string;
  program: string;
  workspace: string;
  journal: string;
  lock: string;
  logs: string;
  results: string;
  suite: string;
  trainResults: string;
  learnings: string;
  split: string;
  tracesLatest: string;
  tracesBaseline: string;
  report: string;
  /** The task queue's health while a batch runs on workers (executor: bullmq). */
  queueHealth: string;
}

/** The default agent file (config `agent_file`). */
export const AGENT_FILE = "agent/agent.ts";

export const agentLanguage = (agentRel: string): "ts" | "python" => (agentRel.endsWith(".py") ? "python" : "ts");

/** The operator's steering: edited at any time during a run; the harness commits them itself. */
export const STEERING_FILES = ["PROGRAM.md", "experiment_config.yaml"] as const;
export const isSteering = (path: string): boolean => (STEERING_FILES as readonly string[]).includes(path);

export function paths(root: string, configFile = "experiment_config.yaml", agentFile = AGENT_FILE): Paths {
  const workspace = join(root, "workspace");
  return {
    root,
    config: join(root, configFile),
    agentFile: join(root, agentFile),
    agentRel: agentFile,
    agentTemplates: join(root, "agent", "templates"),
    programTemplates: join(root, "program_templates"),
    program: join(root, "PROGRAM.md"),
    workspace,
    journal: join(workspace, "journal.sqlite"),
    lock: join(workspace, "daemon.lock"),
    logs: join(workspace, "logs"),
    results: join(workspace, "results.tsv"),
    suite: join(workspace, "suite.json"),
    trainResults: join(workspace, "train_results.json"),
    learnings: join(workspace, "learnings.md"),
    split: join(workspace, "split.json"),
    tracesLatest: join(workspace, "traces", "latest"),
    tracesBaseline: join(workspace, "traces", "baseline"),
    report: join(workspace, "report.html"),
    queueHealth: join(workspace, "queue.json"),
  };
}
