/**
 * A `command` benchmark under `command.sandbox`: the external program (which runs the agent itself) tries to
 * write everywhere it should not. Only its results and traces folders take writes; the experiment, the agent
 * file, the host's /tmp and the home folder stay as they were.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createCommandAdapter } from "../../../src/benchmark/adapters/command.ts";
import { createLogger } from "../../../src/log.ts";
import { tempDir } from "../../helpers/temp.ts";
import { haveTool } from "../../helpers/tools.ts";

const ESCAPES = (marker: string) => `
const fs = require("node:fs");
const path = require("node:path");
const e = process.env;
const attempts = {
  experiment: path.join(process.cwd(), "escaped-${marker}.txt"),
  agentFile: e.HARNESS_AGENT_FILE,
  hostTmp: "/tmp/escaped-${marker}.txt",
  home: path.join(require("node:os").homedir(), ".escaped-${marker}"),
};
const outcome = {};
for (const [name, file] of Object.entries(attempts)) {
  try { fs.writeFileSync(file, "hostile"); outcome[name] = "written"; } catch (err) { outcome[name] = err.code; }
}
const ids = e.HARNESS_TASK_IDS ? e.HARNESS_TASK_IDS.split(",") : ["c-1"];
for (const id of ids) {
  fs.mkdirSync(path.join(e.HARNESS_TRACES_DIR, id), { recursive: true });
  fs.writeFileSync(path.join(e.HARNESS_TRACES_DIR, id, "attempts.json"), JSON.stringify(outcome));
}
fs.writeFileSync(e.HARNESS_RESULTS_FILE, JSON.stringify({ results: Object.fromEntries(ids.map((id) => [id, 1])) }));
`;

const quietLog = () =>
  createLogger({
    stdout: false,
    stream: new Writable({
      write(_c, _e, cb) {
        cb();
      },
    }),
  }).log;

describe.skipIf(!haveTool("bwrap", "bubblewrap"))("command.sandbox", () => {
  it("lets the command write only its results and traces folders", async () => {
    const root = tempDir("ah-cmd-sandbox-");
    // As root the command runs as the sandbox user, who must be able to read the experiment.
    chmodSync(root, 0o755);
    const marker = `${process.pid}-${Date.now()}`;
    mkdirSync(join(root, "agent"));
    mkdirSync(join(root, "ext"));
    const agentFile = join(root, "agent", "agent.ts");
    writeFileSync(agentFile, "export default { run: () => 'honest' };\n");
    writeFileSync(join(root, "ext", "bench.cjs"), ESCAPES(marker));
    const tracesDir = join(root, "workspace", "traces", "latest");
    const adapter = createCommandAdapter({
      command: `"${process.execPath}" ext/bench.cjs`,
      timeoutS: 60,
      cwd: root,
      log: quietLog(),
      sandbox: { network: false, writable: [] },
    });

    const results = await adapter.runTasks({ split: "train", taskIds: ["c-1"], agentFile, tracesDir });

    expect(results).toEqual({ "c-1": 1 });
    const attempts = JSON.parse(readFileSync(join(tracesDir, "c-1", "attempts.json"), "utf8"));
    // As root the home folder is also out of the sandbox user's reach (EACCES); either way nothing is written.
    expect(attempts).toMatchObject({ experiment: "EROFS", agentFile: "EROFS", hostTmp: "written" });
    expect(attempts.home).toMatch(process.getuid?.() === 0 ? /^(EROFS|EACCES)$/ : /^EROFS$/);
    // The /tmp it wrote to was its own: gone with it.
    expect(existsSync(`/tmp/escaped-${marker}.txt`)).toBe(false);
    expect(existsSync(join(root, `escaped-${marker}.txt`))).toBe(false);
    expect(existsSync(join(homedir(), `.escaped-${marker}`))).toBe(false);
    expect(readFileSync(agentFile, "utf8")).toBe("export default { run: () => 'honest' };\n");
  });

  it("without the sandbox the same command does write outside (what the option guards against)", async () => {
    const root = tempDir("ah-cmd-open-");
    const marker = `${process.pid}-${Date.now()}-open`;
    mkdirSync(join(root, "agent"));
    mkdirSync(join(root, "ext"));
    const agentFile = join(root, "agent", "agent.ts");
    writeFileSync(agentFile, "export default { run: () => 'honest' };\n");
    writeFileSync(join(root, "ext", "bench.cjs"), ESCAPES(marker).replace(/home: .*\n/, ""));
    const tracesDir = join(root, "workspace", "traces", "latest");
    mkdirSync(tracesDir, { recursive: true });
    const adapter = createCommandAdapter({
      command: `"${process.execPath}" ext/bench.cjs`,
      timeoutS: 60,
      cwd: root,
      log: quietLog(),
    });
    await adapter.runTasks({ split: "train", taskIds: ["c-1"], agentFile, tracesDir });
    expect(existsSync(join(root, `escaped-${marker}.txt`))).toBe(true);
    expect(readFileSync(agentFile, "utf8")).toBe("hostile");
    const { rmSync } = await import("node:fs");
    rmSync(`/tmp/escaped-${marker}.txt`, { force: true });
  });
});
