export {
  type CandidateSession,
  type CodingAgent,
  type CodingAgentLimits,
  type CodingAgentLog,
  type CodingAgentOptions,
  canonicalJson,
  createCodingAgent,
  type IterationRef,
  promptHash,
} from "./agent.ts";
export { checkRead, checkWrite, normalizeRelPath } from "./sandbox.ts";
export { type CheckAgent, EDITOR_TOOL, toolDeclarations } from "./tools.ts";
