import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { agentFileIn } from "../config/load.ts";
import { errorMessage, HarnessError, UserError } from "../errors.ts";
import { type Repo, shortSha } from "../git/repo.ts";
import { appendResult, nextRowNumber, readResults } from "../workspace/files.ts";
import { paths } from "../workspace/paths.ts";
import { type ErrorStyle, presented, type Writable } from "./present.ts";

export interface RecordCommandOptions {
  valScore: number;
  evalsPassed: number;
  evalsTotal: number;
  /** Default: one after the last recorded iteration (0 when none). */
  iteration?: number;
  /** Commit message summary; default names the iteration and score. */
  message?: string;
}

export interface RecordCommandDeps {
  root: string;
  repo: Repo;
  /** Parsed options, or the raw flags (`--val-score 0.5 ...`) to parse here. */
  options: RecordCommandOptions | string[];
  stdout: Writable;
  stderr?: Writable;
  now?: () => Date;
  /** The agent file relative to the root; default: the config's `agent_file`. */
  agentFile?: string;
}

function usage(message: string): UserError {
  return new UserError(
    "USAGE",
    `${message} (usage: record --val-score X --evals-passed N --evals-total M [--iteration K] [--message TEXT])`,
  );
}

const wholeNumber = (raw: string | undefined, flag: string): number => {
  if (raw === undefined) throw usage(`${flag} is required`);
  if (!/^\d+$/.test(raw)) throw usage(`${flag} must be a whole number, got "${raw}"`);
  return Number(raw);
};

/** Parses the original record.py flags; throws UserError (exit 2) on bad usage. */
export function parseRecordArgs(argv: string[]): RecordCommandOptions {
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        "val-score": { type: "string" },
        "evals-passed": { type: "string" },
        "evals-total": { type: "string" },
        iteration: { type: "string" },
        message: { type: "string" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw usage(errorMessage(e));
  }
  const rawScore = values["val-score"];
  if (rawScore === undefined) throw usage("--val-score is required");
  const valScore = Number(rawScore);
  if (rawScore.trim() === "" || !Number.isFinite(valScore) || valScore < 0 || valScore > 1) {
    throw usage(`--val-score must be a number between 0 and 1, got "${rawScore}"`);
  }
  const evalsPassed = wholeNumber(values["evals-passed"], "--evals-passed");
  const evalsTotal = wholeNumber(values["evals-total"], "--evals-total");
  if (evalsPassed > evalsTotal) throw usage(`--evals-passed (${evalsPassed}) exceeds --evals-total (${evalsTotal})`);
  const options: RecordCommandOptions = { valScore, evalsPassed, evalsTotal };
  if (values.iteration !== undefined) options.iteration = wholeNumber(values.iteration, "--iteration");
  if (values.message !== undefined) options.message = values.message;
  return options;
}

/** As the original record.py: usage and damaged files exit 2, anything else 1. */
const RECORD_ERRORS: ErrorStyle = {
  label: "record failed",
  showCode: true,
  exitCode: (e) => (e instanceof HarnessError && e.exitCode === 2 ? 2 : 1),
};

export const RECORD_HELP = `Usage: auto-harness record --val-score X --evals-passed N --evals-total M [--iteration K] [--message TEXT]

Commits agent/agent.ts (if it changed) and appends a row to workspace/results.tsv, as the original record.py.

Options:
  --val-score X      mean reward on the test split, 0..1
  --evals-passed N   regression-suite tasks that passed
  --evals-total M    regression-suite size
  --iteration K      iteration number (default: one after the last recorded)
  --message TEXT     commit message summary (default: names the iteration and score)
  -h, --help         this help

Exit codes: 0 recorded (or already there), 1 failed, 2 bad usage or a damaged file.
`;

/**
 * The `record` command for operators who drive the loop by hand: commits agent/agent.ts if it
 * changed and appends the results.tsv row. Exit 0 recorded (or already there), 2 usage or damaged
 * file, 1 anything else.
 */
export async function runRecordCommand(deps: RecordCommandDeps): Promise<number> {
  const { repo, stdout, stderr = stdout, now = () => new Date() } = deps;
  const file = paths(deps.root).results;
  if (Array.isArray(deps.options) && deps.options.some((a) => a === "--help" || a === "-h")) {
    stdout.write(RECORD_HELP);
    return 0;
  }
  return presented(stderr, RECORD_ERRORS, async () => {
    if (!existsSync(deps.root)) throw new UserError("USAGE", `${deps.root} does not exist; pass --dir <experiment>`);
    if (!(await repo.isRepo())) {
      throw new UserError(
        "GIT_STATE",
        `${deps.root} is not a git repository; run \`auto-harness prepare\` first (or \`git init\` and commit the agent)`,
      );
    }
    const options = Array.isArray(deps.options) ? parseRecordArgs(deps.options) : deps.options;
    const rows = readResults(file);
    // Rows are numbered as record.py numbers them: the next row is the count of data rows.
    const next = nextRowNumber(rows);
    const iteration = options.iteration ?? next;
    const existing = rows.find((r) => r.iteration === iteration);
    if (existing) {
      stdout.write(`iteration ${iteration} is already recorded (commit ${existing.commit}); nothing changed\n`);
      return 0;
    }
    if (iteration !== next) {
      throw new UserError("USAGE", `--iteration ${iteration}: the next row of results.tsv is ${next}`);
    }
    let sha: string | null;
    const agent = deps.agentFile ?? agentFileIn(deps.root);
    if (await repo.fileDiffersFromHead(agent)) {
      const summary = options.message?.split("\n")[0]?.trim() || `iteration ${iteration}`;
      sha = await repo.commitFile(agent, `improve: ${summary} (val_score ${options.valScore.toFixed(4)})`);
      stdout.write(`committed ${agent} as ${shortSha(sha)}\n`);
    } else {
      sha = await repo.headCommit();
      if (!sha) throw new UserError("GIT_STATE", `the repository has no commits; commit ${agent} first`);
      stdout.write(`${agent} unchanged; recording against HEAD ${shortSha(sha)}\n`);
    }
    appendResult(file, {
      valScore: options.valScore,
      commit: shortSha(sha),
      evalsPassed: options.evalsPassed,
      evalsTotal: options.evalsTotal,
      timestamp: now().toISOString(),
    });
    stdout.write(
      `recorded iteration ${iteration}: val_score ${options.valScore.toFixed(4)}, evals ${options.evalsPassed}/${options.evalsTotal}\n`,
    );
    return 0;
  });
}
