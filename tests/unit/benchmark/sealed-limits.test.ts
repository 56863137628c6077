/**
 * Who the agent runs as and which limits hold it: the sandbox user from the password file (never root), the
 * cgroup v2 directory when one is delegated (a directory with the cgroup files stands in for one: this
 * machine's cgroup v2 hands out no controllers), and the command line that applies them before the agent runs.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startAgentProcess } from "../../../src/benchmark/sealed/agent-process.ts";
import { cgroupProblem, describeLimits, limitsOf, ownCgroupDir } from "../../../src/benchmark/sealed/limits.ts";
import { launchCommand, sandboxSpec } from "../../../src/benchmark/sealed/sandbox.ts";
import { resolveUser } from "../../../src/benchmark/sealed/sandbox-user.ts";
import { configSchema } from "../../../src/config/schema.ts";
import { UserError } from "../../../src/errors.ts";
import { preparedExperiment, spawnCli } from "../../helpers/experiment.ts";
import { tempDir } from "../../helpers/temp.ts";
import { haveTool } from "../../helpers/tools.ts";

const asRoot = process.getuid?.() === 0;

/** A directory shaped like a delegated cgroup v2 directory, handing `controllers` to its children. */
function fakeCgroup(controllers: string): string {
  const dir = tempDir("ah-cgroup-");
  writeFileSync(join(dir, "cgroup.subtree_control"), `${controllers}\n`);
  return dir;
}

describe("the sandbox user", () => {
  const passwdFile = () => {
    const file = join(tempDir("ah-passwd-"), "passwd");
    writeFileSync(
      file,
      "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\nagent:x:998:997::/:/usr/sbin/nologin\n",
    );
    return file;
  };

  it("is found by name or uid; a uid with no entry gets the group of its number", () => {
    const passwd = passwdFile();
    expect(resolveUser("nobody", passwd)).toEqual({ name: "nobody", uid: 65534, gid: 65534 });
    expect(resolveUser("998", passwd)).toEqual({ name: "agent", uid: 998, gid: 997 });
    expect(resolveUser("12345", passwd)).toEqual({ name: "12345", uid: 12345, gid: 12345 });
  });

  it.each([
    ["root", /sandbox_user: "root" is root \(uid 0, gid 0\); the agent must run as an unprivileged user/],
    ["0", /sandbox_user: "0" is root/],
    ["no-such-user", /sandbox_user: there is no user "no-such-user" on this machine; create one \(useradd --system/],
  ])("%s is refused with one line naming the field and the fix", (name, message) => {
    const passwd = passwdFile();
    const error = (() => {
      try {
        resolveUser(name, passwd);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).code).toBe("CONFIG_INVALID");
    expect((error as UserError).message).toMatch(message);
    expect((error as UserError).message).not.toContain("\n");
  });
});

describe("cgroup v2 or rlimits", () => {
  it("takes a directory only when it hands memory and pids to its children", () => {
    expect(cgroupProblem(tempDir("ah-nocg-"))).toMatch(/is not a cgroup v2 directory/);
    expect(cgroupProblem(fakeCgroup("cpu io"))).toMatch(/does not hand the memory and pids controller\(s\)/);
    expect(cgroupProblem(fakeCgroup("cpu memory pids"))).toBeNull();
  });

  it("finds the harness's own cgroup from /proc/self/cgroup and the cgroup2 mount", () => {
    const dir = tempDir("ah-proc-");
    writeFileSync(join(dir, "cgroup"), "9:name=systemd:/\n0::/system.slice/harness.service\n");
    writeFileSync(
      join(dir, "mountinfo"),
      "30 24 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n31 24 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
    );
    expect(ownCgroupDir(join(dir, "cgroup"), join(dir, "mountinfo"))).toBe(
      "/sys/fs/cgroup/unified/system.slice/harness.service",
    );
    writeFileSync(join(dir, "mountinfo"), "30 24 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n");
    expect(ownCgroupDir(join(dir, "cgroup"), join(dir, "mountinfo"))).toBeNull();
  });

  it("a configured directory that cannot hold them is refused in one line", () => {
    const config = configSchema.parse({ benchmark: "example", sandbox_limits: { cgroup: tempDir("ah-nocg-") } });
    expect(() => limitsOf(config)).toThrow(/^sandbox_limits\.cgroup: .* is not a cgroup v2 directory/);
  });

  it("says which mechanism holds the limits", () => {
    const rlimits = limitsOf(
      configSchema.parse({ benchmark: "example", sandbox_limits: { processes: 64, tmp_mb: 8 } }),
    );
    const own = ownCgroupDir();
    if (own === null || cgroupProblem(own) !== null) {
      expect(describeLimits(rlimits, 300)).toBe(
        "rlimits (no delegated cgroup v2): 64 processes, 2048 MiB memory a process, 8 MiB /tmp, 300 s a task, 64 MiB of model requests a task",
      );
    }
    const dir = fakeCgroup("memory pids");
    expect(describeLimits({ ...rlimits, cgroup: dir }, 60)).toBe(
      `cgroup v2 (${dir}): 64 processes, 2048 MiB memory, 8 MiB /tmp, 60 s a task, 64 MiB of model requests a task`,
    );
  });

  it.skipIf(!haveTool("bwrap", "bubblewrap"))(
    "the command line joins the cgroup, drops root, seals, then sets the rlimits, in that order",
    () => {
      const spec = sandboxSpec(
        configSchema.parse({ benchmark: "example", sandbox_limits: { processes: 64, memory_mb: 256 } }),
      );
      const line = (cgroup: string | null) => {
        const { file, args } = launchCommand(spec, ["/usr/bin/node", "x.mjs"], {
          agentDir: "/tmp",
          runtime: null,
          cgroup,
        });
        return [file, ...args];
      };
      const plain = line(null);
      const bwrap = plain.findIndex((a) => a.endsWith("/bwrap"));
      expect(plain.slice(0, bwrap)).toEqual(
        asRoot ? expect.arrayContaining(["/usr/bin/setpriv", "--bounding-set=-all"]) : [],
      );
      expect(plain).toEqual(
        expect.arrayContaining([
          "--unshare-user",
          "--disable-userns",
          "--cap-drop",
          "ALL",
          "--size",
          String(256 * 1024 * 1024),
        ]),
      );
      expect(plain.slice(plain.indexOf("--", bwrap) + 1)).toEqual([
        "/usr/bin/prlimit",
        "--nproc=64",
        `--data=${256 * 1024 * 1024}`,
        "--core=0",
        "--",
        "/usr/bin/node",
        "x.mjs",
      ]);
      const base = fakeCgroup("memory pids");
      const underCgroup = { ...spec, limits: { ...spec.limits, cgroup: base } };
      const { file, args } = launchCommand(underCgroup, ["/usr/bin/node", "x.mjs"], {
        agentDir: "/tmp",
        runtime: null,
        cgroup: join(base, "auto-harness-1-1"),
      });
      const inCgroup = [file, ...args];
      expect(inCgroup.slice(0, 4)).toEqual([
        "/bin/sh",
        "-c",
        'echo $$ > "$0" && exec "$@"',
        join(base, "auto-harness-1-1", "cgroup.procs"),
      ]);
      // Under cgroup v2 the cgroup holds the processes and the memory; prlimit keeps only the core files off.
      const sep = inCgroup.indexOf(
        "--",
        inCgroup.findIndex((a) => a.endsWith("/bwrap")),
      );
      expect(inCgroup.slice(sep + 1)).toEqual(["/usr/bin/prlimit", "--core=0", "--", "/usr/bin/node", "x.mjs"]);
    },
  );

  it.skipIf(!haveTool("bwrap", "bubblewrap"))(
    "an agent process joins its own cgroup with its limits written before it runs",
    async () => {
      const base = fakeCgroup("memory pids");
      const spec = sandboxSpec(
        configSchema.parse({ benchmark: "example", sandbox_limits: { cgroup: base, processes: 100, memory_mb: 512 } }),
      );
      const proc = startAgentProcess(spec, "ts");
      try {
        const dir = join(base, readdirSync(base).find((n) => n.startsWith("auto-harness-"))!);
        expect(readFileSync(join(dir, "memory.max"), "utf8")).toBe(String(512 * 1024 * 1024));
        expect(readFileSync(join(dir, "pids.max"), "utf8")).toBe("100");
        for (let i = 0; i < 200 && !existsSync(join(dir, "cgroup.procs")); i++)
          await new Promise((r) => setTimeout(r, 10));
        expect(Number(readFileSync(join(dir, "cgroup.procs"), "utf8"))).toBeGreaterThan(0);
      } finally {
        proc.dispose();
      }
    },
  );
});

describe.skipIf(!asRoot || !haveTool("bwrap", "bubblewrap"))("as root, a sandbox user that does not exist", () => {
  it("stops run, prepare and benchmark with one line naming the field and the fix, writing nothing", async () => {
    const dir = preparedExperiment(tempDir("ah-nouser-"), { sandbox_user: "no-such-agent-user" });
    for (const command of ["run", "prepare", "benchmark"]) {
      const cli = spawnCli([command, "--dir", dir], { ANTHROPIC_API_KEY: "k" });
      const { code } = await cli.exited;
      expect(code).toBe(2);
      const lines = cli.stderr().trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain('sandbox_user: there is no user "no-such-agent-user"');
    }
    expect(existsSync(join(dir, "workspace", "journal.sqlite"))).toBe(false);
  });
});
