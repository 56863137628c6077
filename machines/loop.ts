import { assign, fromPromise, setup } from "xstate";
import type { AnalyzeOutput, EditOutput, GateOutput, RecordOutput, Steps } from "../src/contracts.ts";
import { type ErrorHandling, errorHandling } from "../src/errors.ts";
import { nextBest } from "../src/scoring.ts";
import { type Limits, stopReason } from "./stop-rules.ts";

export interface LoopInput {
  runId: string;
  /** The last iteration already recorded (0 after prepare's baseline). */
  lastIteration: number;
  bestValScore: number | null;
  limits: Limits;
  /** Tries per step before the run pauses for the operator. */
  stepAttempts: number;
}

export interface StepError {
  step: string;
  message: string;
  code: string | null;
  resumable: boolean;
  /**
   * How the loop treats it: pause until it passes (outage, disk full), stop cleanly (budget), pause for the
   * operator at once (fatal: trying again cannot help), or try the step again (then pause for the operator).
   */
  kind: ErrorHandling;
}

export interface LoopContext {
  runId: string;
  iteration: number;
  bestValScore: number | null;
  limits: Limits;
  stepAttempts: number;
  /** Failed tries of the current step. */
  attempt: number;
  finished: number;
  flat: number;
  accepted: number;
  rejected: number;
  noChange: number;
  spentUsd: number;
  stopReason: string | null;
  lastError: StepError | null;
  /** The step to go back to when a paused run is resumed. */
  pausedIn: string | null;
  // Facts of the iteration in progress; reset when it starts.
  trainScore: number | null;
  /** Analyze's findings, for the edit. Absent in snapshots persisted before it was kept here. */
  analysis?: AnalyzeOutput | null;
  bestBefore: number | null;
  edit: EditOutput | null;
  gate: GateOutput | null;
  record: RecordOutput | null;
}

export type LoopEvent =
  | { type: "RESUME" }
  /** A resumed run takes its limits from the config as it is now: the operator may have raised them. */
  | { type: "SET_LIMITS"; limits: Limits; stepAttempts: number };

/** Placeholders: the daemon and the tests supply the real steps with `machine.provide({ actors })`. */
function notProvided<K extends keyof Steps>(name: K) {
  return fromPromise<Awaited<ReturnType<Steps[K]>>, Parameters<Steps[K]>[0]>(async () => {
    throw new Error(`step "${name}" was not provided`);
  });
}

const STEPS_WITH_PAUSE = ["check", "benchmark", "analyze", "edit", "gate", "record", "learn", "summarize"] as const;

function errorOf(event: unknown): unknown {
  return event && typeof event === "object" && "error" in event ? event.error : event;
}

function toStepError(step: string, error: unknown): StepError {
  const e = error as { message?: unknown; code?: unknown } | null;
  const code = e && typeof e.code === "string" ? e.code : null;
  const kind = errorHandling(error);
  return {
    step,
    message: e && typeof e.message === "string" ? e.message : String(error),
    code,
    resumable: kind === "resumable",
    kind,
  };
}

export const loopMachine = setup({
  types: {
    context: {} as LoopContext,
    input: {} as LoopInput,
    events: {} as LoopEvent,
  },
  actors: {
    check: notProvided("check"),
    benchmark: notProvided("benchmark"),
    analyze: notProvided("analyze"),
    edit: notProvided("edit"),
    gate: notProvided("gate"),
    record: notProvided("record"),
    learn: notProvided("learn"),
    summarize: notProvided("summarize"),
  },
  guards: {
    resumable: ({ event }) => errorHandling(errorOf(event)) === "resumable",
    budgetExhausted: ({ event }) => errorHandling(errorOf(event)) === "budget",
    canRetry: ({ context, event }) =>
      errorHandling(errorOf(event)) === "retryable" && context.attempt + 1 < context.stepAttempts,
    pausedIn: ({ context }, step: string) => context.pausedIn === step,
  },
  actions: {
    pause: assign(({ event }, step: string) => ({ lastError: toStepError(step, errorOf(event)), pausedIn: step })),
    retry: assign(({ context, event }, step: string) => ({
      attempt: context.attempt + 1,
      lastError: toStepError(step, errorOf(event)),
    })),
    stopForBudget: assign(({ event }, step: string) => {
      const error = toStepError(step, errorOf(event));
      return { lastError: error, stopReason: error.message, attempt: 0 };
    }),
    unpause: assign({ pausedIn: null, attempt: 0 }),
  },
}).createMachine({
  id: "loop",
  context: ({ input }) => ({
    runId: input.runId,
    iteration: input.lastIteration,
    bestValScore: input.bestValScore,
    limits: input.limits,
    stepAttempts: input.stepAttempts,
    attempt: 0,
    finished: 0,
    flat: 0,
    accepted: 0,
    rejected: 0,
    noChange: 0,
    spentUsd: 0,
    stopReason: null,
    lastError: null,
    pausedIn: null,
    trainScore: null,
    analysis: null,
    bestBefore: null,
    edit: null,
    gate: null,
    record: null,
  }),
  initial: "check",
  // Targetless, so the step in progress keeps running; the next stop check sees the new limits.
  on: {
    SET_LIMITS: {
      actions: assign(({ event }) => ({ limits: event.limits, stepAttempts: event.stepAttempts })),
    },
  },
  states: {
    check: {
      invoke: {
        src: "check",
        input: ({ context }) => ({ runId: context.runId, iteration: context.iteration }),
        onDone: [
          {
            guard: ({ context, event }) =>
              stopReason(context.limits, { finished: context.finished, flat: context.flat }, event.output) !== null,
            target: "summarize",
            actions: assign(({ context, event }) => ({
              spentUsd: event.output.spentUsd,
              attempt: 0,
              stopReason: stopReason(context.limits, { finished: context.finished, flat: context.flat }, event.output),
            })),
          },
          {
            target: "benchmark",
            actions: assign(({ context, event }) => ({
              spentUsd: event.output.spentUsd,
              attempt: 0,
              iteration: context.iteration + 1,
              bestBefore: context.bestValScore,
              trainScore: null,
              analysis: null,
              edit: null,
              gate: null,
              record: null,
            })),
          },
        ],
        onError: stepErrorTransitions("check"),
      },
    },
    benchmark: {
      invoke: {
        src: "benchmark",
        input: ({ context }) => ({ runId: context.runId, iteration: context.iteration }),
        onDone: {
          target: "analyze",
          actions: assign(({ event }) => ({ trainScore: event.output.trainScore, attempt: 0 })),
        },
        onError: stepErrorTransitions("benchmark"),
      },
    },
    analyze: {
      invoke: {
        src: "analyze",
        input: ({ context }) => ({
          runId: context.runId,
          iteration: context.iteration,
          trainScore: context.trainScore,
        }),
        onDone: { target: "edit", actions: assign(({ event }) => ({ analysis: event.output, attempt: 0 })) },
        onError: stepErrorTransitions("analyze"),
      },
    },
    edit: {
      invoke: {
        src: "edit",
        input: ({ context }) => ({
          runId: context.runId,
          iteration: context.iteration,
          trainScore: context.trainScore,
          analysis: context.analysis ?? null,
        }),
        onDone: [
          {
            guard: ({ event }) => event.output.changed,
            target: "gate",
            actions: assign(({ event }) => ({ edit: event.output, attempt: 0 })),
          },
          {
            // Nothing changed: there is nothing to gate or record.
            target: "learn",
            actions: assign(({ context, event }) => ({
              edit: event.output,
              attempt: 0,
              noChange: context.noChange + 1,
            })),
          },
        ],
        onError: stepErrorTransitions("edit"),
      },
    },
    gate: {
      invoke: {
        src: "gate",
        input: ({ context }) => ({
          runId: context.runId,
          iteration: context.iteration,
          bestValScore: context.bestValScore,
          edit: context.edit,
        }),
        onDone: { target: "record", actions: assign(({ event }) => ({ gate: event.output, attempt: 0 })) },
        onError: stepErrorTransitions("gate"),
      },
    },
    record: {
      invoke: {
        src: "record",
        input: ({ context }) => ({
          runId: context.runId,
          iteration: context.iteration,
          edit: context.edit!,
          gate: context.gate!,
        }),
        onDone: {
          target: "learn",
          actions: assign(({ context, event }) => {
            const valScore = context.gate?.valScore ?? null;
            const accepted = event.output.accepted;
            const best = nextBest(context.bestValScore, valScore, accepted);
            return {
              record: event.output,
              attempt: 0,
              accepted: context.accepted + (accepted ? 1 : 0),
              rejected: context.rejected + (accepted ? 0 : 1),
              bestValScore: best,
            };
          }),
        },
        onError: stepErrorTransitions("record"),
      },
    },
    learn: {
      invoke: {
        src: "learn",
        input: ({ context }) => ({
          runId: context.runId,
          iteration: context.iteration,
          edit: context.edit,
          gate: context.gate,
          record: context.record,
          bestBefore: context.bestBefore,
          trainScore: context.trainScore,
        }),
        onDone: {
          target: "check",
          actions: assign(({ context }) => {
            // A rule that judges improvement itself says so; otherwise a new best val_score is the measure.
            const judged = context.gate?.improved;
            const improved =
              judged !== undefined
                ? judged && context.record?.accepted === true
                : context.bestValScore !== null &&
                  (context.bestBefore === null || context.bestValScore > context.bestBefore);
            return { attempt: 0, finished: context.finished + 1, flat: improved ? 0 : context.flat + 1 };
          }),
        },
        onError: stepErrorTransitions("learn"),
      },
    },
    summarize: {
      invoke: {
        src: "summarize",
        input: ({ context }) => ({
          runId: context.runId,
          stopReason: context.stopReason ?? "stopped",
          bestValScore: context.bestValScore,
          accepted: context.accepted,
          rejected: context.rejected,
          iterations: context.finished,
        }),
        onDone: { target: "done" },
        onError: stepErrorTransitions("summarize"),
      },
    },
    /** The run cannot go on now (API outage, infrastructure failure); `resume` sends RESUME. */
    paused: {
      on: {
        RESUME: [
          ...STEPS_WITH_PAUSE.map((step) => ({
            guard: { type: "pausedIn", params: step } as const,
            target: step,
            actions: "unpause" as const,
          })),
          { target: "check", actions: "unpause" as const },
        ],
      },
    },
    done: { type: "final" },
    failed: { type: "final" },
  },
});

function stepErrorTransitions(step: string) {
  return [
    // The budget is a stop rule like the others: the run ends cleanly, with its closing summary.
    ...(step === "summarize"
      ? []
      : [{ guard: "budgetExhausted", target: "summarize", actions: { type: "stopForBudget", params: step } } as const]),
    { guard: "resumable", target: "paused", actions: { type: "pause", params: step } },
    { guard: "canRetry", target: step, reenter: true, actions: { type: "retry", params: step } },
    // A fatal error, or retries used up: the operator fixes the cause and `resume` continues from this step.
    // Never the terminal `failed`, which a fixed environment could not leave.
    { target: "paused", actions: { type: "pause", params: step } },
  ] as const;
}

export type LoopMachine = typeof loopMachine;
export type LoopStateValue = keyof typeof loopMachine.config.states;

/** Names snapshots persisted before the states were named after their steps still use. */
const RENAMED_STATES: Record<string, string> = { closing: "summarize" };
const RENAMED_ACTORS: Record<string, string> = { observe: "check" };

/**
 * A persisted snapshot as this machine reads it: one journaled before `closing` became `summarize` and the
 * `observe` actor became `check` resumes where it was. Pure; a current snapshot comes back unchanged.
 */
export function upgradeSnapshot(persisted: unknown): unknown {
  if (!persisted || typeof persisted !== "object") return persisted;
  const s = persisted as { value?: unknown; children?: Record<string, { src?: unknown }> };
  const value = typeof s.value === "string" ? (RENAMED_STATES[s.value] ?? s.value) : s.value;
  const children = Object.fromEntries(
    Object.entries(s.children ?? {}).map(([id, child]) => {
      const state = id.split(".").at(-1) ?? "";
      const renamedId = RENAMED_STATES[state] ? `${id.slice(0, -state.length)}${RENAMED_STATES[state]}` : id;
      const src = typeof child.src === "string" ? (RENAMED_ACTORS[child.src] ?? child.src) : child.src;
      return [renamedId, { ...child, src }];
    }),
  );
  return { ...s, value, ...(s.children ? { children } : {}) };
}
