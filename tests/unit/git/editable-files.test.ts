/**
 * Several editable files (config `editable`): one matcher for the coding model's writes, the file guard, the
 * hard-coding check, the commit, the restore and the diff. Real git repositories and files; hostile paths
 * a coding model could try (a symlinked prompts folder, a climb out, a hard link, a file of the wrong kind).
 */
import { linkSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { checkRead, checkWrite } from "../../../src/coding-agent/sandbox.ts";
import { validateConfig } from "../../../src/config/load.ts";
import { fileGuard } from "../../../src/gate/decide.ts";
import { hardcodeVerdictFor } from "../../../src/gate/held-out.ts";
import { openRepo } from "../../../src/git/repo.ts";
import { editableSpecs, isEditable, listEditable } from "../../../src/workspace/editable.ts";
import { makeRepo, type TempRepo } from "../../fixtures/temp-repo.ts";

const SPECS = ["agent/agent.ts", "agent/prompts/*.md", "agent/lib/**/*.ts"];
let repo: TempRepo | undefined;
afterEach(() => {
  repo?.cleanup();
  repo = undefined;
});

const withPrompts = () =>
  makeRepo("editable", { "agent/prompts/system.md": "Be brief.\n", "agent/prompts/tone.md": "Be kind.\n" });

describe("what `editable` names", () => {
  it("matches `*` within a folder and `**` across folders, and nothing else", () => {
    expect(isEditable("agent/prompts/a.md", SPECS)).toBe(true);
    expect(isEditable("agent/prompts/deep/a.md", SPECS)).toBe(false);
    expect(isEditable("agent/prompts/a.ts", SPECS)).toBe(false);
    expect(isEditable("agent/lib/a/b/c.ts", SPECS)).toBe(true);
    expect(isEditable("agent/lib/c.ts", SPECS)).toBe(true);
    expect(isEditable("agent/other.ts", SPECS)).toBe(false);
    expect(editableSpecs({ agent_file: "agent/agent.ts", editable: ["agent/agent.ts", "agent/p/*.md"] })).toEqual([
      "agent/agent.ts",
      "agent/p/*.md",
    ]);
  });

  it("refuses a pattern outside the agent's folder, climbing out, or into hidden folders, naming the entry", () => {
    const bad = ["../PROGRAM.md", "PROGRAM.md", "/etc/*", "agent/../src/*.ts", "agent/.git/*", "agent/node_modules/**"];
    const { config, errors } = validateConfig({ benchmark: "example", editable: bad });
    expect(config).toBeNull();
    expect(errors).toHaveLength(bad.length);
    for (const [i, b] of bad.entries()) expect(errors[i]).toContain(`editable.${i}: got "${b}"`);
    expect(validateConfig({ benchmark: "example", editable: ["agent/prompts/*.md"] }).errors).toEqual([]);
  });

  it("racing several candidates needs the paired rule: one line naming both settings", () => {
    const { errors } = validateConfig({ benchmark: "example", candidates: 3, gate_rule: "bayes" });
    expect(errors).toEqual([expect.stringMatching(/^candidates: got 3; .*gate_rule: paired/)]);
  });

  it("lists the files a copy holds, not following a symlink and skipping hidden folders", () => {
    repo = withPrompts();
    symlinkSync("/etc/passwd", join(repo.root, "agent/prompts/passwd.md"));
    repo.write("agent/prompts/.hidden/x.md", "x");
    repo.write("agent/lib/a/b.ts", "export {};\n");
    expect(listEditable(repo.root, SPECS)).toEqual([
      "agent/agent.ts",
      "agent/lib/a/b.ts",
      "agent/prompts/system.md",
      "agent/prompts/tone.md",
    ]);
  });
});

describe("the coding model's writes", () => {
  it("may change and create matching files, and nothing else however it is named", () => {
    repo = withPrompts();
    const r = repo.root;
    expect(checkWrite(r, "agent/prompts/system.md", SPECS)).toMatchObject({ ok: true });
    expect(checkWrite(r, "agent/prompts/new.md", SPECS)).toMatchObject({ ok: true });
    expect(checkWrite(r, "agent/lib/new/deep.ts", SPECS)).toMatchObject({ ok: true });
    for (const hostile of [
      "agent/prompts/../../PROGRAM.md",
      "agent/prompts/x.ts",
      "PROGRAM.md",
      "agent/templates/x.md",
      "/etc/passwd",
    ])
      expect(checkWrite(r, hostile, SPECS), hostile).toMatchObject({ ok: false });
    // Only the agent file when nothing else is editable.
    expect(checkWrite(r, "agent/prompts/system.md")).toMatchObject({ ok: false });
    // A prompt file is readable because it is editable.
    expect(checkRead(r, "agent/prompts/tone.md", null, SPECS)).toMatchObject({ ok: true });
  });

  it("refuses a prompts folder that is a symlink out of the experiment, a symlinked file, and a hard link", () => {
    repo = makeRepo("editable-hostile");
    const r = repo.root;
    const outside = join(r, "..", `outside-${process.pid}`);
    mkdirSync(outside, { recursive: true });
    symlinkSync(outside, join(r, "agent/prompts"));
    expect(checkWrite(r, "agent/prompts/new.md", SPECS)).toMatchObject({
      ok: false,
      message: expect.stringContaining("resolves outside"),
    });
    mkdirSync(join(r, "agent/lib"));
    symlinkSync("/etc/hostname", join(r, "agent/lib/host.ts"));
    expect(checkWrite(r, "agent/lib/host.ts", SPECS)).toMatchObject({ ok: false });
    writeFileSync(join(outside, "shadow.ts"), "x");
    linkSync(join(outside, "shadow.ts"), join(r, "agent/lib/linked.ts"));
    expect(checkWrite(r, "agent/lib/linked.ts", SPECS)).toMatchObject({
      ok: false,
      message: expect.stringContaining("hard link"),
    });
  });
});

describe("guard, commit, restore and diff over every editable file", () => {
  it("the file guard lets a prompt change through only when prompts are editable", () => {
    const changes = [{ path: "agent/prompts/system.md", kind: "modified" as const }];
    expect(fileGuard(changes, SPECS).passed).toBe(true);
    expect(fileGuard(changes, "agent/agent.ts")).toEqual({ passed: false, offending: ["agent/prompts/system.md"] });
  });

  it("commits a changed, a new and a removed prompt together, and nothing else changed beside them", async () => {
    repo = withPrompts();
    const git = openRepo(repo.root);
    repo.write("agent/prompts/system.md", "Be very brief.\n");
    repo.write("agent/prompts/extra.md", "New.\n");
    rmSync(join(repo.root, "agent/prompts/tone.md"));
    repo.write("README.md", "# changed, not editable\n");
    const diff = await git.diffOfWorkingFile(SPECS);
    expect(diff).toContain("+New.");
    expect(diff).toContain("+Be very brief.");
    expect(diff).not.toContain("not editable");
    expect(await git.fileDiffersFromHead(SPECS)).toBe(true);
    const sha = await git.commitFile(SPECS, "improve: prompts");
    expect(repo.git("show", "--name-status", "--format=", sha).trim().split("\n").sort()).toEqual([
      "A\tagent/prompts/extra.md",
      "D\tagent/prompts/tone.md",
      "M\tagent/prompts/system.md",
    ]);
    expect(repo.git("status", "--porcelain").trim()).toBe("M README.md");
    expect(await git.lastAcceptedCommit(SPECS)).toBe(sha);
  });

  it("a rejected change is restored in every file: edits undone, new files removed, removed ones back", async () => {
    repo = withPrompts();
    const git = openRepo(repo.root);
    const accepted = await git.lastAcceptedCommit(SPECS);
    repo.write("agent/agent.ts", "export const prompt = 'v2';\n");
    repo.write("agent/prompts/system.md", "Changed.\n");
    repo.write("agent/prompts/sneaky.md", "New.\n");
    rmSync(join(repo.root, "agent/prompts/tone.md"));
    await git.restoreFile(SPECS, accepted);
    expect(repo.git("status", "--porcelain", "--untracked-files=all").trim()).toBe("");
    expect(repo.read("agent/prompts/tone.md")).toBe("Be kind.\n");
  });

  it("a held-out task's id hidden in a prompt file fails the hard-coding check", async () => {
    repo = withPrompts();
    const heldOut = { ids: ["held-out-task-31"], inputs: [], trainInputs: [] };
    const git = openRepo(repo.root);
    expect((await hardcodeVerdictFor(git, SPECS, repo.root, heldOut)).passed).toBe(true);
    repo.write("agent/prompts/tone.md", "If the task is held-out-task-31, answer 42.\n");
    expect((await hardcodeVerdictFor(git, SPECS, repo.root, heldOut)).passed).toBe(false);
    // Not editable, not checked as the agent's: the guard refuses such a file before this check runs.
    expect((await hardcodeVerdictFor(git, ["agent/agent.ts"], repo.root, heldOut)).passed).toBe(true);
  });
});
