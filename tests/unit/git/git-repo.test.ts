import { mkdtempSync, rmSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { HarnessError, UserError } from "../../../src/errors.ts";
import { preflight } from "../../../src/git/preflight.ts";
import { openRepo } from "../../../src/git/repo.ts";
import { AGENT_V1, makeRepo, type TempRepo } from "../../fixtures/temp-repo.ts";

let repo: TempRepo | undefined;
const dirs: string[] = [];
afterEach(() => {
  repo?.cleanup();
  repo = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const byPath = (changes: { path: string }[]) => [...changes].sort((a, b) => (a.path < b.path ? -1 : 1));

describe("openRepo against a real repository", () => {
  it("lists modified, untracked, deleted and renamed paths, and not ignored ones", async () => {
    repo = makeRepo("changes");
    const r = openRepo(repo.root);
    const head = (await r.headCommit())!;
    expect(await r.changedPaths(head)).toEqual([]);

    repo.write("README.md", "# changed\n");
    repo.write("notes/new.txt", "hello\n");
    repo.write("workspace/results.tsv", "ignored\n");
    unlinkSync(join(repo.root, "src/tools.ts"));
    repo.git("mv", "PROGRAM.md", "PROGRAM2.md");

    expect(byPath(await r.changedPaths(head))).toEqual([
      { path: "PROGRAM2.md", kind: "renamed", from: "PROGRAM.md" },
      { path: "README.md", kind: "modified" },
      { path: "notes/new.txt", kind: "added" },
      { path: "src/tools.ts", kind: "deleted" },
    ]);
  });

  it("reports paths relative to an experiment root that is a subdirectory of the repository", async () => {
    repo = makeRepo("subdir", { "exp/agent/agent.ts": AGENT_V1, "exp/README.md": "x\n" });
    const r = openRepo(join(repo.root, "exp"));
    const head = (await r.headCommit())!;
    repo.write("exp/agent/agent.ts", "changed\n");
    repo.write("exp/new.txt", "new\n");
    repo.write("README.md", "outside the root\n");
    expect(byPath(await r.changedPaths(head))).toEqual([
      { path: "../README.md", kind: "modified" },
      { path: "agent/agent.ts", kind: "modified" },
      { path: "new.txt", kind: "added" },
    ]);
    const sha = await r.commitFile("agent/agent.ts", "improve: sub", { key: "Harness-Run", value: "s/1" });
    expect(repo.git("show", "--name-only", "--format=", sha).trim()).toBe("exp/agent/agent.ts");
    expect(await r.lastAcceptedCommit()).toBe(sha);
  });

  it("commits only the named path, with a trailer it can find again exactly", async () => {
    repo = makeRepo("commit");
    const r = openRepo(repo.root);
    repo.write("agent/agent.ts", "export const prompt = 'v2';\n");
    repo.write("README.md", "# staged but not ours\n");
    repo.git("add", "README.md");

    const sha = await r.commitFile("agent/agent.ts", "improve: v2", { key: "Harness-Run", value: "run-1/1" });
    expect(sha).toBe(repo.git("rev-parse", "HEAD").trim());
    expect(repo.git("show", "--name-only", "--format=", sha).trim()).toBe("agent/agent.ts");
    expect(repo.git("log", "-1", "--format=%B").trim()).toBe("improve: v2\n\nHarness-Run: run-1/1");
    // The other staged change is still staged, not committed.
    expect(repo.git("diff", "--cached", "--name-only").trim()).toBe("README.md");

    expect(await r.findCommitByTrailer("Harness-Run", "run-1/1")).toBe(sha);
    expect(await r.findCommitByTrailer("Harness-Run", "run-1/10")).toBeNull();
    expect(await r.findCommitByTrailer("Harness-Run", "run-1/")).toBeNull();
    expect(await r.fileDiffersFromHead("agent/agent.ts")).toBe(false);
    expect(await r.diffOfCommit(sha, "agent/agent.ts")).toContain("+export const prompt = 'v2';");
  });

  it("commits with no git identity configured anywhere", async () => {
    repo = makeRepo("noid");
    const home = mkdtempSync(join(tmpdir(), "ah-home-"));
    dirs.push(home);
    const saved = { HOME: process.env.HOME, XDG: process.env.XDG_CONFIG_HOME };
    process.env.HOME = home;
    process.env.XDG_CONFIG_HOME = home;
    try {
      const r = openRepo(repo.root);
      repo.write("agent/agent.ts", "export const prompt = 'v3';\n");
      const sha = await r.commitFile("agent/agent.ts", "improve: v3");
      expect(repo.git("log", "-1", "--format=%an <%ae>", sha).trim()).toBe("auto-harness <auto-harness@localhost>");
    } finally {
      process.env.HOME = saved.HOME;
      if (saved.XDG === undefined) delete process.env.XDG_CONFIG_HOME;
      else process.env.XDG_CONFIG_HOME = saved.XDG;
    }
  });

  it("finds the last accepted commit past later steering commits, and restores the agent from it", async () => {
    repo = makeRepo("restore");
    const r = openRepo(repo.root);
    repo.write("agent/agent.ts", "export const prompt = 'accepted';\n");
    const accepted = await r.commitFile("agent/agent.ts", "improve: accepted");
    repo.write("PROGRAM.md", "# steer\n");
    await r.commitFile("PROGRAM.md", "steer: PROGRAM.md updated");
    expect(await r.lastAcceptedCommit()).toBe(accepted);

    repo.write("agent/agent.ts", "broken edit");
    expect(await r.fileDiffersFromHead("agent/agent.ts")).toBe(true);
    await r.restoreFile("agent/agent.ts", accepted);
    expect(repo.read("agent/agent.ts")).toBe("export const prompt = 'accepted';\n");
    expect(await r.fileDiffersFromHead("agent/agent.ts")).toBe(false);
  });

  it("reports a directory that is not a repository, and fails a commit with a GIT_STATE error", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ah-norepo-"));
    dirs.push(dir);
    const r = openRepo(dir);
    expect(await r.isRepo()).toBe(false);
    expect(await r.headCommit()).toBeNull();
    const err = await r.commitFile("missing.ts", "x").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HarnessError);
    expect((err as HarnessError).code).toBe("GIT_STATE");
  });
});

describe("preflight", () => {
  it("passes a clean repository, and lets an edited PROGRAM.md through", async () => {
    repo = makeRepo("pre-ok");
    await expect(preflight(repo.root)).resolves.toBeUndefined();
    repo.write("PROGRAM.md", "# new steering\n");
    await expect(preflight(repo.root)).resolves.toBeUndefined();
  });

  it("refuses a directory that is not a git repository, with the fix", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ah-pre-norepo-"));
    dirs.push(dir);
    const err = (await preflight(dir).catch((e: unknown) => e)) as UserError;
    expect(err).toBeInstanceOf(UserError);
    expect(err.exitCode).toBe(2);
    expect(err.message).toMatch(/not a git repository; run: git init/);
    expect(err.message).not.toContain("\n");
  });

  it("refuses uncommitted tracked changes and lists them", async () => {
    repo = makeRepo("pre-dirty");
    repo.write("README.md", "# dirty\n");
    unlinkSync(join(repo.root, "src/tools.ts"));
    repo.write("untracked.txt", "not tracked, not listed\n");
    const err = (await preflight(repo.root).catch((e: unknown) => e)) as UserError;
    expect(err).toBeInstanceOf(UserError);
    expect(err.code).toBe("GIT_STATE");
    expect(err.message).toContain("README.md, src/tools.ts");
    expect(err.message).not.toContain("untracked.txt");
    expect(err.message).toContain("git stash");
  });

  it("refuses when agent/agent.ts differs from HEAD", async () => {
    repo = makeRepo("pre-agent");
    repo.write("agent/agent.ts", `${AGENT_V1}// local edit\n`);
    const err = (await preflight(repo.root).catch((e: unknown) => e)) as UserError;
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toMatch(
      /^agent\/agent\.ts differs from HEAD; commit it .* or discard it \(git checkout HEAD -- agent\/agent\.ts\)$/,
    );
  });
});
