/**
 * Runner efficiency: 200 tasks against the test LLM server with a fixed reply latency L and
 * concurrency C, against the ideal 200·L/C; plus peak RSS of the harness and of the agent's process,
 * and the agent process's start-up with and without the sandbox.
 * Run directly: `tsx bench/runner.ts [latency_ms] [bwrap|none] [cold|warm]`.
 */

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLocalAdapter } from "../src/benchmark/adapters/local.ts";
import { dropSpareAgentProcesses } from "../src/benchmark/local/spares.ts";
import { createRunner } from "../src/benchmark/runner.ts";
import { loadAgentOnce } from "../src/benchmark/sealed/load-check.ts";
import type { SandboxMode } from "../src/benchmark/sealed/sandbox.ts";
import { configSchema } from "../src/config/schema.ts";
import { Journal } from "../src/journal/journal.ts";
import { createLogger } from "../src/log.ts";
import { BENCH_AGENT, BENCH_SCORER, startServerProcess } from "./llm-server-process.ts";

const TASKS = 200;
const CONCURRENCY = 16;

function rssKb(pid: number | "self"): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Every process below the harness: the agent process sits under bwrap and its init. */
function descendantPids(): number[] {
  const out: number[] = [];
  const queue = childrenOf(process.pid);
  while (queue.length > 0) {
    const pid = queue.shift()!;
    out.push(pid);
    queue.push(...childrenOf(pid));
  }
  return out;
}

/** BENCH_PROFILE=file.cpuprofile: the harness's CPU profile of the measured run only (for Chrome DevTools). */
async function startProfile(): Promise<(() => Promise<void>) | null> {
  const file = process.env.BENCH_PROFILE;
  if (!file) return null;
  const { Session } = await import("node:inspector/promises");
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.start");
  return async () => {
    const { profile } = await session.post("Profiler.stop");
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  };
}

export interface RunnerBenchOptions {
  sandbox?: SandboxMode;
  /**
   * warm: a first run leaves a fresh agent process started (as between the daemon's benchmark runs,
   * which are minutes apart); the measured run takes it. cold: the measured run starts its own.
   */
  start?: "cold" | "warm";
}

/** Milliseconds from starting an agent process to its agent being loaded, median of `runs`. */
export async function benchStartup(sandbox: SandboxMode, runs = 5): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "bench-startup-"));
  const agentFile = join(dir, "agent.ts");
  writeFileSync(agentFile, BENCH_AGENT);
  const times: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const result = await loadAgentOnce(agentFile, 60_000, sandbox);
      if (!result.ok) throw new Error(result.message);
      times.push(performance.now() - t0);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  times.sort((a, b) => a - b);
  return Math.round(times[Math.floor(times.length / 2)]!);
}

export async function benchRunner(LATENCY_MS = 50, o: RunnerBenchOptions = {}): Promise<Record<string, number>> {
  const root = mkdtempSync(join(tmpdir(), "bench-runner-"));
  const server = await startServerProcess(LATENCY_MS);
  const journal = Journal.open(join(root, "workspace", "journal.sqlite"));
  let peakChildKb = 0;
  const sampler = setInterval(() => {
    for (const pid of descendantPids()) peakChildKb = Math.max(peakChildKb, rssKb(pid));
  }, 50);
  try {
    mkdirSync(join(root, "agent"));
    writeFileSync(join(root, "agent", "agent.ts"), BENCH_AGENT);
    const ids = Array.from({ length: TASKS }, (_, i) => `task-${i}`);
    writeFileSync(join(root, "tasks.jsonl"), `${ids.map((id) => JSON.stringify({ id, input: null })).join("\n")}\n`);
    writeFileSync(join(root, "scorer.ts"), BENCH_SCORER);
    const { log } = createLogger({ stdout: false });
    const config = configSchema.parse({ benchmark: "local", max_concurrency: CONCURRENCY });
    const runner = createRunner({
      root,
      config,
      journal,
      log,
      adapter: createLocalAdapter({ tasksFile: join(root, "tasks.jsonl"), scorerFile: join(root, "scorer.ts") }),
      agentBaseURL: server.url,
      agentApiKey: "test-key-local",
      typeCheck: false,
      reuse: false,
      sandbox: o.sandbox ?? "bwrap",
      warmSpare: (o.start ?? "warm") === "warm",
    });
    // Cold: no process kept by an earlier measurement either.
    if (o.start === "cold") dropSpareAgentProcesses();
    if ((o.start ?? "warm") === "warm") {
      await runner.run({ split: "train", taskIds: [ids[0]!], runId: null, writeTraces: false });
      // The spare loads node, the SDK and tsx in the background.
      await new Promise((r) => setTimeout(r, 3000));
      server.clear();
    }
    const profiler = await startProfile();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const summary = await runner.run({
      split: "train",
      taskIds: ids,
      runId: null,
      writeTraces: process.env.BENCH_TRACES !== "0",
    });
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    await profiler?.();
    if (summary.passed !== TASKS) throw new Error(`only ${summary.passed}/${TASKS} tasks passed`);
    // Start-up (tsx load of the agent in the child) is paid once per run; the steady state is the pool.
    const arrivals = await server.arrivals();
    const first = Math.min(...arrivals);
    const last = Math.max(...arrivals) + LATENCY_MS;
    const idealMs = (TASKS * LATENCY_MS) / CONCURRENCY;
    return {
      tasks: TASKS,
      latency_ms: LATENCY_MS,
      concurrency: CONCURRENCY,
      ideal_ms: idealMs,
      wall_ms: Math.round(wallMs),
      efficiency_pct: Math.round((idealMs / wallMs) * 1000) / 10,
      steady_state_ms: last - first,
      steady_state_efficiency_pct: Math.round((idealMs / (last - first)) * 1000) / 10,
      startup_ms: Math.round(first - (Date.now() - (performance.now() - t0))),
      // The harness's own CPU per task (proxying, scoring, journaling, traces): a figure the machine's load moves less.
      harness_cpu_ms_per_task: Math.round(((cpu.user + cpu.system) / 1000 / TASKS) * 100) / 100,
      peak_rss_harness_mb: Math.round(process.resourceUsage().maxRSS / 1024),
      peak_rss_agent_process_mb: Math.round(peakChildKb / 1024),
    };
  } finally {
    clearInterval(sampler);
    journal.close();
    await server.close();
    rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const figures = await benchRunner(Number(process.argv[2] ?? 50), {
    sandbox: (process.argv[3] ?? "bwrap") as SandboxMode,
    start: (process.argv[4] ?? "warm") as "cold" | "warm",
  });
  for (const [k, v] of Object.entries(figures)) process.stdout.write(`${k.padEnd(32)} ${v}\n`);
}
