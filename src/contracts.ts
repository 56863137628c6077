/**
 * What each step of the loop takes and returns. Types only: the machine imports these,
 * the daemon's step implementations satisfy them. Everything here is small and serialisable,
 * because it lands in the machine's context and the journal; traces never do.
 */

export interface StepInput {
  runId: string;
  iteration: number;
}

export interface BenchmarkOutput {
  agentHash: string;
  /** Mean train reward, nulls excluded; null when every task was an infrastructure error. */
  trainScore: number | null;
  passed: number;
  total: number;
}

export interface AnalyzeOutput {
  /** Short names of the failure patterns the coding agent saw. */
  patterns: string[];
  /** Evidence and ideas for the edit phase (task ids, trace lines); bounded, no traces. */
  notes?: string;
}

/** The edit works from what this iteration's benchmark and analysis found, passed by the machine. */
export interface EditInput extends StepInput {
  trainScore: number | null;
  analysis: AnalyzeOutput | null;
}

export interface EditOutput {
  changed: boolean;
  hypothesis: string;
  changeSummary: string;
  commitMessage: string;
  pattern: string;
  needsFromHuman: string;
  /**
   * A round of several candidates: each one's edit, made in its own copy of the agent. The fields above are
   * then the first changed candidate's, and `changed` says whether any candidate changed anything.
   */
  candidates?: CandidateEdit[];
}

/** One candidate of a round: its own edit of its own copy of the agent. */
export interface CandidateEdit extends Omit<EditOutput, "candidates"> {
  /** The arm id the gate races it under (c1, c2, …). */
  id: string;
  /** A runner-up of an earlier round re-gated against the new champion: the round it came from. */
  regatedFrom?: number;
}

/** A paired first-pass improvement over the incumbent (same tasks, same batch) with its 95% interval. */
export interface Improvement {
  mean: number;
  low: number;
  high: number;
  tasks: number;
}

/** Where one candidate of a round stopped, and why. */
export interface CandidateOutcome {
  id: string;
  /** winner: accepted; runner-up: beat the incumbent but another won (re-gated next round); rejected. */
  verdict: "winner" | "runner-up" | "rejected";
  stage: string;
  reason: string;
  valScore: number | null;
  improvement: Improvement | null;
}

export interface GateOutput {
  passed: boolean;
  valScore: number | null;
  previousBest: number | null;
  suitePassed: number;
  suiteTotal: number;
  promoted: string[];
  /** One reason per failed gate step; empty when passed. */
  reasons: string[];
  /** Which rule decided (absent: the original). */
  rule?: string;
  /**
   * The rule judged the accepted change a real improvement (whatever its one pass scored against the best so
   * far); absent: the loop compares val_score with the best, as the original does.
   */
  improved?: boolean;
  /** The accepted candidate's id (null: none); the candidates of the round and where each stopped. */
  winner?: string | null;
  candidates?: CandidateOutcome[];
  /** The accepted candidate's paired first-pass improvement over the incumbent, with its interval. */
  improvement?: Improvement | null;
  /** Why the winner of a race of several candidates won, in one line (null: no race, or nothing accepted). */
  why?: string | null;
  /** `bayes`: posterior probability that the edit is a real improvement (and that it is harmful). */
  pGood?: number | null;
  pBad?: number | null;
  /** Where the gate stopped: train, look, full, rerun (extra), budget, infra (or a pre-benchmark step). */
  stage?: string;
  /** Held-out task runs this gate spent. */
  testRuns?: number;
  /** Things the operator should know (a record restored from the journal, a changed threshold). */
  notes?: string[];
}

export interface RecordOutput {
  accepted: boolean;
  commit: string | null;
}

export interface LearnOutput {
  written: boolean;
}

/** What the stop check observes of the world: the clock, the ledger and the operator. */
export interface Observation {
  now: number;
  spentUsd: number;
  stopRequested: boolean;
}

export interface RecordInput extends StepInput {
  edit: EditOutput;
  gate: GateOutput;
}

export interface LearnInput extends StepInput {
  edit: EditOutput | null;
  gate: GateOutput | null;
  record: RecordOutput | null;
  bestBefore: number | null;
  trainScore: number | null;
}

export interface SummarizeInput {
  runId: string;
  stopReason: string;
  bestValScore: number | null;
  accepted: number;
  rejected: number;
  iterations: number;
}

/**
 * The step implementations, one per actor of the loop machine; each must be idempotent in
 * (run, iteration, inputs). The machine derives its actors' input and output types from this.
 */
export interface Steps {
  check(input: StepInput, signal: AbortSignal): Promise<Observation>;
  benchmark(input: StepInput, signal: AbortSignal): Promise<BenchmarkOutput>;
  analyze(input: StepInput & { trainScore: number | null }, signal: AbortSignal): Promise<AnalyzeOutput>;
  edit(input: EditInput, signal: AbortSignal): Promise<EditOutput>;
  /** `edit`: the round's edit, whose candidates the gate races (absent in snapshots from before races). */
  gate(
    input: StepInput & { bestValScore: number | null; edit?: EditOutput | null },
    signal: AbortSignal,
  ): Promise<GateOutput>;
  record(input: RecordInput, signal: AbortSignal): Promise<RecordOutput>;
  learn(input: LearnInput, signal: AbortSignal): Promise<LearnOutput>;
  summarize(input: SummarizeInput, signal: AbortSignal): Promise<LearnOutput>;
}
