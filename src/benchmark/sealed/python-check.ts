/**
 * A Python agent's static check: it must compile. Compiling parses the file without running any of
 * it, so it is safe outside the sandbox; the import (the agent's code running) happens sealed, in
 * the load check's agent process (load-check.ts).
 */
import { execFile } from "node:child_process";
import { resolve } from "node:path";

type CheckResult = { ok: true } | { ok: false; message: string };

import { pythonFor } from "./sandbox.ts";

const COMPILE = "import sys; compile(open(sys.argv[1], encoding='utf-8').read(), sys.argv[1], 'exec')";

export function compilePython(agentFile: string, timeoutMs = 60_000): Promise<CheckResult> {
  let python: string;
  try {
    python = pythonFor("none");
  } catch (error) {
    return Promise.resolve({ ok: false, message: (error as Error).message });
  }
  return new Promise((done) => {
    execFile(
      python,
      ["-I", "-B", "-c", COMPILE, resolve(agentFile)],
      { timeout: timeoutMs, env: {} },
      (error, _stdout, stderr) => {
        if (!error) return done({ ok: true });
        // Not the agent's fault: the interpreter itself did not start.
        if (typeof error.code === "string") {
          return done({ ok: false, message: `cannot start ${python} to compile the agent: ${error.message}` });
        }
        const text = stderr.trim() || error.message;
        // The traceback's last lines name the file, line and the syntax error.
        done({ ok: false, message: `syntax errors in the agent:\n${text.split("\n").slice(-6).join("\n")}` });
      },
    );
  });
}
