/**
 * What makes a steering edit unusable, checked before it is committed and pinned: a config that does not load
 * (the next start would exit 2 on it, which pm2 does not restart), or a PROGRAM.md the coding agent's system
 * prompt cannot take. One message per problem, each naming the field and the fix.
 */
import { parseConfigText } from "../config/load.ts";

/** More than this and PROGRAM.md would crowd the coding agent's context out. */
export const PROGRAM_MAX_CHARS = 100_000;

export function steeringProblems(file: string, text: Buffer): string[] {
  if (file === "experiment_config.yaml") return parseConfigText(text.toString("utf8")).errors;
  if (file !== "PROGRAM.md") return [];
  const program = text.toString("utf8");
  if (!Buffer.from(program, "utf8").equals(text)) return ["PROGRAM.md: not UTF-8 text; save it as UTF-8"];
  if (program.trim() === "") {
    return ["PROGRAM.md: empty; write what the coding agent should aim for (the goal, what to try, what never to do)"];
  }
  if (program.length > PROGRAM_MAX_CHARS) {
    return [
      `PROGRAM.md: ${program.length} characters, more than the ${PROGRAM_MAX_CHARS} the coding agent's system prompt takes; shorten it`,
    ];
  }
  return [];
}

/** The journal fact that holds a steering file's last rejected edit (null once a later edit is accepted). */
export const rejectedSteeringKey = (file: string): string => `steering_rejected:${file}`;

export interface RejectedSteering {
  file: string;
  sha256: string;
  /** Each problem as `field: what is wrong; the fix`. */
  problems: string[];
  /** Where the rejected text is kept, relative to the experiment. */
  keptAt: string;
  at: string;
}
