import { existsSync } from "node:fs";
import { createAdapter } from "../benchmark/adapters/index.ts";
import { errorMessage, UserError } from "../errors.ts";
import type { HeldOutTasks } from "../gate/hardcode.ts";
import { heldOutOf } from "../gate/held-out.ts";
import { openRepo } from "../git/repo.ts";
import { Journal } from "../journal/journal.ts";
import { pinnedSplit } from "../journal/pins.ts";
import { startView, type ViewServer } from "../view/server.ts";
import type { SplitFile } from "../workspace/files.ts";
import { type GlobalOptions, openExperiment, requirePrepared } from "./experiment.ts";

function parsePort(raw: string | undefined): number {
  if (raw === undefined) return 0;
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port > 65_535)
    throw new UserError("USAGE", `--port must be a whole number from 0 to 65535, got "${raw}"`);
  return port;
}

function journalSplit(journalFile: string): SplitFile | null {
  if (!existsSync(journalFile)) return null;
  const journal = Journal.open(journalFile, { readonly: true });
  try {
    return journal.schemaVersion() === 0 ? null : pinnedSplit(journal.pins);
  } finally {
    journal.close();
  }
}

/** Starts the view; the caller closes it. */
export async function openView(options: GlobalOptions & { port?: string }): Promise<ViewServer> {
  const port = parsePort(options.port);
  const exp = openExperiment(options);
  requirePrepared(exp);
  let heldOut: HeldOutTasks;
  try {
    heldOut = await heldOutOf(createAdapter(exp.config, exp.root), exp.paths.split)(journalSplit(exp.paths.journal));
  } catch (error) {
    if (error instanceof UserError) throw error;
    throw new UserError(
      "CONFIG_INVALID",
      `view reads the held-out tasks to keep them off its pages, and could not: ${errorMessage(error).split("\n")[0]}`,
    );
  }
  try {
    return await startView({
      paths: exp.paths,
      benchmark: exp.config.benchmark,
      repo: openRepo(exp.root),
      heldOut,
      port,
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") {
      throw new UserError("USAGE", `port ${port} on 127.0.0.1 is in use; pick another with --port (0: any free one)`);
    }
    throw error;
  }
}

/** `view`: serves the journal read-only on 127.0.0.1 until Ctrl-C. */
export async function viewCommand(
  options: GlobalOptions & { port?: string; stdout?: NodeJS.WritableStream },
): Promise<number> {
  const out = options.stdout ?? process.stdout;
  const view = await openView(options);
  out.write(`view: ${view.url} (read-only; Ctrl-C stops it)\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  await view.close();
  return 0;
}
