/**
 * A task's failure class, as data from where it is known: the model proxy knows "HTTP 429 from the
 * endpoint", the pool knows "agent process crashed", the scorer's wrapper knows "scorer threw". A class
 * holds no task content, so it may be shown for test tasks too, where the error text itself stays private.
 */
import { HarnessError } from "../errors.ts";

/** The harness's side failed (reward null): the endpoint, the benchmark's env, the command, the queue. */
export type InfraClass = string;

/** Refusals no retry or wait can fix: the harness's key is refused. */
const NON_TRANSIENT = new Set(["HTTP 401", "HTTP 403"]);

/** The agent's failure (reward 0) as the harness decided it; "scorer threw" asks whether the benchmark is at fault. */
export type AgentFailure =
  | "agent threw"
  | "timeout"
  | "agent process crashed"
  | "channel broken"
  | "limit"
  | "scorer threw";

/** "48 HTTP 401, 2 timeout", most frequent first. */
export function describeClasses(counts: Map<InfraClass, number>): string {
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .map(([name, n]) => `${n} ${name}`)
    .join(", ");
}

/** Every failure was the endpoint refusing the harness's key: waiting will not help. */
export function allNonTransient(counts: Map<InfraClass, number>): boolean {
  return counts.size > 0 && [...counts.keys()].every((c) => NON_TRANSIENT.has(c));
}

/** A failure of the harness's side raised with its class, so that no one parses the message for it. */
export class InfraFailure extends HarnessError {
  constructor(
    readonly infraClass: InfraClass,
    message: string,
  ) {
    super("INFRA_FAILURE", message);
  }
}
