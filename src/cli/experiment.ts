import { existsSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { loadConfig } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import { UserError } from "../errors.ts";
import { Journal } from "../journal/journal.ts";
import { createLogger, type Logger, type LogPlace, logFileFor } from "../log.ts";
import { type Paths, paths } from "../workspace/paths.ts";

export interface GlobalOptions {
  dir?: string;
  config?: string;
}

/** An experiment directory with its config loaded (validated before anything is written). */
export interface Experiment {
  root: string;
  paths: Paths;
  config: Config;
}

export function openExperiment(options: GlobalOptions): Experiment {
  const root = resolve(options.dir ?? process.cwd());
  if (!existsSync(root)) throw new UserError("USAGE", `${root} does not exist; pass --dir <experiment>`);
  const configFile = options.config ?? "experiment_config.yaml";
  const configPath = isAbsolute(configFile) ? configFile : resolve(root, configFile);
  const config = loadConfig(configPath);
  return { root, paths: { ...paths(root, undefined, config.agent_file), config: configPath }, config };
}

/** Commands that read the split and the baseline refuse (exit 2, nothing written) before `prepare`. */
export function requirePrepared(exp: Experiment, what = ""): void {
  if (!existsSync(exp.paths.split) || !existsSync(exp.paths.results)) {
    throw new UserError("RUN_STATE", `${exp.root} is not prepared; run \`auto-harness prepare\` first${what}`);
  }
}

export interface Opened {
  journal: Journal;
  log: Logger;
  place: LogPlace;
}

/** Journal and logger of an experiment: logs go to stdout and workspace/logs/. */
export function openJournalAndLog(exp: Experiment, options: { stdout?: boolean; now?: () => number } = {}): Opened {
  const journal = Journal.open(exp.paths.journal, options.now ? { now: options.now } : {});
  const { log, place } = createLogger({ file: logFileFor(exp.paths.workspace), stdout: options.stdout ?? true });
  return { journal, log, place };
}
