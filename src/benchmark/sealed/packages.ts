/**
 * The experiment's own packages, as its agent process sees them: a TypeScript agent resolves imports from the
 * experiment's `node_modules` (any layout: one beside it, a monorepo's hoisted one above it, pnpm's links into
 * `.pnpm` or out to a workspace package), a Python agent runs under the experiment's virtualenv (`python:`).
 * Each directory is bound read-only at its own real path, so a link resolved inside the sandbox lands where it
 * does outside; the lockfiles that pin them are what `prepare` records (lockfiles.ts in the experiment room).
 */
import { existsSync, lstatSync, readdirSync, realpathSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, resolve, sep } from "node:path";
import { UserError } from "../../errors.ts";

export interface AgentPackages {
  /** `node_modules` directories the agent's imports resolve from, nearest first (its NODE_PATH), by real path. */
  nodeModules: string[];
  /** Real directories outside them that their packages link to (a workspace package), bound read-only too. */
  linked: string[];
  /** The experiment's Python, when `python:` names one. */
  python: ExperimentPython | null;
}

export interface ExperimentPython {
  /** The interpreter as the config names it, made absolute: the virtualenv is found from this path, not its target. */
  executable: string;
  /** The virtualenv's directory (where pyvenv.cfg is), or null for a plain interpreter. */
  venv: string | null;
  /** Where the interpreter it links to is installed, when that is outside /usr (a uv- or pyenv-managed Python). */
  base: string | null;
}

export const NO_PACKAGES: AgentPackages = { nodeModules: [], linked: [], python: null };

const inside = (path: string, dir: string) => path === dir || path.startsWith(dir.endsWith(sep) ? dir : `${dir}${sep}`);

/** `node_modules` on the way up from `from`, as Node looks for them, each by its real path. */
function nodeModulesAbove(from: string): string[] {
  const found: string[] = [];
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules");
    try {
      if (statSync(candidate).isDirectory()) found.push(realpathSync(candidate));
    } catch {
      // none here
    }
    if (dirname(dir) === dir) return [...new Set(found)];
  }
}

/** A package directory's entries, scoped ones (`@scope/name`) included. */
function packageEntries(dir: string): string[] {
  const entries: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name.startsWith(".")) continue;
    if (name.startsWith("@")) {
      try {
        for (const scoped of readdirSync(join(dir, name))) entries.push(join(dir, name, scoped));
      } catch {
        // a file named @something
      }
    } else entries.push(join(dir, name));
  }
  return entries;
}

/** Real directories that packages in these `node_modules` link out to (pnpm's and npm's workspace links). */
function linkedOutside(nodeModules: string[]): string[] {
  const linked = new Set<string>();
  for (const dir of nodeModules) {
    for (const entry of packageEntries(dir)) {
      try {
        if (!lstatSync(entry).isSymbolicLink()) continue;
        const target = realpathSync(entry);
        if (!nodeModules.some((d) => inside(target, d))) linked.add(target);
      } catch {
        // a dangling link: Node would not resolve it either
      }
    }
  }
  const sorted = [...linked].sort();
  return sorted.filter((d) => !sorted.some((o) => o !== d && inside(d, o)));
}

/** The interpreter `python:` names, with the virtualenv it belongs to; one line naming the key when it is not there. */
export function experimentPython(root: string, python: string): ExperimentPython {
  const executable = isAbsolute(python) ? python : resolve(root, python);
  let target: string;
  try {
    target = realpathSync(executable);
    if (!statSync(target).isFile()) throw new Error("not a file");
  } catch {
    throw new UserError(
      "CONFIG_INVALID",
      `python: ${python} is not an interpreter (${executable} does not exist); make the virtualenv with \`python3 -m venv .venv\` and install the agent's packages into it, or remove the key`,
    );
  }
  const venv = [dirname(executable), dirname(dirname(executable))].find((d) => existsSync(join(d, "pyvenv.cfg")));
  const base = target.startsWith("/usr/") ? null : dirname(dirname(target));
  return { executable, venv: venv ?? null, base: base && venv && inside(base, venv) ? null : base };
}

/**
 * The packages of the experiment at `root` whose agent file is `agentFile` (relative to it): the
 * `node_modules` its imports would resolve from, and the Python `python` names (relative to the root).
 */
export function experimentPackages(root: string, agentFile: string, python: string | null): AgentPackages {
  const nodeModules = nodeModulesAbove(dirname(resolve(root, agentFile)));
  return {
    nodeModules,
    linked: linkedOutside(nodeModules),
    python: python ? experimentPython(root, python) : null,
  };
}

/** Every directory to bind read-only into the agent's sandbox, each at its own path. */
export function packageBinds(p: AgentPackages): { source: string; inside: string }[] {
  const binds = [...p.nodeModules, ...p.linked].map((dir) => ({ source: dir, inside: dir }));
  if (p.python?.venv) binds.push({ source: realpathSync(p.python.venv), inside: p.python.venv });
  if (p.python?.base) binds.push({ source: p.python.base, inside: p.python.base });
  return binds;
}
