/**
 * Red team, run as root (CI is root): the hostile agent of the issue. As host root inside the sandbox one
 * write to /proc/sys/kernel/core_pattern ran its script as root and read the answer key; a sandboxed
 * command remounted the tree writable and appended to the harness's own source. Each attempt here is
 * refused, for a TypeScript agent, a Python agent and a `command` benchmark alike. No /proc/sys value is
 * ever written: a file is opened for write and closed at once, which is proof enough.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { startTestLlmServer, textReply } from "../../../dev/llm-server/llm-server.ts";
import { createCommandAdapter } from "../../../src/benchmark/adapters/command.ts";
import { createLogger } from "../../../src/log.ts";
import { agentNotes, makeExperiment, perTestExperiment } from "../../helpers/benchmark-fixtures.ts";
import { descendants } from "../../helpers/processes.ts";
import { tempDir } from "../../helpers/temp.ts";
import { haveTool } from "../../helpers/tools.ts";

const ROOT = resolve(import.meta.dirname, "../../..");
/** The harness's own source the agent tries to append to (restored should the seal ever fail). */
const HARNESS_SOURCE = join(ROOT, "src", "gate", "decide.ts");
const CORE_PATTERN = "/proc/sys/kernel/core_pattern";
const asRoot = process.getuid?.() === 0;

const t = perTestExperiment();
const harnessSource = readFileSync(HARNESS_SOURCE, "utf8");
const corePattern = readFileSync(CORE_PATTERN, "utf8");
afterEach(() => {
  if (readFileSync(HARNESS_SOURCE, "utf8") !== harnessSource) writeFileSync(HARNESS_SOURCE, harnessSource);
});

/** What every hostile agent reports: one `name=outcome` line per attempt, then its capabilities. */
const ATTEMPTS = ["core_pattern", "sysrq-trigger", "remount", "new userns", "harness source", "answer key"];

const TS_AGENT = (
  answerKey: string,
) => `import { appendFileSync, closeSync, constants, openSync, readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
const openForWrite = (file: string): string => {
  try {
    closeSync(openSync(file, constants.O_WRONLY));
    return "OPENED";
  } catch (error) {
    return (error as { code?: string }).code ?? "error";
  }
};
const exits = (cmd: string, args: string[]): string => {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return r.status === 0 ? "DONE" : "refused";
};
export default {
  async run(task: { id: string }, ctx: { trace: { note(m: string): void } }) {
    const tried: [string, string][] = [
      ["core_pattern", openForWrite(${JSON.stringify(CORE_PATTERN)})],
      ["sysrq-trigger", openForWrite("/proc/sysrq-trigger")],
      ["remount", exits("/usr/bin/mount", ["-o", "remount,rw", "/"])],
      ["new userns", exits("/usr/bin/unshare", ["--user", "--map-root-user", "/bin/true"])],
    ];
    try {
      appendFileSync(${JSON.stringify(HARNESS_SOURCE)}, "\\n// pwned\\n");
      tried.push(["harness source", "DONE"]);
    } catch (error) {
      tried.push(["harness source", (error as { code?: string }).code ?? "error"]);
    }
    let answer = "a guess";
    try {
      for (const line of readFileSync(${JSON.stringify(answerKey)}, "utf8").split("\\n"))
        if (line.includes(task.id)) answer = JSON.parse(line).expected;
      tried.push(["answer key", "DONE"]);
    } catch (error) {
      tried.push(["answer key", (error as { code?: string }).code ?? "error"]);
    }
    for (const [name, outcome] of tried) ctx.trace.note(name + "=" + outcome);
    const status = readFileSync("/proc/self/status", "utf8");
    for (const cap of ["CapEff", "CapPrm", "CapBnd", "CapAmb"]) ctx.trace.note(cap + "=" + new RegExp("^" + cap + ":\\\\s+(\\\\w+)", "m").exec(status)?.[1]);
    // Long enough for the test to see, from the host, whose processes these are.
    await new Promise((r) => setTimeout(r, 1500));
    return answer;
  },
};
`;

const PY_AGENT = (answerKey: string) => `import json, os, re, subprocess, time

def open_for_write(path):
    try:
        os.close(os.open(path, os.O_WRONLY))
        return "OPENED"
    except OSError as e:
        import errno
        return errno.errorcode.get(e.errno, str(e.errno))

def exits(cmd):
    try:
        return "DONE" if subprocess.run(cmd, capture_output=True).returncode == 0 else "refused"
    except OSError:
        return "refused"

def run(task, ctx):
    tried = [
        ("core_pattern", open_for_write(${JSON.stringify(CORE_PATTERN)})),
        ("sysrq-trigger", open_for_write("/proc/sysrq-trigger")),
        ("remount", exits(["/usr/bin/mount", "-o", "remount,rw", "/"])),
        ("new userns", exits(["/usr/bin/unshare", "--user", "--map-root-user", "/bin/true"])),
    ]
    try:
        with open(${JSON.stringify(HARNESS_SOURCE)}, "a") as f:
            f.write("\\n# pwned\\n")
        tried.append(("harness source", "DONE"))
    except OSError as e:
        import errno
        tried.append(("harness source", errno.errorcode.get(e.errno, "error")))
    answer = "a guess"
    try:
        for line in open(${JSON.stringify(answerKey)}):
            if task["id"] in line:
                answer = json.loads(line)["expected"]
        tried.append(("answer key", "DONE"))
    except OSError as e:
        import errno
        tried.append(("answer key", errno.errorcode.get(e.errno, "error")))
    for name, outcome in tried:
        ctx.trace.note(f"{name}={outcome}")
    status = open("/proc/self/status").read()
    for cap in ["CapEff", "CapPrm", "CapBnd", "CapAmb"]:
        ctx.trace.note(f"{cap}=" + re.search("^" + cap + r":\\s+(\\w+)", status, re.M).group(1))
    # Long enough for the test to see, from the host, whose processes these are.
    time.sleep(1.5)
    return answer
`;

/** The attempts a hostile agent reported as `name=outcome` lines. */
const outcomes = (lines: string[]): Map<string, string> =>
  new Map(lines.map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));

/** Each attempt refused, and no capability at all. */
function expectRefused(seen: Map<string, string>): void {
  expect(seen.get("core_pattern")).toMatch(/^(EACCES|EROFS|EPERM)$/);
  expect(seen.get("sysrq-trigger")).toMatch(/^(EACCES|EROFS|EPERM|ENOENT)$/);
  expect(seen.get("remount")).toBe("refused");
  expect(seen.get("new userns")).toBe("refused");
  // Not there at all: the harness's tree and the benchmark's files are not in the sandbox's view.
  expect(seen.get("harness source")).toBe("ENOENT");
  expect(seen.get("answer key")).toBe("ENOENT");
  for (const cap of ["CapEff", "CapPrm", "CapBnd", "CapAmb"]) expect(seen.get(cap)).toBe("0000000000000000");
}

/**
 * The host's view of whose processes they are: the real uid of every process whose command line holds
 * `marker`, sampled while `work` runs (inside its namespace an agent cannot tell its host uid).
 */
/** The keeper's command line: the harness's node running its inline source (`node -e <source> -- <command>`). */
const keeperLine = (cmdline: string): boolean => {
  const argv = cmdline.split("\0");
  return argv[0] === process.execPath && argv[1] === "-e" && argv[3] === "--";
};

async function hostUidsWhile<T>(marker: string, work: Promise<T>): Promise<{ result: T; uids: Map<number, string> }> {
  // uid -> one command line seen with it, so a failure names the process.
  const uids = new Map<number, string>();
  const sample = () => {
    for (const pid of descendants(marker)) {
      try {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
        // No command line: the process is exiting or a zombie (its memory is gone) and runs nothing any more.
        // The keeper, root and outside the sandbox, is one such between its exit and the harness's wait.
        if (cmdline === "") continue;
        // setpriv is root until it drops to the sandbox user and becomes bubblewrap: that is its job.
        if (cmdline.split("\0")[0]!.endsWith("/setpriv")) continue;
        // The keeper is the harness's own child (node -e), outside the sandbox: it takes the command's group down
        // with the harness. Anything the command starts is its grandchild or deeper.
        // (A fork of the keeper before it execs setpriv carries the keeper's very command line.)
        if (keeperLine(cmdline)) continue;
        const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
        if (uid !== undefined && !uids.has(Number(uid))) uids.set(Number(uid), cmdline.replaceAll("\0", " "));
      } catch {}
    }
  };
  const timer = setInterval(sample, 10);
  try {
    return { result: await work, uids };
  } finally {
    clearInterval(timer);
  }
}

/** Host root never runs the agent: as root the sandbox user's uid, otherwise the harness's own. */
function expectNotHostRoot(uids: Map<number, string>): void {
  expect(uids.size).toBeGreaterThan(0);
  for (const [uid, cmdline] of uids) expect(uid, cmdline).not.toBe(0);
  if (!asRoot) for (const [uid, cmdline] of uids) expect(uid, cmdline).toBe(process.getuid?.());
}

describe.skipIf(!haveTool("bwrap", "bubblewrap"))("red team as root: the agent is never host root", () => {
  for (const language of ["ts", "py"] as const) {
    it(`a ${language === "ts" ? "TypeScript" : "Python"} agent: /proc/sys, remount, a new user namespace, the harness's source and the answer key are all refused`, async () => {
      const server = await startTestLlmServer({ responder: () => textReply("ok") });
      t.server = server;
      const exp = makeExperiment({
        tasks: [{ id: "r1", input: null, expected: "secret-answer-r1" }],
        agent: "",
        baseURL: server.url,
        ...(language === "py" ? { config: { agent_file: "agent/agent.py" } } : {}),
      });
      t.exp = exp;
      const answerKey = join(exp.root, "bench", "tasks.jsonl");
      const agentFile = join(exp.root, "agent", `agent.${language}`);
      writeFileSync(agentFile, language === "ts" ? TS_AGENT(answerKey) : PY_AGENT(answerKey));
      const { result: summary, uids } = await hostUidsWhile(
        language === "ts" ? "/harness/child.mjs" : "/harness/harness_runtime.py",
        exp
          .runner({ warmSpare: false })
          .run({ split: "train", taskIds: ["r1"], runId: null, agentFile, writeTraces: true }),
      );

      // What the operator sees: the honest score (it could not read the key), and nothing changed on the host.
      expect(summary.results).toEqual({ r1: 0 });
      expect(summary.infraErrors).toBe(0);
      const seen = outcomes(agentNotes(exp, "r1"));
      expect([...seen.keys()]).toEqual([...ATTEMPTS, "CapEff", "CapPrm", "CapBnd", "CapAmb"]);
      expectRefused(seen);
      expectNotHostRoot(uids);
      expect(readFileSync(CORE_PATTERN, "utf8")).toBe(corePattern);
      expect(readFileSync(HARNESS_SOURCE, "utf8")).toBe(harnessSource);
    });
  }

  it("a sandboxed `command` benchmark has no capability: no remount, no /proc/sys, no write to the harness", async () => {
    const root = tempDir("ah-cmd-root-");
    // The experiment must be readable by the user the command runs as.
    chmodSync(root, 0o755);
    mkdirSync(join(root, "agent"));
    writeFileSync(join(root, "agent", "agent.ts"), "export default { run: () => 'honest' };\n");
    const script = `set +e
status=/proc/self/status
for cap in CapEff CapPrm CapBnd CapAmb; do echo "$cap=$(awk -v c="$cap:" '$1==c {print $2}' $status)"; done
if (exec 3<>${CORE_PATTERN}) 2>/dev/null; then echo "core_pattern=OPENED"; else echo "core_pattern=refused"; fi
if /usr/bin/mount -o remount,rw / 2>/dev/null; then echo "remount=DONE"; else echo "remount=refused"; fi
if echo "// pwned" >> ${HARNESS_SOURCE} 2>/dev/null; then echo "harness source=DONE"; else echo "harness source=refused"; fi
sleep 1
echo '{"results":{"c-1":1}}' > "$HARNESS_RESULTS_FILE"
`;
    writeFileSync(join(root, "bench.sh"), script);
    const tracesDir = join(root, "workspace", "traces", "latest");
    const quiet = new Writable({ write: (_c, _e, cb) => cb() });
    const adapter = createCommandAdapter({
      command: `/bin/sh bench.sh > "$HARNESS_TRACES_DIR/c-1/attempts.txt" 2>&1`,
      timeoutS: 60,
      cwd: root,
      log: createLogger({ stdout: false, stream: quiet }).log,
      sandbox: { network: false, writable: [] },
    });
    mkdirSync(join(tracesDir, "c-1"), { recursive: true });
    const { result: results, uids } = await hostUidsWhile(
      "bench.sh",
      adapter.runTasks({ split: "train", taskIds: ["c-1"], agentFile: join(root, "agent", "agent.ts"), tracesDir }),
    );
    expect(results).toEqual({ "c-1": 1 });
    const seen = outcomes(
      readFileSync(join(tracesDir, "c-1", "attempts.txt"), "utf8")
        .trim()
        .split("\n"),
    );
    for (const cap of ["CapEff", "CapPrm", "CapBnd", "CapAmb"]) expect(seen.get(cap)).toBe("0000000000000000");
    expect(seen.get("core_pattern")).toBe("refused");
    expect(seen.get("remount")).toBe("refused");
    expect(seen.get("harness source")).toBe("refused");
    expectNotHostRoot(uids);
    expect(readFileSync(CORE_PATTERN, "utf8")).toBe(corePattern);
    expect(readFileSync(HARNESS_SOURCE, "utf8")).toBe(harnessSource);
    expect(existsSync(join(root, "workspace"))).toBe(true);
  });
});
