import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, CommanderError, Option } from "commander";
import { createAdapter } from "../benchmark/adapters/index.ts";
import { assertSandboxReady } from "../benchmark/sealed/sandbox.ts";
import { systemClock } from "../clock.ts";
import { lockHolder } from "../daemon/lock.ts";
import { pinFirstRecords } from "../daemon/start.ts";
import { UserError } from "../errors.ts";
import { heldOutOf } from "../gate/held-out.ts";
import { openRepo } from "../git/repo.ts";
import { Journal } from "../journal/journal.ts";
import { redactingStream, registerSecretsFromEnv } from "../secrets.ts";
import { agentCheck } from "../steps/steps.ts";
import { runBenchmarkCommand } from "./benchmark.ts";
import { type GlobalOptions, openExperiment, openJournalAndLog, requirePrepared } from "./experiment.ts";
import { explainCommand, runGateCommand } from "./gate.ts";
import type { PreflightCheck } from "./preflight.ts";
import { prepareCommand } from "./prepare.ts";
import { presentError } from "./present.ts";
import { runRecordCommand } from "./record.ts";
import { type RunMode, runCommand, type StepsFactory } from "./run.ts";
import { createRunnerFor } from "./services.ts";
import { statusCommand } from "./status.ts";

export interface MainDeps {
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** Replaces the production steps (tests and demos run the real CLI with stand-ins). */
  stepsFactory?: StepsFactory;
  /** Replaces what `run`/`daemon` check before they start. */
  preflight?: readonly PreflightCheck[];
}

export const EXIT_CODES_HELP = `
Exit codes:
  0   success
  1   the operation ran and its answer is no (a rejected gate, a failed run)
  2   bad usage, configuration or input: one line naming it and the fix; nothing is written
  64  daemon only: the run is over, so pm2 does not start it again
  75  paused on an outage or a full disk: pm2 retries; else \`auto-harness resume\` (prepare: run it again)
`;

/** package.json's version: the harness's one version number. */
function harnessVersion(): string {
  const file = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "package.json");
  return (JSON.parse(readFileSync(file, "utf8")) as { version: string }).version;
}

const isTerminal = (s: NodeJS.WritableStream): boolean => (s as { isTTY?: boolean }).isTTY === true;

function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals() as GlobalOptions;
}

function requestStop(options: GlobalOptions, out: NodeJS.WritableStream): number {
  const exp = openExperiment(options);
  // Nothing to stop before the first run: and `stop` must not create a journal on its way to saying so.
  if (!existsSync(exp.paths.journal)) throw new UserError("RUN_STATE", "no unfinished run to stop (no run yet)");
  const journal = Journal.open(exp.paths.journal);
  try {
    const run = journal.runs.unfinishedRun();
    if (!run) throw new UserError("RUN_STATE", "no unfinished run to stop");
    journal.runs.requestStop(run.id);
    const holder = lockHolder(exp.paths.lock);
    out.write(
      `stop requested for ${run.id}: it finishes the current iteration, writes the closing summary and exits` +
        `${holder ? ` (daemon pid ${holder.pid})` : "; no daemon is running, so it takes effect on resume"}\n`,
    );
    return 0;
  } finally {
    journal.close();
  }
}

/** An action that resolves to the command's exit code. */
type Act = (fn: (cmd: Command) => Promise<number> | number) => (...args: unknown[]) => Promise<void>;

/** What every group of commands is added with. */
interface Cli {
  program: Command;
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  act: Act;
  deps: MainDeps;
}

/** Builds the CLI; every action resolves to an exit code. */
export function buildProgram(deps: MainDeps, setExit: (code: number) => void): Command {
  const out = deps.stdout ?? process.stdout;
  const err = deps.stderr ?? process.stderr;
  const program = new Command("auto-harness")
    .description("Improves an LLM agent overnight: benchmark, analyze, edit, gate, record, learn, repeat.")
    .option("-d, --dir <path>", "experiment directory", process.cwd())
    .option("-c, --config <file>", "config file, relative to --dir", "experiment_config.yaml")
    .version(harnessVersion(), "-V, --version", "the harness's version")
    .showHelpAfterError()
    // Every command's help lists --dir and --config and the exit codes, not only the top level's.
    .configureHelp({ showGlobalOptions: true })
    .addHelpText("afterAll", EXIT_CODES_HELP)
    .configureOutput({ writeOut: (s) => out.write(s), writeErr: (s) => err.write(s) })
    .exitOverride();
  const act: Act =
    (fn) =>
    async (...args: unknown[]) => {
      const cmd = args.at(-1) as Command;
      setExit(await fn(cmd));
    };
  const cli: Cli = { program, out, err, act, deps };
  addSetupCommands(cli);
  addRunCommands(cli);
  addMeasureCommands(cli);
  addToolCommands(cli);
  return program;
}

/** prepare, init, adopt, rebaseline: setting an experiment up. */
function addSetupCommands({ program, out, err, act }: Cli): void {
  program
    .command("prepare")
    .description(
      "create the workspace, copy the agent template, run the baseline, split train/test, record iteration 0",
    )
    .action(act((cmd) => prepareCommand({ ...globals(cmd), stderr: err })));

  program
    .command("init")
    .description(
      "scaffold a working experiment here: sample tasks, a scorer, an agent, the config and a README; or a starter for Terminal-Bench 2.0 through Harbor (--benchmark harbor) or tau2-bench (--benchmark tau2)",
    )
    .addOption(
      new Option(
        "--benchmark <kind>",
        "how the tasks run: local, command (your own program), harbor or tau2 (the harness's wrappers; the tool installed apart)",
      )
        .choices(["local", "command", "harbor", "tau2"])
        .default("local"),
    )
    .addOption(
      new Option(
        "--language <lang>",
        "the agent's language (default: ts; python, the only one, for harbor and tau2)",
      ).choices(["ts", "python"]),
    )
    .addOption(
      new Option("--provider <format>", "the agent's model API: Anthropic's Messages or OpenAI's")
        .choices(["anthropic", "openai"])
        .default("anthropic"),
    )
    .action(
      act(async (cmd) => {
        const { initCommand } = await import("./init.ts");
        const o = cmd.opts() as {
          benchmark: "local" | "command" | "harbor" | "tau2";
          language?: "ts" | "python";
          provider: "anthropic" | "openai";
        };
        return initCommand({ dir: globals(cmd).dir ?? process.cwd(), ...o, stdout: out });
      }),
    );

  program
    .command("adopt")
    .description("take over an experiment of the Python original in place, keeping its history (no new baseline)")
    .argument("<dir>", "the original's experiment directory")
    .action(
      act(async (cmd) => {
        const { adoptCommand } = await import("./adopt.ts");
        return adoptCommand({ dir: String(cmd.args[0]), stdout: out });
      }),
    );

  program
    .command("rebaseline")
    .description(
      "measure the baseline again with the scorer as it is now: drops every journaled task result, keeps the split",
    )
    .action(
      act(async (cmd) => {
        const { rebaselineCommand } = await import("./rebaseline.ts");
        return rebaselineCommand({ ...globals(cmd), stderr: err });
      }),
    );
}

/** run, resume, daemon, stop, status: the loop. */
function addRunCommands({ program, out, err, act, deps }: Cli): void {
  const runModes: { mode: RunMode; description: string; fresh?: string }[] = [
    {
      mode: "run",
      description: "start a run of the improvement loop (refuses if an unfinished run exists)",
      fresh: "abandon the unfinished run (kept in the journal) and start a new one",
    },
    { mode: "resume", description: "continue the unfinished run from the step it was in" },
    {
      mode: "daemon",
      description: "resume the unfinished run, or start one if there never was one (what pm2 runs)",
      fresh: "also start a new run when the last one has finished (a nightly pm2 cron_restart)",
    },
  ];
  for (const { mode, description, fresh } of runModes) {
    const command = program.command(mode).description(description);
    if (fresh) command.option("--new", fresh);
    command.option("--json", "JSON log lines on stdout even on a terminal (instead of the live view)");
    command.action(
      act((cmd) =>
        runCommand({
          ...globals(cmd),
          mode,
          fresh: Boolean(cmd.opts().new),
          // The live view only where a person watches: both streams on a terminal and no --json.
          live: !cmd.opts().json && isTerminal(out) && isTerminal(err),
          stderr: err,
          ...(deps.stepsFactory ? { stepsFactory: deps.stepsFactory } : {}),
          ...(deps.preflight ? { preflight: deps.preflight } : {}),
        }),
      ),
    );
  }

  program
    .command("stop")
    .description("ask the running loop to stop after the current iteration (a stop rule, with a closing summary)")
    .action(act((cmd) => requestStop(globals(cmd), out)));

  program
    .command("status")
    .description("where the run stands, from the journal (works while the daemon runs)")
    .option("--json", "machine-readable")
    .option("--watch", "refresh in place")
    .action(act((cmd) => statusCommand({ ...globals(cmd), ...cmd.opts(), stdout: out })));
}

/** benchmark, gate, record: one step of the loop by hand. */
function addMeasureCommands({ program, out, err, act }: Cli): void {
  program
    .command("benchmark")
    .description("run a split against the current agent/agent.ts")
    .addOption(new Option("--split <split>", "which split").choices(["train", "test"]).default("train"))
    .option("--task-ids <ids>", "comma-separated task ids (default: the whole split)")
    .action(
      act(async (cmd) => {
        const exp = openExperiment(globals(cmd));
        requirePrepared(
          exp,
          ": it checks the agent, the tasks and the scorer (a scorer's exception included), then measures the baseline",
        );
        assertSandboxReady(exp.config, exp.root);
        const opened = openJournalAndLog(exp, { stdout: false });
        try {
          pinFirstRecords(opened.journal, exp.paths, opened.log);
          const o = cmd.opts() as { split: "train" | "test"; taskIds?: string };
          return await runBenchmarkCommand({
            root: exp.root,
            config: exp.config,
            journal: opened.journal,
            log: opened.log,
            split: o.split,
            ...(o.taskIds ? { taskIds: o.taskIds.split(",").filter(Boolean) } : {}),
            stdout: out,
          });
        } finally {
          opened.journal.close();
        }
      }),
    );

  program
    .command("gate")
    .description("run the gate on the current agent/agent.ts (exit 0 pass, 1 fail, 2 error)")
    .option("--explain <iteration>", "print a journaled gate decision in words instead of running the gate")
    .option("--run <id>", "with --explain: the run (default: the newest one that gated that iteration)")
    .action(
      act(async (cmd) => {
        const opts = cmd.opts() as { explain?: string; run?: string };
        if (opts.explain !== undefined)
          return explainCommand({ ...globals(cmd), iteration: opts.explain, run: opts.run, stdout: out });
        const exp = openExperiment(globals(cmd));
        requirePrepared(exp);
        const opened = openJournalAndLog(exp, { stdout: false });
        try {
          return await runGateCommand({
            root: exp.root,
            config: exp.config,
            journal: opened.journal,
            log: opened.log,
            runner: createRunnerFor(exp, opened, systemClock),
            repo: openRepo(exp.root),
            checkAgent: agentCheck(exp.root, exp.config),
            heldOut: heldOutOf(createAdapter(exp.config, exp.root, opened.log), exp.paths.split),
            runId: null,
            iteration: null,
            stdout: out,
            stderr: err,
          });
        } finally {
          opened.journal.close();
        }
      }),
    );

  program
    .command("record")
    .description("commit agent/agent.ts and append a results.tsv row (as the original record.py)")
    .allowUnknownOption(true)
    .helpOption(false)
    .argument("[args...]")
    .action(
      act(async (cmd) => {
        const root = resolve(globals(cmd).dir ?? process.cwd());
        // simple-git refuses a directory that does not exist before the command could say so itself.
        if (!existsSync(root)) throw new UserError("USAGE", `${root} does not exist; pass --dir <experiment>`);
        return runRecordCommand({ root, repo: openRepo(root), options: cmd.args, stdout: out, stderr: err });
      }),
    );
}

/** worker, view, report. */
function addToolCommands({ program, out, act }: Cli): void {
  program
    .command("worker")
    .description("run benchmark tasks from the queue at --redis on this machine (executor: bullmq), until stopped")
    .requiredOption("--redis <url>", "the daemon's redis_url, e.g. redis://queue-host:6379")
    .option("--concurrency <n>", "tasks run at once", "4")
    .option("--lock-timeout <seconds>", "how long a silent worker keeps its tasks before another takes them", "30")
    .action(
      act(async (cmd) => {
        const { workerCommand } = await import("./worker.ts");
        const o = cmd.opts() as { redis: string; concurrency: string; lockTimeout: string };
        return workerCommand({ ...globals(cmd), ...o });
      }),
    );

  program
    .command("view")
    .description(
      "browse the journal read-only on 127.0.0.1: runs, rounds, candidates, gate evidence, train transcripts, spend",
    )
    .option("--port <n>", "the port (default: any free one)")
    .action(
      act(async (cmd) => {
        const { viewCommand } = await import("./view.ts");
        return viewCommand({ ...globals(cmd), ...cmd.opts(), stdout: out });
      }),
    );

  program
    .command("report")
    .description(
      "write workspace/report.html (one run: score curve, suite size, spend, the iteration table) and a page per run",
    )
    .option("--run <id>", "the run to show (default: the latest); every run's page goes to workspace/reports/")
    .action(
      act(async (cmd) => {
        const { reportCommand } = await import("./report.ts");
        return reportCommand({ ...globals(cmd), ...cmd.opts(), stdout: out });
      }),
    );
}

/** Runs the CLI; returns the exit code (0 ok, 1 the answer is no / the run failed, 2 bad usage or config). */
export async function main(argv: string[], deps: MainDeps = {}): Promise<number> {
  // Everything the CLI prints passes the secrets filter, whatever printed it.
  registerSecretsFromEnv();
  const err = redactingStream(deps.stderr ?? process.stderr);
  const printing = { ...deps, stdout: redactingStream(deps.stdout ?? process.stdout), stderr: err };
  let code = 0;
  const program = buildProgram(printing, (c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv);
    return code;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here too.
      return error.exitCode === 0 ? 0 : 2;
    }
    return presentError(error, err);
  }
}
