import { createRequire } from "node:module";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { configSchema } from "../../../src/config/schema.ts";
import { limitsOf } from "../../../src/daemon/start.ts";
import { REPO_ROOT } from "../../helpers/experiment.ts";
import { tempDir } from "../../helpers/temp.ts";

const require = createRequire(import.meta.url);

function shipped(env: Record<string, string>) {
  const file = require.resolve(join(REPO_ROOT, "ecosystem.config.cjs"));
  delete require.cache[file];
  for (const [k, v] of Object.entries(env)) vi.stubEnv(k, v);
  try {
    return (require(file) as { apps: Record<string, unknown>[] }).apps[0]!;
  } finally {
    delete require.cache[file];
  }
}

afterEach(() => vi.unstubAllEnvs());

describe("a nightly run under pm2", () => {
  it("AUTO_HARNESS_CRON makes pm2 restart the daemon on schedule, as `daemon --new`", () => {
    const dir = tempDir();
    const nightly = shipped({ AUTO_HARNESS_DIR: dir, AUTO_HARNESS_CRON: "0 22 * * *" });
    expect(nightly.args).toEqual(["daemon", "--new", "--dir", dir]);
    expect(nightly.cron_restart).toBe("0 22 * * *");
    const plain = shipped({ AUTO_HARNESS_DIR: dir, AUTO_HARNESS_CRON: "" });
    expect(plain.args).toEqual(["daemon", "--dir", dir]);
    expect(plain).not.toHaveProperty("cron_restart");
  });

  it("max_hours counts from the run's start, so every night's run gets its own end; the earlier of it and deadline holds", () => {
    const start = Date.parse("2026-12-01T22:00:00Z");
    const hours = configSchema.parse({ benchmark: "example", max_hours: 9 });
    expect(limitsOf(hours, start).deadline).toBe(Date.parse("2026-12-02T07:00:00Z"));
    const both = configSchema.parse({ benchmark: "example", max_hours: 9, deadline: "2026-12-02T05:00:00Z" });
    expect(limitsOf(both, start).deadline).toBe(Date.parse("2026-12-02T05:00:00Z"));
    expect(limitsOf(configSchema.parse({ benchmark: "example" }), start).deadline).toBeNull();
  });
});
