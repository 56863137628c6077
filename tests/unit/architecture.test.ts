/**
 * docs/ARCHITECTURE.md's rooms and rules, checked against every import in src/, machines/ and dev/.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const MACHINE_MAY_IMPORT = ["src/budget.ts", "src/domain.ts", "src/errors.ts", "src/scoring.ts", "src/contracts.ts"];

/** The layer table of docs/ARCHITECTURE.md: room → layer. */
function layers(): Map<string, number> {
  const doc = readFileSync(join(ROOT, "docs", "ARCHITECTURE.md"), "utf8");
  const rows = [...doc.matchAll(/^\| (\d) \| `([^`]+)` \|/gm)];
  return new Map(rows.map((m) => [m[2]!, Number(m[1])]));
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|mjs)$/.test(name) ? [path] : [];
  });
}

interface Import {
  from: string;
  /** Repository-relative target for a relative import; the bare specifier otherwise. */
  to: string;
  relative: boolean;
}

function importsOf(file: string): Import[] {
  const text = readFileSync(file, "utf8");
  const specs = [
    ...text.matchAll(/^\s*(?:import|export)\b[^'"`;]*?\bfrom\s*["']([^"']+)["']/gm),
    ...text.matchAll(/^\s*import\s*["']([^"']+)["']/gm),
    ...text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g),
  ].map((m) => m[1]!);
  const from = relative(ROOT, file);
  return specs.map((spec) =>
    spec.startsWith(".")
      ? { from, to: relative(ROOT, resolve(dirname(file), spec)), relative: true }
      : { from, to: spec, relative: false },
  );
}

/** The room a repository path belongs to, as the table names rooms. */
function roomOf(path: string): string {
  const parts = path.split("/");
  if (parts[0] !== "src") return parts[0]!;
  return parts.length === 2 ? parts[1]!.replace(/\.(ts|mts|mjs)$/, "") : parts[1]!;
}

/**
 * Each external package has one owner (a room, or a file inside one) that wraps it for the rest; zod is the
 * house's vocabulary for shapes, used everywhere. Type-only imports do not count (they wrap nothing).
 * `cli/init-templates/` are files copied into a user's experiment, not the harness's modules.
 */
const PACKAGE_OWNERS: Record<string, readonly string[]> = {
  "simple-git": ["src/git/"],
  "better-sqlite3": ["src/journal/"],
  pino: ["src/log.ts"],
  xstate: ["machines/", "src/daemon/daemon.ts"],
  "@anthropic-ai/sdk": ["src/llm/", "src/benchmark/sealed/child.ts"],
  openai: [],
  "p-retry": ["src/llm/"],
  bullmq: ["src/distributed/queue.ts"],
  ioredis: ["src/distributed/"],
  yaml: ["src/config/"],
  esbuild: ["src/benchmark/sealed/"],
  tsx: ["src/benchmark/ts-module.ts"],
  commander: ["src/cli/program.ts"],
  zod: ["src/"],
};

/** Rooms that decide (the loop, the gate, what is kept): time only through the injected clock, never a timer. */
const DECIDING_ROOMS = [
  "machines",
  "gate",
  "steps",
  "daemon",
  "journal",
  "record",
  "learnings",
  "experiment",
  "steering",
  "budget",
  "verdicts",
  "report",
  "contracts",
  "scoring",
  "domain",
];
/** The composition edge: the CLI starts the system clock and stamps what it prints; the log stamps its lines. */
const TIME_EDGE = ["cli", "log", "clock", "view"];

const ALL = ["src", "machines", "dev"].flatMap((d) => sourceFiles(join(ROOT, d))).flatMap(importsOf);
const LOCAL = ALL.filter((i) => i.relative);

describe("architecture (docs/ARCHITECTURE.md)", () => {
  it("the table names the rooms that exist", () => {
    const table = layers();
    expect(table.size).toBeGreaterThan(20);
    const rooms = new Set(
      ["src", "machines", "dev"].flatMap((d) => sourceFiles(join(ROOT, d))).map((f) => roomOf(relative(ROOT, f))),
    );
    // A listed room that no longer exists is a stale page; a room the page does not list has no layer.
    expect([...table.keys()].filter((room) => !rooms.has(room))).toEqual([]);
    expect([...rooms].filter((room) => !table.has(room))).toEqual([]);
  });

  it("machines/ imports no I/O: xstate, its own files and the pure src/ modules only", () => {
    const bad = ALL.filter((i) => i.from.startsWith("machines/")).filter((i) =>
      i.relative ? !i.to.startsWith("machines/") && !MACHINE_MAY_IMPORT.includes(i.to) : i.to !== "xstate",
    );
    expect(bad).toEqual([]);
  });

  it("src/ never imports dev/, tests/ or bench/", () => {
    const bad = LOCAL.filter((i) => i.from.startsWith("src/") && /^(dev|tests|bench)\//.test(i.to));
    expect(bad).toEqual([]);
  });

  it("no import runs against the layers", () => {
    const table = layers();
    const layer = (room: string) => table.get(room) ?? 2;
    const bad = LOCAL.filter((i) => layer(roomOf(i.to)) > layer(roomOf(i.from))).map(
      (i) => `${i.from} (${roomOf(i.from)}, layer ${layer(roomOf(i.from))}) → ${i.to} (layer ${layer(roomOf(i.to))})`,
    );
    expect(bad).toEqual([]);
  });

  it("the rooms form no cycle", () => {
    const edges = new Map<string, Set<string>>();
    for (const i of LOCAL) {
      const [a, b] = [roomOf(i.from), roomOf(i.to)];
      if (a !== b) edges.set(a, (edges.get(a) ?? new Set()).add(b));
    }
    const cycles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const visit = (room: string, path: string[]) => {
      if (state.get(room) === "done") return;
      if (state.get(room) === "open") {
        cycles.push([...path.slice(path.indexOf(room)), room].join(" → "));
        return;
      }
      state.set(room, "open");
      for (const next of edges.get(room) ?? []) visit(next, [...path, room]);
      state.set(room, "done");
    };
    for (const room of edges.keys()) visit(room, []);
    expect(cycles).toEqual([]);
  });

  it("each external package is wrapped by its one owner", () => {
    const files = ["src", "machines"]
      .flatMap((d) => sourceFiles(join(ROOT, d)))
      .filter((f) => !relative(ROOT, f).startsWith("src/cli/init-templates/"));
    const bad: string[] = [];
    for (const file of files) {
      const from = relative(ROOT, file);
      const text = readFileSync(file, "utf8");
      for (const m of text.matchAll(/^\s*import\s+(type\s+)?[^'"`;]*?\bfrom\s*["']([^"'./][^"']*)["']/gm)) {
        if (m[1]) continue;
        const spec = m[2]!;
        if (spec.startsWith("node:")) continue;
        const pkg = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!;
        const owners = PACKAGE_OWNERS[pkg];
        if (!owners) bad.push(`${from}: ${pkg} has no owner in PACKAGE_OWNERS (name the one room that wraps it)`);
        else if (!owners.some((o) => from === o || from.startsWith(o)))
          bad.push(`${from} → ${pkg} (owned by ${owners.join(", ") || "no module: templates only"})`);
      }
    }
    expect(bad).toEqual([]);
  });

  it("time only through the clock: no direct reads outside the edge (but as a default), no timers where decisions are made", () => {
    const reads = /\bDate\.now\(\)|\bnew Date\(\)|\bperformance\.now\(\)/;
    // An injectable default (`now = new Date()`, `deps.now ?? (() => new Date())`) is the clock's seam, not a read.
    const asDefault =
      /\b\w+\s*=\s*(?:\(\)\s*=>\s*)?(?:Date\.now\(\)|new Date\(\))\s*[,)}]|\?\?\s*\(?(?:\(\)\s*=>\s*)?(?:Date\.now\(\)|new Date\(\))/;
    const timers = /\bset(?:Timeout|Interval|Immediate)\(/;
    const bad: string[] = [];
    for (const file of ["src", "machines"].flatMap((d) => sourceFiles(join(ROOT, d)))) {
      const from = relative(ROOT, file);
      if (from.startsWith("src/cli/init-templates/")) continue;
      const room = roomOf(from);
      readFileSync(file, "utf8")
        .split("\n")
        .forEach((line, i) => {
          if (/^\s*(\/\/|\*)/.test(line)) return;
          if (!TIME_EDGE.includes(room) && reads.test(line) && !asDefault.test(line))
            bad.push(`${from}:${i + 1}: reads the time directly; take it from the injected Clock`);
          if (DECIDING_ROOMS.includes(room) && timers.test(line))
            bad.push(`${from}:${i + 1}: a timer where decisions are made; wait through Clock.sleep`);
        });
    }
    expect(bad).toEqual([]);
  });

  it("no decision reads a workspace view: results.tsv, split.json and suite.json only where each is listed", () => {
    // The journal's pins are the records; these files are views. Each read left in a deciding room says why.
    const allowed: Record<string, string> = {
      "src/gate/records.ts":
        "reconciles each view with its pin (a differing view is restored and reported); pins a legacy baseline once",
      "src/gate/gate.ts":
        "the gate run without a journal (`gate` on a bare workspace); with one, the pins replace what it read",
      "src/gate/held-out.ts": "the held-out tasks when no pinned split is passed (commands outside a run)",
      "src/daemon/history.ts": "evidence that runs happened here, to refuse a lost journal",
      "src/daemon/start.ts": "iteration numbers only: an adopted experiment numbers on from the original's rows",
      "src/record/record.ts":
        "a damaged results.tsv stops the step before anything is committed (a check, not a decision)",
      "src/learnings/learnings.ts": "the closing summary's text, written from the view it describes",
      "src/experiment/prepare.ts": "prepare checks the files it is about to pin",
      "src/report/gather.ts":
        "the report shows results.tsv's rows as the view they are; its figures come from the journal",
    };
    const views = /\b(readResults|readSplit|readSuite)\(/;
    const bad = ["src", "machines"]
      .flatMap((d) => sourceFiles(join(ROOT, d)))
      .map((f) => relative(ROOT, f))
      .filter((from) => DECIDING_ROOMS.includes(roomOf(from)) && !allowed[from])
      .filter((from) => views.test(readFileSync(join(ROOT, from), "utf8")));
    expect(bad).toEqual([]);
  });

  it("the checks see the arrows they are meant to catch", () => {
    // The parser finds type-only, re-exported and dynamic imports, so the rules above are not vacuous.
    const found = (from: string, to: string) => LOCAL.some((i) => i.from === from && i.to === to);
    expect(found("machines/loop.ts", "src/contracts.ts")).toBe(true);
    expect(found("src/cli/program.ts", "src/cli/report.ts")).toBe(true);
    expect(roomOf("src/contracts.ts")).toBe("contracts");
    expect(roomOf("src/steps/steps.ts")).toBe("steps");
    expect(roomOf("src/errors.ts")).toBe("errors");
  });
});
