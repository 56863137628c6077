import { type Actor, createActor, fromPromise, type SnapshotFrom } from "xstate";
import { type LoopContext, type LoopInput, loopMachine, upgradeSnapshot } from "../../machines/loop.ts";
import { type Limits, limitChanges } from "../../machines/stop-rules.ts";
import type { Clock } from "../clock.ts";
import type { RecordInput, RecordOutput, Steps } from "../contracts.ts";
import { crashPoint, stopPoint } from "../crash-point.ts";
import { classifyFault, errorMessage, HarnessError } from "../errors.ts";
import type { RunStatus, RunStore } from "../journal/stores.ts";
import type { Logger, LogPlace } from "../log.ts";
import { acceptanceReason } from "../verdicts.ts";

export type { Steps } from "../contracts.ts";

type StepKey = keyof Steps;
const STEP_KEYS: readonly StepKey[] = ["check", "benchmark", "analyze", "edit", "gate", "record", "learn", "summarize"];
const isStep = (state: string): state is StepKey => (STEP_KEYS as readonly string[]).includes(state);
/** How long a stop waits for the aborted step to land the reply it was paying for (its calls drain 2.5 s). */
const STEP_DRAIN_MS = 3_000;

export interface DaemonDeps {
  journal: RunStore;
  log: Logger;
  place: LogPlace;
  steps: Steps;
  clock: Clock;
  /** Backoff before re-running a step whose last try failed: base · 2^(tries-1), capped. */
  retryBaseMs?: number;
  retryMaxMs?: number;
}

export type LoopSnapshot = SnapshotFrom<typeof loopMachine>;

export interface DaemonResult {
  status: RunStatus;
  state: string;
  context: LoopContext;
  /**
   * The journal could not take the transition (disk full, read-only, I/O error, damage): the daemon stopped
   * where it was, the journal holds the state from before, and `resume` runs the interrupted step again.
   */
  fault?: HarnessError;
}

/** Maps the machine's state to the run's status in the journal. */
function statusOf(snapshot: LoopSnapshot): RunStatus {
  if (snapshot.value === "done") return "done";
  if (snapshot.value === "failed") return "failed";
  if (snapshot.value === "paused") return "paused";
  return "running";
}

/**
 * Drives one run of the loop machine to a stop: done, failed, paused, or shut down.
 * Each transition is persisted with the outcome of the step that caused it in one transaction.
 */
export class Daemon {
  private actor: Actor<typeof loopMachine> | null = null;
  private ended: {
    iteration: number;
    step: string;
    status: "done" | "failed";
    outcome?: unknown;
    error?: string;
  } | null = null;
  private closing: Promise<void> | null = null;
  private stopping = false;
  /** The first step after a restore was interrupted, not started by a transition. */
  private restoring = false;
  /** The step running now, settled either way: a stop waits a moment for it. */
  private running: Promise<unknown> = Promise.resolve();
  /** The state last persisted: a transition that stays in it (new limits) starts no step. */
  private lastState: string | null = null;
  private settle: ((result: DaemonResult) => void) | null = null;
  private readonly runId: string;

  constructor(
    runId: string,
    private readonly deps: DaemonDeps,
  ) {
    this.runId = runId;
  }

  private wrap<K extends StepKey>(key: K) {
    const { journal, log, place, clock } = this.deps;
    // State, actor and journal step share one name.
    const journalStep = key;
    const impl = this.deps.steps[key] as (input: unknown, signal: AbortSignal) => Promise<unknown>;
    return fromPromise(async ({ input, signal }: { input: unknown; signal: AbortSignal }) => {
      // Let the transition that started us commit first (it marks this step started in the same transaction).
      await Promise.resolve();
      const iteration = (input as { iteration?: number }).iteration ?? this.actor?.getSnapshot().context.iteration ?? 0;
      const row = journal.getStep(this.runId, iteration, journalStep);
      place.iteration = iteration;
      place.step = journalStep;
      let attempts = row?.attempts ?? 1;
      if (this.restoring || row?.status !== "started") {
        // Restored from the journal after a crash or stop: xstate runs the interrupted step again, and says so here.
        this.restoring = false;
        attempts = journal.stepStarted(this.runId, iteration, journalStep);
        log.info({ attempts }, `${journalStep} runs again after a restart`);
      } else if (attempts > 1 && row.error) {
        const base = this.deps.retryBaseMs ?? 1000;
        const wait = Math.min(this.deps.retryMaxMs ?? 60_000, base * 2 ** (attempts - 2));
        log.warn({ attempts, waitMs: wait, lastError: row.error }, `retrying ${journalStep}`);
        await clock.sleep(wait, signal);
      }
      log.info({ attempts }, `${journalStep} started`);
      const started = clock.monotonic();
      try {
        const running = impl(input, signal);
        this.running = running.catch(() => {});
        const output = await running;
        this.ended = { iteration, step: journalStep, status: "done", outcome: output };
        log.info({ ms: clock.monotonic() - started }, `${journalStep} done`);
        if (key === "record" && (output as RecordOutput).accepted) {
          const { gate } = input as RecordInput;
          const reason = acceptanceReason(gate, gate.previousBest);
          log.info({ reason, commit: (output as RecordOutput).commit }, `accepted: ${reason}`);
        }
        return output;
      } catch (raw) {
        const error = classifyFault(raw) ?? raw;
        if (!signal.aborted) {
          this.ended = { iteration, step: journalStep, status: "failed", error: errorMessage(error) };
          log.error({ err: error, ms: clock.monotonic() - started }, `${journalStep} failed: ${errorMessage(error)}`);
        }
        throw error;
      }
    });
  }

  private machine() {
    return loopMachine.provide({
      actors: {
        check: this.wrap("check"),
        benchmark: this.wrap("benchmark"),
        analyze: this.wrap("analyze"),
        edit: this.wrap("edit"),
        gate: this.wrap("gate"),
        record: this.wrap("record"),
        learn: this.wrap("learn"),
        summarize: this.wrap("summarize"),
      } as never,
    });
  }

  private persist(snapshot: LoopSnapshot): void {
    if (!this.actor || this.stopping) return;
    const context = snapshot.context;
    const status = statusOf(snapshot);
    const state = String(snapshot.value);
    crashPoint("transition:before-commit");
    try {
      this.deps.journal.commitTransition({
        runId: this.runId,
        snapshot: this.actor.getPersistedSnapshot(),
        state,
        iteration: context.iteration,
        bestValScore: context.bestValScore,
        accepted: context.accepted,
        rejected: context.rejected,
        status,
        ...(status === "done" ? { stopReason: context.stopReason } : {}),
        ...(context.lastError && this.ended?.status === "failed" ? { lastError: context.lastError.message } : {}),
        ...(this.ended ? { ended: this.ended } : {}),
        ...(isStep(state) && (this.ended || state !== this.lastState)
          ? { started: { iteration: context.iteration, step: state } }
          : {}),
      });
    } catch (raw) {
      this.haltOnFault(raw, snapshot);
      return;
    }
    crashPoint("transition:after-commit");
    if (isStep(state) && state !== this.lastState) stopPoint(state);
    this.ended = null;
    this.lastState = state;
    this.deps.place.iteration = context.iteration;
    if (status !== "running") {
      this.deps.place.step = null;
      this.deps.log.info({ state, stopReason: context.stopReason, lastError: context.lastError }, `run ${status}`);
      this.settle?.({ status, state, context });
    }
  }

  /** The journal refused a transition: stop at once, taking no further step on an unrecorded state. */
  private haltOnFault(raw: unknown, snapshot: LoopSnapshot): void {
    // Journal writes arrive typed already (STORAGE_FAILURE, JOURNAL_CORRUPT); anything else is a bug.
    const fault =
      raw instanceof HarnessError && (raw.code === "STORAGE_FAILURE" || raw.code === "JOURNAL_CORRUPT")
        ? raw
        : classifyFault(raw);
    this.stopping = true;
    try {
      this.actor?.stop();
    } catch {
      // Stopping is best effort here; nothing more is written either way.
    }
    try {
      this.deps.log.error({ err: raw }, `the journal could not record the transition: ${errorMessage(fault ?? raw)}`);
    } catch {
      // The log may sit on the same full disk.
    }
    if (!fault) throw raw;
    this.settle?.({ status: "paused", state: String(snapshot.value), context: snapshot.context, fault });
  }

  /** Starts a fresh run, or continues a persisted one (a paused run is sent RESUME). */
  start(from: { input: LoopInput } | { snapshot: unknown }): Promise<DaemonResult> {
    const done = new Promise<DaemonResult>((resolve) => {
      this.settle = resolve;
    });
    const machine = this.machine();
    this.deps.place.runId = this.runId;
    const actor =
      "input" in from
        ? createActor(machine, { input: from.input })
        : createActor(machine, { snapshot: upgradeSnapshot(from.snapshot), input: undefined } as never);
    this.actor = actor;
    this.restoring = !("input" in from) && (from.snapshot as { value?: unknown } | null)?.value !== "paused";
    this.lastState = "input" in from ? null : String(actor.getSnapshot().value);
    actor.start();
    // Subscribed after start: a restored snapshot is already in the journal, and no step can finish synchronously.
    actor.subscribe({
      next: (snapshot) => this.persist(snapshot),
      error: (error) => {
        this.deps.log.error({ err: error }, "state machine error: this is a bug");
        this.deps.journal.setRunStatus(this.runId, "failed", { lastError: `internal: ${errorMessage(error)}` });
        this.settle?.({ status: "failed", state: "failed", context: actor.getSnapshot().context });
      },
    });
    const snapshot = actor.getSnapshot();
    if (snapshot.value === "paused") {
      this.deps.log.info({ pausedIn: snapshot.context.pausedIn }, "resuming a paused run");
      actor.send({ type: "RESUME" });
    } else if ("input" in from || snapshot.status === "done") {
      this.persist(snapshot);
    }
    return done;
  }

  /**
   * Replaces the run's limits (after `start` from a snapshot: the config may have changed since).
   * Returns what changed, as "name before -> after".
   */
  setLimits(limits: Limits, stepAttempts: number): string[] {
    const actor = this.actor;
    if (actor?.getSnapshot().status !== "active") return [];
    const changed = limitChanges(actor.getSnapshot().context.limits, limits);
    actor.send({ type: "SET_LIMITS", limits, stepAttempts });
    return changed;
  }

  snapshot(): LoopSnapshot | null {
    return this.actor?.getSnapshot() ?? null;
  }

  /**
   * Stops taking new work and aborts the step in flight; the journal keeps the state from before it,
   * so `resume` runs that step again. Idempotent: a second call returns the same promise.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.stopping = true;
    this.closing = (async () => {
      const actor = this.actor;
      const snapshot = actor?.getSnapshot();
      try {
        actor?.stop();
      } catch (error) {
        this.deps.log.error({ err: error }, "stopping the state machine failed");
      }
      // The aborted step may still be landing a paid reply (its calls drain for a moment): let it journal it.
      const waited = new AbortController();
      await Promise.race([this.running, this.deps.clock.sleep(STEP_DRAIN_MS, waited.signal).catch(() => {})]);
      waited.abort();
      if (snapshot && snapshot.status === "active" && snapshot.value !== "paused") {
        try {
          this.deps.journal.setRunStatus(this.runId, "stopped");
        } catch (error) {
          this.deps.log.error({ err: error }, "could not mark the run stopped");
        }
        this.settle?.({ status: "stopped", state: String(snapshot.value), context: snapshot.context });
      }
    })();
    return this.closing;
  }
}
