/**
 * The coding agent's file allow-list (DESIGN §1 "anti-cheating is structural"): which paths its
 * tools may read or write, checked on the text of the path and again on its realpath, so neither
 * `..`, an absolute path nor a symlink can reach anything else.
 */
import { existsSync, lstatSync, realpathSync } from "node:fs";
import { isAbsolute, join, posix, relative, sep } from "node:path";
import { isEditable, isPattern } from "../workspace/editable.ts";
import { AGENT_FILE } from "../workspace/paths.ts";

/** Files the agent may view. */
export const READABLE_FILES = [
  AGENT_FILE,
  "PROGRAM.md",
  "workspace/learnings.md",
  "workspace/train_results.json",
  "workspace/suite.json",
  "workspace/results.tsv",
] as const;

/** Trees the agent may view (the folder and everything below it). */
export const READABLE_TREES = ["agent/templates", "workspace/traces/latest", "workspace/traces/baseline"] as const;

const TRACE_TREES = ["workspace/traces/latest", "workspace/traces/baseline"];

/**
 * What the model may change: the agent file (config `agent_file`) alone, or it first and then the config's
 * `editable` patterns. Everything editable is readable too.
 */
export type Editable = string | readonly string[];
const specsOf = (e: Editable): readonly string[] => (typeof e === "string" ? [e] : e);

/** The readable files besides the editable ones. */
const readableFiles = (e: Editable): readonly string[] => {
  const specs = specsOf(e);
  return specs.length === 1 && specs[0] === AGENT_FILE ? READABLE_FILES : [...specs, ...READABLE_FILES.slice(1)];
};

const writableText = (e: Editable): string => {
  const specs = specsOf(e);
  return specs.length === 1 ? `${specs[0]} only` : specs.join(", ");
};

export const allowedReadsText = (e: Editable = AGENT_FILE): string =>
  `readable: ${[...readableFiles(e), ...READABLE_TREES.map((t) => `${t}/**`)].join(", ")}; writable: ${writableText(e)}`;
export const ALLOWED_READS_TEXT = allowedReadsText();

export type PathCheck = { ok: true; rel: string; abs: string } | { ok: false; message: string };

/** Which train task ids exist (the journal's pinned split); null before one is pinned (then every trace folder counts as train). */
export type TrainIds = ReadonlySet<string> | null;

/** Normalises a path as the model wrote it, or says why it is refused. Pure: no file system access. */
export function normalizeRelPath(input: string): { ok: true; rel: string } | { ok: false; message: string } {
  if (input.includes("\0")) return { ok: false, message: "the path contains a NUL byte" };
  const trimmed = input.trim();
  if (trimmed === "") return { ok: false, message: "the path is empty" };
  if (isAbsolute(trimmed) || /^[A-Za-z]:[\\/]/.test(trimmed) || trimmed.startsWith("\\") || trimmed.startsWith("~")) {
    return {
      ok: false,
      message: `absolute paths are refused; use a path relative to the experiment root (${ALLOWED_READS_TEXT})`,
    };
  }
  const parts = trimmed.split(/[\\/]+/).filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) return { ok: false, message: `paths containing ".." are refused (${ALLOWED_READS_TEXT})` };
  return { ok: true, rel: parts.join("/") };
}

const under = (rel: string, tree: string): boolean => rel === tree || rel.startsWith(`${tree}/`);

/** The task id a trace path belongs to, or null for the trace folder itself. */
function traceTaskId(rel: string): { tree: string; taskId: string | null } | null {
  for (const tree of TRACE_TREES) {
    if (!under(rel, tree)) continue;
    const rest = rel.slice(tree.length + 1);
    return { tree, taskId: rest === "" ? null : (rest.split("/")[0] ?? null) };
  }
  return null;
}

/** Pure read policy on a normalised relative path. Baseline traces predate the split, so test ids are filtered there too. */
export function readableRel(rel: string, trainIds: TrainIds, agentFile: Editable = AGENT_FILE): boolean {
  if (readableFiles(agentFile).includes(rel) || isEditable(rel, specsOf(agentFile))) return true;
  if (!READABLE_TREES.some((t) => under(rel, t))) return false;
  const trace = traceTaskId(rel);
  if (trace?.taskId && trainIds && !trainIds.has(trace.taskId)) return false;
  return true;
}

/** Folders the agent may list: readable trees, plus their ancestors (listed filtered). */
export function listableAncestor(rel: string, agentFile: Editable = AGENT_FILE): boolean {
  // A pattern's folders up to its first wildcard, and below it the folders its matches may lie in.
  const patterns = specsOf(agentFile).filter(isPattern);
  const all = [...readableFiles(agentFile).filter((p) => !isPattern(p)), ...READABLE_TREES];
  if (rel === "" || all.some((p) => p.startsWith(`${rel}/`))) return true;
  return patterns.some((p) => {
    const fixed = p.split("/").slice(0, p.split("/").findIndex(isPattern)).join("/");
    return p.startsWith(`${rel}/`) || (p.includes("**") && (rel === fixed || rel.startsWith(`${fixed}/`)));
  });
}

function realRel(root: string, abs: string): string | null {
  const realRoot = realpathSync(root);
  let real: string;
  try {
    real = realpathSync(abs);
  } catch {
    return null;
  }
  const rel = relative(realRoot, real);
  if (rel === "") return "";
  if (rel.startsWith("..") || isAbsolute(rel)) return null;
  return rel.split(sep).join("/");
}

/**
 * Checks a path for reading: the text must be allowed, and if it exists its realpath must be
 * inside the root and allowed too (a symlink in a trace folder pointing at /etc is refused).
 */
export function checkRead(
  root: string,
  input: string,
  trainIds: TrainIds,
  agentFile: Editable = AGENT_FILE,
): PathCheck {
  const norm = normalizeRelPath(input);
  if (!norm.ok) return norm;
  const { rel } = norm;
  const allowed = readableRel(rel, trainIds, agentFile) || listableAncestor(rel, agentFile);
  const refused = `${input} is outside what you may read (${allowedReadsText(agentFile)})`;
  if (!allowed) return { ok: false, message: refused };
  const abs = rel === "" ? root : join(root, rel);
  if (existsSync(abs)) {
    // A hard link is the same file under an allowed name: realpath cannot tell where else it lives.
    if (hasOtherHardLinks(abs)) return { ok: false, message: `${input} has more than one hard link; refused` };
    const real = realRel(root, abs);
    if (real === null) return { ok: false, message: `${input} resolves outside the experiment (symlink); refused` };
    if (!(readableRel(real, trainIds, agentFile) || listableAncestor(real, agentFile))) {
      return {
        ok: false,
        message: `${input} resolves to a path you may not read (symlink); ${allowedReadsText(agentFile)}`,
      };
    }
  }
  return { ok: true, rel, abs };
}

/** A regular file with more than one name (a hard link could be to a file outside what may be read). */
export function hasOtherHardLinks(abs: string): boolean {
  try {
    const st = lstatSync(abs);
    return st.isFile() && st.nlink > 1;
  } catch {
    return false;
  }
}

/** Checks a path for writing: only an editable file, and only if it (and its folder) really is that file. */
export function checkWrite(root: string, input: string, editable: Editable = AGENT_FILE): PathCheck {
  const norm = normalizeRelPath(input);
  if (!norm.ok) return norm;
  const { rel } = norm;
  if (!isEditable(rel, specsOf(editable))) {
    return {
      ok: false,
      message: `only ${writableText(editable)} may be changed; ${input} is read-only or outside the sandbox`,
    };
  }
  const abs = join(root, rel);
  // The nearest folder that exists must be itself: a symlinked folder on the way leads somewhere else.
  let dir = posix.dirname(rel);
  while (dir !== "." && !existsSync(join(root, dir))) dir = posix.dirname(dir);
  if (dir !== "." && realRel(root, join(root, dir)) !== dir) {
    return { ok: false, message: `${rel} resolves outside the experiment; refused` };
  }
  if (existsSync(abs) && realRel(root, abs) !== rel) {
    return { ok: false, message: `${rel} is a symlink to another file; refused` };
  }
  if (hasOtherHardLinks(abs)) return { ok: false, message: `${rel} has more than one hard link; refused` };
  return { ok: true, rel, abs };
}
