/**
 * The hard-coding check, pure: a candidate agent file that names held-out tasks or copies long stretches of
 * their inputs is memorising the gate's questions, not generalising, and is rejected before it runs. Only
 * what the change added counts (text already in the last accepted file is the incumbent's), and a stretch
 * that also occurs in a train input is not held-out knowledge.
 *
 * Memorising the train tasks is caught too, when the caller gives them (`trainTasks`): a table of train
 * task ids, or a train task's own input copied verbatim, lets a candidate pass the tasks the coding model
 * saw fail without generalising (it reads the scorer's verdicts on them). Such tasks are listed in
 * `memorised`, so that suite promotion refuses them even when there are too few to reject the candidate.
 *
 * Ids are found as written, split into concatenated literals ('ho-' + 'test-1', ['ho-', 'test-1'].join('')),
 * and with their separators dropped or changed (ho_test_1, HOTEST1). Not caught: ids computed at run time
 * (a hash of the input looked up in a table, character codes, base64, a regex built from pieces), and inputs
 * paraphrased rather than copied.
 */

export interface HeldOutTasks {
  /** Held-out task ids (test split, holdout). */
  ids: readonly string[];
  /** Every string of the held-out tasks' inputs. */
  inputs: readonly string[];
  /** Every string of the train tasks' inputs: stretches found there are not held-out. */
  trainInputs: readonly string[];
  /** The train tasks (id and input strings): naming them in a table or copying their inputs is memorisation. */
  trainTasks?: readonly { id: string; inputs: readonly string[] }[];
}

export interface HardcodeVerdict {
  passed: boolean;
  /** Held-out ids the change added. */
  idHits: number;
  /** Held-out inputs the change copied a stretch of. */
  fragmentHits: number;
  /** Train ids the change added, and train inputs it copied a stretch of (that no other two inputs share). */
  trainIdHits: number;
  trainInputHits: number;
  /** Train tasks the change names or copies: suite promotion must not take them in. Never printed. */
  memorised: string[];
  /** Why it was rejected; never quotes held-out content. */
  reason: string | null;
}

/** Characters of a verbatim stretch (whitespace normalised) that count as a copy. */
export const MIN_FRAGMENT = 40;
/** Shorter ids (`1`, `t3`) occur in ordinary code; they are not checked. */
export const MIN_ID_LENGTH = 4;
/** Train ids the change adds before it counts as a table of them (one may be a comment on a failure). */
export const MIN_TRAIN_IDS = 2;
/** A copied stretch found in more train inputs than this is shared wording (a policy, a greeting), not a task's own. */
export const MAX_SHARED_INPUTS = 2;

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

interface Literal {
  start: number;
  end: number;
  value: string;
}

/** The string literals of a source text, by a linear scan (a hostile file must not stall a regex). */
function literals(code: string): Literal[] {
  const out: Literal[] = [];
  for (let i = 0; i < code.length; i++) {
    const q = code[i]!;
    if (q !== '"' && q !== "'" && q !== "`") continue;
    let value = "";
    let j = i + 1;
    for (; j < code.length && code[j] !== q && (q === "`" || code[j] !== "\n"); j++) {
      if (code[j] === "\\" && j + 1 < code.length) j++;
      value += code[j];
    }
    out.push({ start: i, end: j + 1, value });
    i = j;
  }
  return out;
}

/** Adjacent string literals joined: 'a' + "b" and ['a', 'b'].join('') read as 'ab' (appended to the text). */
export function joinedLiterals(code: string): string {
  const lits = literals(code);
  const joined: string[] = [];
  let run = "";
  let arrayRun: string[] = [];
  for (let k = 0; k < lits.length; k++) {
    const lit = lits[k]!;
    run += lit.value;
    arrayRun.push(lit.value);
    const next = lits[k + 1];
    const gap = next ? code.slice(lit.end, next.start) : "";
    if (next && /^\s*\+\s*$/.test(gap)) continue;
    if (next && /^\s*,\s*$/.test(gap)) {
      joined.push(run);
      run = "";
      continue;
    }
    joined.push(run);
    if (/^\s*,?\s*\]\s*\.join\(\s*(""|''|``)\s*\)/.test(code.slice(lit.end, lit.end + 40)))
      joined.push(arrayRun.join(""));
    run = "";
    arrayRun = [];
  }
  return `${code}\n${joined.map((v) => JSON.stringify(v)).join("\n")}`;
}

/** Separators dropped and case folded: ho_test_1, HO-TEST-1 and hotest1 read alike. */
const squeezed = (text: string): string => text.replace(/[-_.:/\s]+/g, "").toLowerCase();

/** The ids `text` names in any of the ways above. */
function idsNamed(text: string, ids: readonly string[]): Set<string> {
  const all = joinedLiterals(text);
  const flat = squeezed(all);
  const out = new Set<string>();
  for (const id of ids) {
    if (id.length < MIN_ID_LENGTH) continue;
    const sq = squeezed(id);
    const asWritten = containsId(all, id);
    const squeezedToo =
      sq.length >= MIN_ID_LENGTH + 2 && new RegExp(`(?<![a-z0-9])${escapeRegex(sq)}(?![a-z0-9])`).test(flat);
    if (asWritten || squeezedToo) out.add(id);
  }
  return out;
}

/** Ids the change added: named by the candidate, not by the accepted file. */
function addedIds(candidate: string, accepted: string, ids: readonly string[]): string[] {
  const before = idsNamed(accepted, ids);
  return [...idsNamed(candidate, ids)].filter((id) => !before.has(id));
}

/** Train tasks whose own input the change copied: a stretch of theirs that at most two train inputs share. */
function copiedTrainTasks(
  added: Set<string>,
  size: number,
  tasks: readonly { id: string; inputs: readonly string[] }[],
): string[] {
  const holders = new Map<string, Set<number>>();
  tasks.forEach((t, i) => {
    for (const input of t.inputs) {
      const text = normalizeText(input);
      for (let k = 0; k + size <= text.length; k++) {
        const w = text.slice(k, k + size);
        if (added.has(w)) holders.set(w, (holders.get(w) ?? new Set()).add(i));
      }
    }
  });
  const copied = new Set<number>();
  for (const who of holders.values()) if (who.size <= MAX_SHARED_INPUTS) for (const i of who) copied.add(i);
  return [...copied].map((i) => tasks[i]!.id);
}

export function checkHardcoding(args: {
  candidate: string;
  accepted: string;
  heldOut: HeldOutTasks;
  minFragment?: number;
}): HardcodeVerdict {
  const size = args.minFragment ?? MIN_FRAGMENT;
  const idHits = addedIds(args.candidate, args.accepted, args.heldOut.ids).length;

  const candidate = normalizeText(args.candidate, true);
  const added = windows(candidate, size);
  if (added.size > 0) for (const w of windows(normalizeText(args.accepted, true), size)) added.delete(w);
  const trainTasks = args.heldOut.trainTasks ?? [];
  const trainIds = addedIds(
    args.candidate,
    args.accepted,
    trainTasks.map((t) => t.id),
  );
  const copied = added.size > 0 ? copiedTrainTasks(added, size, trainTasks) : [];
  if (added.size > 0) {
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

  const memorised = [...new Set([...trainIds, ...copied])].sort();
  const trainIdHits = trainIds.length;
  const trainInputHits = copied.length;
  const tableOfIds = trainIdHits >= MIN_TRAIN_IDS;
  const passed = idHits === 0 && fragmentHits === 0 && !tableOfIds && trainInputHits === 0;
  const found = [
    idHits > 0 ? `${idHits} held-out task id(s)` : null,
    fragmentHits > 0 ? `verbatim text (≥ ${size} characters) from ${fragmentHits} held-out task input(s)` : null,
    tableOfIds ? `a table of ${trainIdHits} train task id(s)` : null,
    trainInputHits > 0 ? `verbatim text (≥ ${size} characters) from ${trainInputHits} train task input(s)` : null,
  ].filter((s) => s !== null);
  const why =
    idHits > 0 || fragmentHits > 0
      ? "an agent must generalise from the train tasks, not name or copy the held-out ones"
      : "memorising train tasks passes them without generalising; an agent must learn the pattern, not the tasks";
  return {
    passed,
    idHits,
    fragmentHits,
    trainIdHits,
    trainInputHits,
    memorised,
    reason: passed ? null : `hard-coding check: the change adds ${found.join(" and ")}; ${why}`,
  };
}

/** Every string inside a task input (a message, the fields of an object), for the fragment check. */
export function inputStrings(input: unknown): string[] {
  if (typeof input === "string") return [input];
  if (Array.isArray(input)) return input.flatMap(inputStrings);
  if (input !== null && typeof input === "object") return Object.values(input).flatMap(inputStrings);
  return [];
}
