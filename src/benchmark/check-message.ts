import { redact } from "../secrets.ts";
import { AGENT_FILE } from "../workspace/paths.ts";
import { agentText } from "./traces.ts";

const CHECK_LINE_MAX = 300;
const TSC_ERROR = /^(.*)\(\d+,\d+\): error TS\d+/;

/**
 * The load check's first error, bounded: a type error only when it is located in agent/agent.ts (tsc quotes
 * the files it is pointed at, so an error elsewhere could carry another file's text), anything the agent file
 * printed or threw fenced as the agent's and capped, and secrets removed.
 */
export function firstCheckError(message: string): string {
  const lines = redact(message)
    .split("\n")
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== "");
  const tsc = lines.filter((l) => TSC_ERROR.test(l));
  if (tsc.length > 0) {
    // tsc names the agent file relative to its folder or to the experiment.
    const own = tsc.find((l) => ["agent.ts", AGENT_FILE].includes(TSC_ERROR.exec(l)?.[1] ?? ""));
    const first = own ? own.slice(0, CHECK_LINE_MAX) : `a type error in a file other than ${AGENT_FILE} (not shown)`;
    const more = tsc.length > 1 ? `\n(${tsc.length - 1} more type error(s); fix this one first and check again)` : "";
    return `type error: ${first}${more}`;
  }
  // Not tsc: the import rule's or the load's first lines; stack frames say nothing the model needs.
  const shown = lines.filter((l) => !/^\s+at /.test(l)).slice(0, 2);
  return agentText(shown.join("\n"), 2 * CHECK_LINE_MAX);
}
