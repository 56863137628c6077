/**
 * An agent of several files (config `editable`: prompts beside it) finds its folder next to itself when it is
 * placed for a sealed run: copies, never links, and no hidden entries or dependencies.
 */
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { placeAgent } from "../../../src/benchmark/sealed/agent-build.ts";
import type { AgentProcess } from "../../../src/benchmark/sealed/agent-process.ts";

let dir = "";
afterEach(() => rmSync(dir, { recursive: true, force: true }));

it("places the rest of the agent's folder beside it, without symlinks, hidden entries or node_modules", async () => {
  dir = mkdtempSync(join(tmpdir(), "ah-agent-folder-"));
  const src = join(dir, "exp", "agent");
  const put = (rel: string, text: string) => {
    mkdirSync(join(src, rel, ".."), { recursive: true });
    writeFileSync(join(src, rel), text);
  };
  put("agent.py", "print('hi')\n");
  put("prompts/system.md", "Be brief.\n");
  put("prompts/deep/tone.md", "Be kind.\n");
  put(".env", "SECRET=1\n");
  put("node_modules/x/index.js", "x\n");
  symlinkSync("/etc/hostname", join(src, "prompts", "host.md"));
  symlinkSync("/etc", join(src, "etc"));
  const out = join(dir, "proc");
  mkdirSync(out);
  const proc = { agentDir: out, insidePath: (n: string) => `/agent/${n}` } as unknown as AgentProcess;
  const placed = await placeAgent(proc, join(src, "agent.py"), readFileSync(join(src, "agent.py")));
  expect(placed).toEqual({ ok: true, inside: "/agent/agent.py" });
  expect(readFileSync(join(out, "prompts", "system.md"), "utf8")).toBe("Be brief.\n");
  expect(readFileSync(join(out, "prompts", "deep", "tone.md"), "utf8")).toBe("Be kind.\n");
  expect(lstatSync(join(out, "prompts", "system.md")).isSymbolicLink()).toBe(false);
  for (const absent of [".env", "node_modules", "prompts/host.md", "etc"])
    expect(existsSync(join(out, absent)), absent).toBe(false);
});
