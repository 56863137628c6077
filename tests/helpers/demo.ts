import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { REPO_ROOT } from "./experiment.ts";

const run = promisify(execFile);

/** `npm run demo -- --dir <dir> [args]` as a child process, with no API key; resolves with what it printed. */
export async function runDemo(dir: string, env: NodeJS.ProcessEnv = process.env, args: string[] = []): Promise<string> {
  const own: NodeJS.ProcessEnv = { ...env };
  delete own.ANTHROPIC_API_KEY;
  delete own.ANTHROPIC_BASE_URL;
  delete own.OPENAI_API_KEY;
  const { stdout } = await run(process.execPath, ["--import", "tsx", "dev/demo/main.ts", "--dir", dir, ...args], {
    cwd: REPO_ROOT,
    env: own,
    maxBuffer: 16 * 1024 * 1024,
    // A limit against a hang, not a speed check: on a loaded two-core machine the demo takes minutes.
    timeout: 600_000,
  });
  return stdout;
}
