import { main } from "../../src/cli/program.ts";
import { Capture } from "./capture.ts";

/** The real CLI in this process: its exit code and what it wrote to stdout and stderr. */
export async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await main(["node", "auto-harness", ...args], { stdout, stderr });
  return { code, out: stdout.text, err: stderr.text };
}
