/**
 * The load check of a Python agent file: it must compile, and (when the harness runs it) import and
 * expose `run(task, ctx)` or a class with one. Standard-library Python only; a `command` benchmark's
 * agent is imported by the external tool in its own environment, so there it is only compiled.
 */
import { execFile } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { CheckResult } from "./load-check.ts";

export const PYTHON_RUNTIME = resolve(dirname(fileURLToPath(import.meta.url)), "python", "harness_runtime.py");

export const pythonExecutable = (): string => process.env.AUTO_HARNESS_PYTHON ?? "python3";

export function checkPythonAgent(
  agentFile: string,
  opts: { importIt: boolean; timeoutMs?: number },
): Promise<CheckResult> {
  const args = opts.importIt
    ? [PYTHON_RUNTIME, "--check", resolve(agentFile)]
    : [
        "-c",
        'import sys; compile(open(sys.argv[1], encoding="utf-8").read(), sys.argv[1], "exec")',
        resolve(agentFile),
      ];
  return new Promise((done) => {
    execFile(
      pythonExecutable(),
      args,
      {
        cwd: join(dirname(resolve(agentFile))),
        timeout: opts.timeoutMs ?? 60_000,
        // The check sees no secrets: the agent file runs as code here.
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", PYTHONDONTWRITEBYTECODE: "1" },
      },
      (error, stdout, stderr) => {
        if (!error) return done({ ok: true });
        const text = `${stdout}${stderr}`.trim() || error.message;
        done({ ok: false, message: text.split("\n").slice(-20).join("\n") });
      },
    );
  });
}
