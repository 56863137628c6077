/**
 * The hard-coding check, pure: a candidate agent file that names held-out tasks or copies long stretches of
 * their inputs is memorising the gate's questions, not generalising, and is rejected before it runs. Only
 * what the change added counts (text already in the last accepted file is the incumbent's), and a stretch
 * that also occurs in a train input is not held-out knowledge.
 */

export interface HeldOutTasks {
  /** Held-out task ids (test split, holdout). */
  ids: readonly string[];
  /** Every string of the held-out tasks' inputs. */
  inputs: readonly string[];
  /** Every string of the train tasks' inputs: stretches found there are not held-out. */
  trainInputs: readonly string[];
}

export interface HardcodeVerdict {
  passed: boolean;
  /** Held-out ids the change added. */
  idHits: number;
  /** Held-out inputs the change copied a stretch of. */
  fragmentHits: number;
  /** Why it was rejected; never quotes held-out content. */
  reason: string | null;
}

/** Characters of a verbatim stretch (whitespace normalised) that count as a copy. */
export const MIN_FRAGMENT = 40;
/** Shorter ids (`1`, `t3`) occur in ordinary code; they are not checked. */
export const MIN_ID_LENGTH = 4;

/** Whitespace collapsed; in code, the escapes a string literal would use for it too. */
export function normalizeText(text: string, code = false): string {
  const unescaped = code ? text.replace(/\\[nrt]/g, " ").replace(/\\(["'`\\])/g, "$1") : text;
  return unescaped.replace(/\s+/g, " ").trim();
}

function windows(text: string, size: number): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i + size <= text.length; i++) out.add(text.slice(i, i + size));
  return out;
}

const escapeRegex = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The id as a whole token: not part of a longer identifier or id. */
function containsId(text: string, id: string): boolean {
  return new RegExp(`(?<![A-Za-z0-9_-])${escapeRegex(id)}(?![A-Za-z0-9_-])`).test(text);
}

export function checkHardcoding(args: {
  candidate: string;
  accepted: string;
  heldOut: HeldOutTasks;
  minFragment?: number;
}): HardcodeVerdict {
  const size = args.minFragment ?? MIN_FRAGMENT;
  const idHits = args.heldOut.ids.filter(
    (id) => id.length >= MIN_ID_LENGTH && containsId(args.candidate, id) && !containsId(args.accepted, id),
  ).length;

  const candidate = normalizeText(args.candidate, true);
  const added = windows(candidate, size);
  if (added.size > 0) {
    for (const w of windows(normalizeText(args.accepted, true), size)) added.delete(w);
    for (const train of args.heldOut.trainInputs) {
      for (const w of windows(normalizeText(train), size)) added.delete(w);
    }
  }
  let fragmentHits = 0;
  for (const input of args.heldOut.inputs) {
    const text = normalizeText(input);
    for (let i = 0; i + size <= text.length; i++) {
      if (added.has(text.slice(i, i + size))) {
        fragmentHits++;
        break;
      }
    }
  }

  const passed = idHits === 0 && fragmentHits === 0;
  const found = [
    idHits > 0 ? `${idHits} held-out task id(s)` : null,
    fragmentHits > 0 ? `verbatim text (≥ ${size} characters) from ${fragmentHits} held-out task input(s)` : null,
  ].filter((s) => s !== null);
  return {
    passed,
    idHits,
    fragmentHits,
    reason: passed
      ? null
      : `hard-coding check: the change adds ${found.join(" and ")}; an agent must generalise from the train tasks, not name or copy the held-out ones`,
  };
}

/** Every string inside a task input (a message, the fields of an object), for the fragment check. */
export function inputStrings(input: unknown): string[] {
  if (typeof input === "string") return [input];
  if (Array.isArray(input)) return input.flatMap(inputStrings);
  if (input !== null && typeof input === "object") return Object.values(input).flatMap(inputStrings);
  return [];
}
