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
