/**
 * The class of a task's infrastructure error ("HTTP 401", "connection refused"…): no task content, so it
 * may be shown for test tasks too, where the error text itself stays private.
 */
const CLASSES: [RegExp, (m: RegExpMatchArray) => string][] = [
  [/LLM API (?:answered|error:) (\d{3})\b/, (m) => `HTTP ${m[1]}`],
  [/ECONNREFUSED|connection refused/i, () => "connection refused"],
  [/ENOTFOUND|EAI_AGAIN|getaddrinfo/, () => "DNS lookup failed"],
  [/ECONNRESET/, () => "connection reset"],
  [/ENETUNREACH|EHOSTUNREACH/, () => "network unreachable"],
  [/ETIMEDOUT|UND_ERR_CONNECT_TIMEOUT|timed out/i, () => "timeout"],
  [/LLM (?:API error|request failed|response broke off)/, () => "connection error"],
  [/agent process crashed/, () => "agent process crashed"],
  [/^scorer failed/, () => "scorer failed"],
  [/^benchmark env failed/, () => "benchmark env failed"],
  [/exit code (\d+)/, (m) => `command exited ${m[1]}`],
  [/no result for this task/, () => "no result for the task"],
];

export function infraClass(error: string | null | undefined): string {
  if (!error) return "unknown";
  for (const [re, name] of CLASSES) {
    const m = error.match(re);
    if (m) return name(m);
  }
  return "other";
}

/** "48 HTTP 401, 2 timeout", most frequent first. */
export function describeClasses(counts: Map<string, number>): string {
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .map(([name, n]) => `${n} ${name}`)
    .join(", ");
}

/** Refusals no retry or wait can fix: a bad key, an unknown model, a malformed request. */
export function allNonTransient(counts: Map<string, number>): boolean {
  return counts.size > 0 && [...counts.keys()].every((c) => /^HTTP (400|401|403|404)$/.test(c));
}
