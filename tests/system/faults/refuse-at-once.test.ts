/**
 * What cannot work is refused at once, before anything is written: a wrong or unreachable Redis (`prepare`, `run`,
 * `worker`) within a connect timeout, naming redis_url, exit 2; a `command` benchmark whose program is missing.
 * Redis lost mid-run past `redis_outage_minutes` pauses the run with the reason (exit 75) instead of waiting for
 * ever, and a restart while it is still away stays paused (75), never refused for good (2). Real processes:
 * the CLI, redis-server, a TCP listener that is not Redis.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT_RESUMABLE } from "../../../src/errors.ts";
import { preparedExperiment, REPO_ROOT, readState, spawnCli, waitForState } from "../../helpers/experiment.ts";
import { freePort, type RedisServer, startRedis } from "../../helpers/redis.ts";
import { tempDir } from "../../helpers/temp.ts";
import { haveTool } from "../../helpers/tools.ts";

const REAL_BENCHMARK_CLI = join(REPO_ROOT, "tests", "fixtures", "cli-real-benchmark.ts");
/** Within the 5 s connect timeout, with room for a loaded machine's process start. */
const PROMPT_MS = 30_000;

let notRedis: Server;
let notRedisUrl: string;
let closedUrl: string;
beforeAll(async () => {
  // Something answers there, but not Redis (a web server someone meant for something else).
  notRedis = createServer((socket) => socket.end("HTTP/1.1 400 Bad Request\r\n\r\n"));
  await new Promise<void>((resolve) => notRedis.listen(0, "127.0.0.1", resolve));
  notRedisUrl = `redis://127.0.0.1:${(notRedis.address() as { port: number }).port}`;
  closedUrl = `redis://127.0.0.1:${await freePort()}`;
});
afterAll(() => notRedis.close());

async function timed(args: string[], env: Record<string, string> = {}, script?: string) {
  const started = performance.now();
  const cli = spawnCli(args, env, script);
  const { code } = await cli.exited;
  return { code, ms: performance.now() - started, stderr: cli.stderr() };
}

/** An experiment before `prepare`: its config only. */
function unprepared(config: string): string {
  const dir = tempDir("refuse-");
  writeFileSync(join(dir, "experiment_config.yaml"), config);
  return dir;
}

describe("a wrong or unreachable Redis is refused at once, naming redis_url", () => {
  const localLlm = { ANTHROPIC_BASE_URL: "http://127.0.0.1:9", ANTHROPIC_API_KEY: "" };

  it.each([
    ["nothing listens there", () => closedUrl, /connection refused/],
    ["something that is not Redis answers", () => notRedisUrl, /something answers there, but not Redis/],
  ])(
    "prepare, %s: exit 2 within the connect timeout, no workspace written",
    async (_what, url, why) => {
      // The seal is not what this checks: unsealed, so a machine without bubblewrap refuses for Redis too.
      const dir = unprepared(`benchmark: example\nsandbox: none\nexecutor: bullmq\nredis_url: ${url()}\n`);
      const { code, ms, stderr } = await timed(
        ["prepare", "--dir", dir],
        localLlm,
        join(REPO_ROOT, "bin", "auto-harness.js"),
      );
      expect(code, stderr).toBe(2);
      expect(ms).toBeLessThan(PROMPT_MS);
      expect(stderr.trim().split("\n")).toHaveLength(1);
      expect(stderr).toMatch(
        new RegExp(
          `redis_url redis://127\\.0\\.0\\.1:\\d+: ${why.source}; check redis_url in experiment_config\\.yaml`,
        ),
      );
      expect(existsSync(join(dir, "workspace"))).toBe(false);
    },
    60_000,
  );

  it("run: exit 2 naming redis_url, and no run is created", async () => {
    const dir = preparedExperiment(tempDir("refuse-"), { executor: "bullmq", redis_url: closedUrl, max_iterations: 1 });
    const { code, ms, stderr } = await timed(["run", "--dir", dir]);
    expect(code, stderr).toBe(2);
    expect(ms).toBeLessThan(PROMPT_MS);
    expect(stderr).toMatch(/redis_url redis:\/\/127\.0\.0\.1:\d+: connection refused; check redis_url/);
    expect(readState(join(dir, "workspace", "journal.sqlite"))).toEqual({ state: null, status: null });
  }, 60_000);

  it("worker: exit 2 naming --redis, as the daemon's redis_url", async () => {
    const dir = unprepared("benchmark: example\n");
    const { code, ms, stderr } = await timed(
      ["worker", "--dir", dir, "--redis", notRedisUrl],
      {},
      join(REPO_ROOT, "bin", "auto-harness.js"),
    );
    expect(code, stderr).toBe(2);
    expect(ms).toBeLessThan(PROMPT_MS);
    expect(stderr).toMatch(
      /--redis redis:\/\/127\.0\.0\.1:\d+: something answers there, but not Redis; pass the daemon's redis_url/,
    );
  }, 60_000);
});

describe("a command benchmark whose program is missing is refused before anything runs", () => {
  it.each([
    [
      "a program not on PATH",
      "HARNESS_X=1 no-such-benchmark-cli --all",
      /command\.run: `no-such-benchmark-cli` is not on PATH; install it/,
    ],
    ["a script that is not there", "./bench/run.sh", /command\.run: `\.\/bench\/run\.sh` does not exist/],
  ])(
    "%s: run exits 2 naming command.run",
    async (_what, run, why) => {
      const dir = preparedExperiment(tempDir("refuse-"), { benchmark: "command", command: { run }, max_iterations: 1 });
      const { code, stderr } = await timed(["run", "--dir", dir]);
      expect(code, stderr).toBe(2);
      expect(stderr).toMatch(why);
      expect(readState(join(dir, "workspace", "journal.sqlite"))).toEqual({ state: null, status: null });
    },
    60_000,
  );

  it("a script that is there but not executable says how to fix it", async () => {
    const dir = preparedExperiment(tempDir("refuse-"), { benchmark: "command", command: { run: "./run.sh" } });
    writeFileSync(join(dir, "run.sh"), "#!/bin/sh\n", { mode: 0o644 });
    const { code, stderr } = await timed(["run", "--dir", dir]);
    expect(code, stderr).toBe(2);
    expect(stderr).toMatch(/command\.run: `\.\/run\.sh` is not executable; `chmod \+x \S+run\.sh`/);
  }, 60_000);
});

describe.skipIf(!haveTool("redis-server", "redis-server"))("Redis lost mid-run", () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => redis.cleanup());

  it("pauses the run with the reason past redis_outage_minutes (exit 75); a restart while it is away stays paused", async () => {
    const dir = preparedExperiment(tempDir("redis-down-"), {
      executor: "bullmq",
      redis_url: redis.url,
      redis_outage_minutes: 0.05,
      max_iterations: 1,
    });
    mkdirSync(join(dir, "workspace", "logs"), { recursive: true });
    const journal = join(dir, "workspace", "journal.sqlite");
    // No worker: the benchmark's jobs wait in the queue, and the daemon waits for them.
    const cli = spawnCli(["run", "--dir", dir], {}, REAL_BENCHMARK_CLI);
    await waitForState(journal, "benchmark");
    await new Promise((r) => setTimeout(r, 1_500));
    await redis.stop();
    const stopped = performance.now();
    const { code } = await cli.exited;
    expect(code, cli.stderr()).toBe(EXIT_RESUMABLE);
    // 3 s of outage, pings a second apart, and a loaded machine: well under a minute, never "for ever".
    expect(performance.now() - stopped).toBeLessThan(PROMPT_MS);
    expect(cli.stderr()).toMatch(/run paused: Redis at redis_url redis:\/\/127\.0\.0\.1:\d+ did not answer for \d+s/);
    expect(readState(journal)).toEqual({ state: "paused", status: "paused" });

    // pm2 starts it again while Redis is still down: paused again (75), not refused for good (2).
    const again = await timed(["daemon", "--dir", dir], {}, REAL_BENCHMARK_CLI);
    expect(again.code, again.stderr).toBe(EXIT_RESUMABLE);
    expect(again.stderr).toMatch(
      /redis_url redis:\/\/127\.0\.0\.1:\d+: connection refused; .*the run stays paused until Redis answers/,
    );
    expect(readState(journal).status).toBe("paused");
    await redis.start();
  }, 120_000);
});
