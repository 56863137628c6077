import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Adapter } from "../benchmark/adapters/types.ts";
import type { Repo } from "../git/repo.ts";
import { listEditable } from "../workspace/editable.ts";
import { readSplit, type SplitFile } from "../workspace/files.ts";
import { checkHardcoding, type HardcodeVerdict, type HeldOutTasks, inputStrings } from "./hardcode.ts";

/**
 * What the hard-coding check compares a candidate against: the held-out ids and, where the harness holds the
 * tasks itself, their inputs and the train inputs. A `command` benchmark's inputs live in the external
 * program, so only its ids are checked.
 */
export async function loadHeldOut(
  adapter: Adapter,
  split: { train: string[]; test: string[]; holdout?: string[] },
): Promise<HeldOutTasks> {
  // The sealed holdout is held out too: no more to be hard-coded than the test split.
  const held = [...split.test, ...(split.holdout ?? [])];
  // The train tasks too: a table of their ids or a copy of their inputs is memorisation (the coding model
  // reads the scorer's verdicts on them), refused as such and never promoted into the suite.
  if (adapter.kind === "command")
    return { ids: held, inputs: [], trainInputs: [], trainTasks: split.train.map((id) => ({ id, inputs: [] })) };
  const byTask = async (ids: string[]) =>
    ids.length === 0
      ? []
      : [...(await adapter.loadTasks(ids)).entries()].map(([id, t]) => ({
          id,
          inputs: inputStrings(t.agentTask.input),
        }));
  const train = await byTask(split.train);
  return {
    ids: held,
    inputs: (await byTask(held)).flatMap((t) => t.inputs),
    trainInputs: train.flatMap((t) => t.inputs),
    trainTasks: train,
  };
}

/**
 * The check on a copy's editable files (`specs`; the copy's root at `root`) against the last accepted ones:
 * what the change added, in any of them, counts.
 */
export async function hardcodeVerdictFor(
  repo: Repo,
  specs: readonly string[],
  root: string,
  heldOut: HeldOutTasks,
): Promise<HardcodeVerdict> {
  const accepted = await repo.lastAcceptedCommit(specs);
  const files = listEditable(root, specs);
  const before = await Promise.all(files.map(async (f) => (await repo.fileAtCommit(accepted, f)) ?? ""));
  return checkHardcoding({
    candidate: files.map((f) => readFileSync(join(root, f), "utf8")).join("\n"),
    accepted: before.join("\n"),
    heldOut,
  });
}

/**
 * The experiment's held-out tasks (test split and sealed holdout), through the benchmark's adapter: from the
 * split the journal pins when the gate has it, else split.json.
 */
export const heldOutOf =
  (adapter: Adapter, splitFile: string) =>
  async (pinned: SplitFile | null = null): Promise<HeldOutTasks> => {
    const split = pinned ?? readSplit(splitFile);
    return split ? loadHeldOut(adapter, split) : { ids: [], inputs: [], trainInputs: [] };
  };
