/**
 * The proposer's angle for a round: the plateau rule (machines/plateau.ts) read from the night's own journal.
 * Decided once per iteration and journaled before it is used, so a round re-run after a crash keeps the angle
 * it had and a restart is never decided (or counted) twice.
 */
import {
  DEFAULT_PLATEAU,
  type Forecast,
  type PlateauParams,
  plateauVerdict,
  type RoundRecord,
} from "../../machines/plateau.ts";
import { angleKey } from "../journal/pins.ts";
import type { Stores } from "../journal/stores.ts";
import { appendNote } from "../learnings/learnings.ts";
import type { Logger } from "../log.ts";

export interface Angle {
  /** This round opens a new angle: a fresh analysis without the learnings' anchoring. */
  restart: boolean;
  /** Restarts in this run so far, this one included: the next coding model and failure pattern follow it. */
  restarts: number;
  /** The coding model of this angle: `coding_models` in turn from the first restart; null: `coding_model`. */
  codingModel: string | null;
  reason: string;
  forecast: Forecast;
}

type AngleJournal = Pick<Stores, "runs" | "pins" | "ledger">;

const angleOf = (journal: Pick<Stores, "pins">, runId: string, iteration: number): Angle | null =>
  (journal.pins.fact(angleKey(runId, iteration)) as Angle | undefined) ?? null;

/** The run's finished rounds, in order, with what each cost and whether it opened an angle. */
export function roundRecords(journal: AngleJournal, runId: string, startedAt: number): RoundRecord[] {
  let last = startedAt;
  return journal.runs.iterations(runId).map((row) => {
    const finished = row.finishedAt ?? last;
    const spent = (row.summary as { spentUsd?: unknown } | null)?.spentUsd;
    const record: RoundRecord = {
      accepted: row.outcome === "accepted",
      costUsd: typeof spent === "number" ? spent : journal.ledger.spend(runId, row.iteration).totalUsd,
      durationMs: Math.max(0, finished - last),
      restart: angleOf(journal, runId, row.iteration)?.restart === true,
    };
    last = finished;
    return record;
  });
}

export interface AngleInput {
  journal: AngleJournal;
  runId: string;
  iteration: number;
  /** The night's clock, start and limits (null: none). */
  now: number;
  startedAt: number;
  deadline: number | null;
  budgetUsd: number | null;
  /** Rounds without an acceptance that make a plateau; 0 turns restarts off. */
  plateauRounds: number;
  codingModels: readonly string[];
  log: Logger;
  /** learnings.md: a restart is said there too, once. */
  learningsFile?: string;
}

/** This round's angle: the journaled one when the round was decided before, else decided and journaled now. */
export function decideAngle(o: AngleInput): Angle {
  const kept = angleOf(o.journal, o.runId, o.iteration);
  if (kept) return kept;
  const history = roundRecords(o.journal, o.runId, o.startedAt);
  const previous = o.journal.runs
    .iterations(o.runId)
    .map((row) => angleOf(o.journal, o.runId, row.iteration))
    .findLast((a) => a !== null);
  const params: PlateauParams = { ...DEFAULT_PLATEAU, rounds: o.plateauRounds };
  const spent = o.journal.ledger.spend(o.runId).totalUsd;
  const verdict = plateauVerdict(
    history,
    { usd: o.budgetUsd === null ? null : o.budgetUsd - spent, ms: o.deadline === null ? null : o.deadline - o.now },
    params,
  );
  const restart = o.plateauRounds > 0 && verdict.restart;
  const restarts = (previous?.restarts ?? 0) + (restart ? 1 : 0);
  const angle: Angle = {
    restart,
    restarts,
    codingModel:
      restarts > 0 && o.codingModels.length > 0 ? o.codingModels[(restarts - 1) % o.codingModels.length]! : null,
    reason: verdict.reason,
    forecast: verdict.forecast,
  };
  o.journal.pins.putFact(angleKey(o.runId, o.iteration), angle);
  if (restart) {
    const model = angle.codingModel ? `, coding model ${angle.codingModel}` : "";
    o.log.info(
      { forecast: angle.forecast, restarts, codingModel: angle.codingModel },
      `angle changed before iteration ${o.iteration}: ${angle.reason}; a fresh analysis without the learnings${model}`,
    );
    if (o.learningsFile) appendNote(o.learningsFile, angleMarker(o.runId, o.iteration), angleNote(o.iteration, angle));
  }
  return angle;
}

const angleMarker = (runId: string, iteration: number) => `<!-- harness:angle run=${runId} iteration=${iteration} -->`;

/** learnings.md's line for a restart. */
export function angleNote(iteration: number, angle: Angle): string {
  const model = angle.codingModel ? ` Coding model from here: ${angle.codingModel}.` : "";
  return `> **Angle changed before iteration ${iteration}:** ${angle.reason}. A fresh analysis without these learnings, on a failure pattern not tried since the last acceptance.${model}\n`;
}

/**
 * The history the coding model reads this round. On a restart it gets none of the learnings (they anchor it
 * to the angle that stalled), only the patterns earlier rounds took, so it names the next one.
 */
export function angleHistory(angle: Angle | null, learnings: string, triedPatterns: readonly string[]): string {
  if (!angle?.restart) return learnings;
  const tried = [...new Set(triedPatterns.filter((p) => p.trim() !== ""))].slice(-10);
  return [
    `Fresh angle (${angle.reason}): the learnings of earlier rounds are withheld so they do not anchor this one.`,
    ...(tried.length > 0
      ? [`Failure patterns earlier rounds addressed; take a different one: ${tried.join("; ")}`]
      : []),
  ].join("\n");
}

/** The failure patterns the run's rounds addressed, oldest first, as the learn step journaled them. */
export function triedPatterns(journal: Pick<Stores, "runs">, runId: string): string[] {
  return journal.runs.iterations(runId).flatMap((row) => {
    const pattern = (row.summary as { pattern?: unknown } | null)?.pattern;
    return typeof pattern === "string" ? [pattern] : [];
  });
}
