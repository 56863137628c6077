/**
 * A real redis-server for a test: started on a free port in its own temp dir (AOF on when asked), stopped or
 * SIGKILLed on demand, restarted on the same port and data dir, and its dump/AOF files readable for scans.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface RedisServer {
  url: string;
  port: number;
  dir: string;
  /** Clean shutdown (SIGTERM: Redis flushes the AOF and, with save points, writes dump.rdb). */
  stop(): Promise<void>;
  /** Starts it again on the same port and data dir. */
  start(): Promise<void>;
  /** dump.rdb and every AOF file, as raw bytes. */
  files(): { name: string; content: Buffer }[];
  /** Which of `needles` occur in the dump or AOF files (the needle's bytes, anywhere). */
  scan(needles: string[]): string[];
  /** Stops it and removes its dir. */
  cleanup(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

export async function startRedis(options: { aof?: boolean } = {}): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), "ah-redis-"));
  const port = await freePort();
  const aof = options.aof ?? true;
  let child: ChildProcess | null = null;

  const start = async (): Promise<void> => {
    const args = [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--daemonize",
      "no",
      "--save",
      "3600 1",
      "--appendonly",
      aof ? "yes" : "no",
      // Every write reaches the disk before Redis answers: what the README recommends for a run's queue.
      "--appendfsync",
      "always",
      "--loglevel",
      "notice",
    ];
    const proc = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
    child = proc;
    let output = "";
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${output}`)), 15_000);
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes("Ready to accept connections")) {
          clearTimeout(timer);
          resolve();
        }
      };
      proc.stdout?.on("data", onData);
      proc.stderr?.on("data", onData);
      proc.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited (${code}): ${output}`));
      });
    });
    proc.stdout?.resume();
    proc.stderr?.resume();
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    child = null;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once("exit", () => resolve());
      proc.kill("SIGTERM");
    });
  };

  const files = () => {
    const out: { name: string; content: Buffer }[] = [];
    if (existsSync(join(dir, "dump.rdb"))) out.push({ name: "dump.rdb", content: readFileSync(join(dir, "dump.rdb")) });
    const aofDir = join(dir, "appendonlydir");
    if (existsSync(aofDir)) {
      for (const name of readdirSync(aofDir)) out.push({ name, content: readFileSync(join(aofDir, name)) });
    }
    return out;
  };

  await start();

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    stop,
    start,
    files,
    scan: (needles) => {
      const all = files();
      return needles.filter((n) => all.some((f) => f.content.includes(Buffer.from(n, "utf8"))));
    },
    cleanup: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
