/**
 * The coding agent's text editor (Anthropic's `str_replace_based_edit_tool`: view, str_replace, create,
 * insert) over what it may read and write. The agent's folder is read and written in the session's own copy
 * of it (`agentRoot`: a candidate's worktree in a race), everything else in the experiment.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { z } from "zod";
import { agentDir, isEditable } from "../workspace/editable.ts";
import { writeFileAtomic } from "../workspace/files.ts";
import { allowedReadsText, checkRead, checkWrite, normalizeRelPath } from "./sandbox.ts";
import {
  cut,
  EDITOR_TOOL,
  fail,
  numbered,
  ok,
  type ToolContext,
  type ToolOutcome,
  zodProblem,
} from "./tool-context.ts";

const pathField = z.string().min(1);
const viewInput = z.strictObject({
  command: z.literal("view"),
  path: pathField,
  view_range: z.tuple([z.int().min(1), z.int().min(-1)]).optional(),
});
const strReplaceInput = z.strictObject({
  command: z.literal("str_replace"),
  path: pathField,
  old_str: z.string().min(1),
  new_str: z.string().default(""),
});
const createInput = z.strictObject({ command: z.literal("create"), path: pathField, file_text: z.string() });
const insertInput = z
  .strictObject({
    command: z.literal("insert"),
    path: pathField,
    insert_line: z.int().min(0),
    insert_text: z.string().optional(),
    new_str: z.string().optional(),
  })
  .refine((v) => v.insert_text !== undefined || v.new_str !== undefined, {
    message: "insert needs insert_text (or new_str)",
  });
const EDITOR_COMMANDS = ["view", "str_replace", "create", "insert"] as const;

/** The agent's folder lives in the session's own copy; the rest of the experiment is shared. */
function rootFor(ctx: ToolContext, input: string): string {
  const norm = normalizeRelPath(input);
  if (!norm.ok || ctx.agentRoot === ctx.root) return ctx.root;
  const dir = agentDir(ctx.agentFile);
  const inside = dir === "." ? isEditable(norm.rel, ctx.editable) : norm.rel === dir || norm.rel.startsWith(`${dir}/`);
  return inside ? ctx.agentRoot : ctx.root;
}

function view(ctx: ToolContext, input: z.infer<typeof viewInput>): ToolOutcome {
  const root = rootFor(ctx, input.path);
  const check = checkRead(root, input.path, ctx.trainIds, ctx.editable);
  if (!check.ok) return fail(check.message);
  if (!existsSync(check.abs)) return fail(`${check.rel || "."} does not exist (${allowedReadsText(ctx.editable)})`);
  if (statSync(check.abs).isDirectory()) return ok(listDir(ctx, root, check.rel));
  const text = readFileSync(check.abs, "utf8");
  const lines = text.split("\n");
  const [start, endRaw] = input.view_range ?? [1, -1];
  const end = endRaw === -1 ? lines.length : Math.min(endRaw, lines.length);
  if (start > lines.length || end < start) {
    return fail(`view_range [${start}, ${endRaw}] is outside the file's ${lines.length} lines`);
  }
  // Whole lines up to the limit, so the note can say exactly where to resume.
  const out: string[] = [];
  let size = 0;
  let line = start;
  for (; line <= end; line++) {
    const row = `${String(line).padStart(6)}\t${lines[line - 1] ?? ""}`;
    if (size + row.length + 1 > ctx.maxResultChars) break;
    out.push(row);
    size += row.length + 1;
  }
  if (line > end) return ok(out.join("\n"));
  if (out.length === 0) {
    const row = lines[line - 1] ?? "";
    return ok(
      `${numbered([row.slice(0, ctx.maxResultChars)], line)}\n[truncated: line ${line} has ${row.length} characters; showed the first ${ctx.maxResultChars}. Use search_traces to find specific content in it, or view_range [${line + 1}, -1] for the lines after it]`,
    );
  }
  return ok(
    `${out.join("\n")}\n[truncated: showed lines ${start}-${line - 1} of ${lines.length}; call view with view_range [${line}, -1] for the rest]`,
  );
}

function listDir(ctx: ToolContext, root: string, rel: string): string {
  const ids = ctx.trainIds;
  const abs = rel === "" ? root : join(root, rel);
  const entries = readdirSync(abs, { withFileTypes: true })
    .map((e) => ({ e, child: rel === "" ? e.name : `${rel}/${e.name}` }))
    .filter(({ child }) => checkRead(root, child, ids, ctx.editable).ok)
    .map(({ e, child }) => (e.isDirectory() ? `${child}/` : child))
    .sort();
  const shown = entries.slice(0, 500);
  const more = entries.length > shown.length ? `\n[${entries.length - shown.length} more entries not shown]` : "";
  return cut(
    `${rel || "."}/ (${entries.length} entries)\n${shown.join("\n")}${more}`,
    ctx.maxResultChars,
    "view a subfolder instead",
  );
}

function write(
  ctx: ToolContext,
  command: string,
  pathInput: string,
  change: (before: string, rel: string) => ToolOutcome | string,
) {
  if (ctx.phase !== "edit")
    return fail(`${command} is not available in the analyze phase: it is read-only; edits happen in the edit phase`);
  const check = checkWrite(ctx.agentRoot, pathInput, ctx.editable);
  if (!check.ok) return fail(check.message);
  const before = existsSync(check.abs) ? readFileSync(check.abs, "utf8") : "";
  const after = change(before, check.rel);
  if (typeof after !== "string") return after;
  mkdirSync(dirname(check.abs), { recursive: true });
  writeFileAtomic(check.abs, after);
  return ok(`${check.rel} updated (${command}); it now has ${after.split("\n").length} lines`);
}

export function editor(ctx: ToolContext, raw: unknown): ToolOutcome {
  const command = (raw as { command?: unknown } | null)?.command;
  if (typeof command !== "string" || !(EDITOR_COMMANDS as readonly string[]).includes(command)) {
    return fail(
      `unknown or missing command ${JSON.stringify(command)}; allowed commands: ${EDITOR_COMMANDS.join(", ")}`,
    );
  }
  const schema = { view: viewInput, str_replace: strReplaceInput, create: createInput, insert: insertInput }[
    command as (typeof EDITOR_COMMANDS)[number]
  ];
  const parsed = schema.safeParse(raw);
  if (!parsed.success) return fail(zodProblem(`${EDITOR_TOOL} ${command}`, parsed.error));
  const input = parsed.data;
  switch (input.command) {
    case "view":
      return view(ctx, input);
    case "create":
      return write(ctx, "create", input.path, () => input.file_text);
    case "str_replace":
      return write(ctx, "str_replace", input.path, (before, rel) => {
        const count = before.split(input.old_str).length - 1;
        if (count === 0) return fail(`old_str was not found in ${rel}; view the file and copy the text exactly`);
        if (count > 1) return fail(`old_str occurs ${count} times in ${rel}; include more context so it is unique`);
        return before.replace(input.old_str, () => input.new_str);
      });
    case "insert":
      return write(ctx, "insert", input.path, (before) => {
        const lines = before.split("\n");
        if (input.insert_line > lines.length) {
          return fail(`insert_line ${input.insert_line} is past the end of the file (${lines.length} lines)`);
        }
        const text = input.insert_text ?? input.new_str ?? "";
        lines.splice(input.insert_line, 0, ...text.split("\n"));
        return lines.join("\n");
      });
  }
}
