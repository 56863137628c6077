import type { EditOutput, GateOutput, RecordOutput } from "../contracts.ts";
import { crashPoint } from "../crash-point.ts";
import { HarnessError } from "../errors.ts";
import { type Paths, type Repo, shortSha } from "../git/repo.ts";
import { acceptanceReason } from "../verdicts.ts";
import { appendResult, LOOP_ITERATION_COLUMN, REASON_COLUMN, readResults } from "../workspace/files.ts";
import { AGENT_FILE, paths } from "../workspace/paths.ts";

export const RUN_TRAILER = "Harness-Run";

export const runTrailerValue = (runId: string, iteration: number): string => `${runId}/${iteration}`;

export interface RecordDeps {
  root: string;
  repo: Repo;
  runId: string;
  iteration: number;
  edit: EditOutput;
  gate: GateOutput;
  now: () => Date;
  /** The agent file relative to the root (config `agent_file`; default agent/agent.ts). */
  agentFile?: string;
  /** Every editable path or pattern, the agent file first (config `editable`); default: the agent file alone. */
  editable?: readonly string[];
  /** Test seam: called after the commit and before the results.tsv row (the crash window). */
  afterCommit?: (sha: string) => Promise<void> | void;
}

/** First line of the commit message: `improve: <commit message or summary>`, one line. */
export function improveMessage(edit: Pick<EditOutput, "commitMessage" | "changeSummary" | "hypothesis">): string {
  const text = (edit.commitMessage || edit.changeSummary || edit.hypothesis || "agent change").trim();
  const firstLine = text
    .split("\n")[0]!
    .trim()
    .replace(/^improve:\s*/i, "");
  return `improve: ${firstLine}`;
}

/**
 * The record step. Pass: commit agent/agent.ts with the run trailer and append the results.tsv row;
 * fail: restore agent/agent.ts to the last accepted commit. Safe to re-run after a crash at any point:
 * an existing trailer commit is adopted, an existing row is kept.
 */
export async function recordIteration(deps: RecordDeps): Promise<RecordOutput> {
  const { repo, gate } = deps;
  const agent = deps.agentFile ?? AGENT_FILE;
  const p = paths(deps.root, undefined, agent);
  // With other editable files, the change is all of them: restored, checked and committed together.
  const files: Paths = deps.editable && deps.editable.length > 1 ? deps.editable : agent;
  // Read first: a damaged results.tsv stops the step before anything is committed or written.
  readResults(p.results);

  if (!gate.passed) {
    crashPoint("record:before-restore");
    await repo.restoreFile(files, await repo.lastAcceptedCommit(files));
    crashPoint("record:after-restore");
    return { accepted: false, commit: null };
  }
  if (gate.valScore === null) throw new HarnessError("STEP_FAILED", "record: a passed gate has no val_score");

  const trailer = runTrailerValue(deps.runId, deps.iteration);
  let sha = await repo.findCommitByTrailer(RUN_TRAILER, trailer);
  if (!sha) {
    if (await repo.fileDiffersFromHead(files)) {
      crashPoint("record:before-commit");
      sha = await repo.commitFile(files, improveMessage(deps.edit), { key: RUN_TRAILER, value: trailer });
    } else {
      // Nothing to commit (the gate passed an unchanged agent): the row points at HEAD.
      sha = await repo.headCommit();
      if (!sha) throw new HarnessError("GIT_STATE", "record: the repository has no commits");
    }
  }
  crashPoint("record:after-commit");
  await deps.afterCommit?.(sha);

  appendResult(p.results, {
    valScore: gate.valScore,
    commit: shortSha(sha),
    evalsPassed: gate.suitePassed,
    evalsTotal: gate.suiteTotal,
    timestamp: deps.now().toISOString(),
    extra: {
      [LOOP_ITERATION_COLUMN]: String(deps.iteration),
      [REASON_COLUMN]: acceptanceReason(gate, gate.previousBest),
    },
  });
  // The results row is written, the learnings entry not yet: the learn step's window.
  crashPoint("record:after-row");
  return { accepted: true, commit: sha };
}
