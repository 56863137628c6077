/**
 * The harness's directory in $TMPDIR, `auto-harness-<uid>`: the agent runtimes the sandbox binds (the
 * TypeScript child bundled with the SDK, the Python runtime), named by their content, and one directory per
 * agent process, named by the harness's pid. Only the harness's user may write there (a directory another
 * user made or can write is refused); when the harness runs as root, the agent's user must read what is bound
 * into its sandbox, so the directory is traversable (0711) and each agent directory belongs to that user's
 * group (02750), unreadable to anyone else.
 */
import { createHash } from "node:crypto";
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildSync, version as esbuildVersion } from "esbuild";
import { writeFileAtomic } from "../../workspace/files.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const CHILD_SOURCES = ["child.ts", "channel.ts", "inside-endpoint.ts"].map((f) => join(HERE, f));
const PYTHON_SOURCE = join(HERE, "python", "harness_runtime.py");
const PYTHON_ENDPOINT = join(HERE, "python", "inside_endpoint.py");
const ENDPOINT_MARK = "# @inside-endpoint";
const require = createRequire(import.meta.url);

/** Owner rwx, others may pass through to a name they know but not list or write. */
const DIR_MODE = 0o711;
/** An agent's directory: the harness writes, the agent's group reads, new files take that group. */
const AGENT_DIR_MODE = 0o2750;

let swept = false;
let bundledChild: string | null = null;

/** $TMPDIR/auto-harness-<uid>, this user's alone to write; agent directories a dead harness left are removed once. */
export function runtimeDir(): string {
  const uid = process.getuid?.() ?? 0;
  const dir = join(tmpdir(), `auto-harness-${uid}`);
  mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o022) !== 0) {
    throw new Error(`${dir} is not a private directory of this user; remove it and start again`);
  }
  // Earlier versions made it 0700, which the agent's user cannot pass through.
  if ((st.mode & 0o777) !== DIR_MODE) chmodSync(dir, DIR_MODE);
  if (!swept) {
    swept = true;
    sweepDeadAgentDirs(dir);
  }
  return dir;
}

/** Whether a process of this pid exists (a harness that left directories behind is gone when not). */
export const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: a process of another user holds that pid now; leave its directory for a later start.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
};

/** Agent directories whose harness is gone (killed with -9, a crash, a power cut). */
export function sweepDeadAgentDirs(dir: string): string[] {
  const removed: string[] = [];
  for (const name of readdirSync(dir)) {
    const pid = /^agent-(\d+)-/.exec(name)?.[1];
    if (!pid || Number(pid) === process.pid || pidAlive(Number(pid))) continue;
    rmSync(join(dir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

/**
 * A fresh directory for one agent process, readable by `group` (the agent's user when the harness is root);
 * its name carries the harness's pid so that the next start can tell a dead harness's directories apart.
 */
export function newAgentDir(group: number | null): string {
  const dir = mkdtempSync(join(runtimeDir(), `agent-${process.pid}-`));
  if (group !== null) {
    chownSync(dir, process.getuid?.() ?? 0, group);
    chmodSync(dir, AGENT_DIR_MODE);
  }
  return dir;
}

/** Writes `content` as `<prefix>-<hash><ext>` in the runtime directory, readable by all (it is harness code). */
export function publishRuntimeFile(prefix: string, ext: string, content: string): string {
  const file = join(runtimeDir(), `${prefix}-${createHash("sha256").update(content).digest("hex").slice(0, 16)}${ext}`);
  if (!existsSync(file) || readFileSync(file, "utf8") !== content) writeFileAtomic(file, content);
  chmodSync(file, 0o644);
  return file;
}

/**
 * child.ts bundled with the channel and the SDK into one plain JavaScript file: the agent process needs no
 * TypeScript loader and no node_modules, so any layout of the harness's node_modules (pnpm's symlinks, a
 * monorepo's hoisted one) works. Bundling takes about 0.3 s: the bundle is kept, keyed by its inputs.
 */
export function childScriptPath(): string {
  if (bundledChild && existsSync(bundledChild)) return bundledChild;
  const inputs = createHash("sha256");
  for (const file of [...CHILD_SOURCES, sdkManifest()]) inputs.update(readFileSync(file)).update("\0");
  inputs.update(`${esbuildVersion}\0${process.versions.node}`);
  const key = inputs.digest("hex").slice(0, 16);
  const bundled = join(runtimeDir(), `child-${key}.mjs`);
  if (!existsSync(bundled)) {
    const out = buildSync({
      entryPoints: [join(HERE, "child.ts")],
      bundle: true,
      platform: "node",
      format: "esm",
      target: `node${process.versions.node.split(".")[0]}`,
      write: false,
      logLevel: "silent",
      // The SDK's CommonJS parts call require(); an ES module has none of its own.
      banner: { js: 'import { createRequire as __cr } from "node:module"; const require = __cr(import.meta.url);' },
    });
    writeFileAtomic(bundled, out.outputFiles[0]!.text);
    chmodSync(bundled, 0o644);
  }
  bundledChild = bundled;
  return bundled;
}

/** The SDK's package.json (its version keys the bundle); the package does not export that path. */
function sdkManifest(): string {
  let dir = dirname(require.resolve("@anthropic-ai/sdk"));
  while (!existsSync(join(dir, "package.json")) && dirname(dir) !== dir) dir = dirname(dir);
  return join(dir, "package.json");
}

/** The Python runtime, its endpoint joined in (one file, as the TypeScript one is bundled), where the agent's user can read it. */
export function pythonRuntimePath(): string {
  const runtime = readFileSync(PYTHON_SOURCE, "utf8");
  const endpoint = readFileSync(PYTHON_ENDPOINT, "utf8");
  return publishRuntimeFile(
    "harness_runtime",
    ".py",
    runtime.replace(ENDPOINT_MARK, () => endpoint),
  );
}
