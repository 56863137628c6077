import { existsSync, mkdirSync } from "node:fs";
import { join, relative } from "node:path";
import { UserError } from "../errors.ts";
import { openRepo } from "../git/repo.ts";
import { Journal } from "../journal/journal.ts";
import { gatherReport } from "../report/gather.ts";
import { renderReport } from "../report/render.ts";
import { redact } from "../secrets.ts";
import { writeFileAtomic } from "../workspace/files.ts";
import { type GlobalOptions, openExperiment, requirePrepared } from "./experiment.ts";

/** Every run id in the journal, oldest first (none without a journal). */
function journalRuns(journalFile: string): string[] {
  if (!existsSync(journalFile)) return [];
  const journal = Journal.open(journalFile, { readonly: true });
  try {
    return journal.schemaVersion() === 0 ? [] : journal.runs.runs().map((r) => r.id);
  } finally {
    journal.close();
  }
}

/**
 * `report [--run <id>]`: one page per run. workspace/report.html shows the chosen run (default: the latest),
 * and workspace/reports/<run>.html holds every run's page, so the picker's links all open. Gathers
 * (read-only), renders (pure), writes. Safe while the daemon runs.
 */
export async function reportCommand(
  options: GlobalOptions & { stdout?: NodeJS.WritableStream; now?: Date; run?: string },
): Promise<number> {
  const out = options.stdout ?? process.stdout;
  const exp = openExperiment(options);
  // The page is built from results.tsv: without it there is nothing to show, and nothing is written.
  if (!existsSync(exp.paths.results)) requirePrepared(exp);
  const all = journalRuns(exp.paths.journal);
  if (options.run !== undefined && !all.includes(options.run)) {
    throw new UserError(
      "USAGE",
      `--run ${options.run}: no such run in the journal; ${all.length ? `its runs: ${all.join(", ")}` : "it holds no run yet"}`,
    );
  }
  const repo = openRepo(exp.root);
  const now = options.now ?? new Date();
  const page = async (runId: string | undefined, runHref?: (id: string) => string) => {
    const data = await gatherReport({
      paths: exp.paths,
      benchmark: exp.config.benchmark,
      repo,
      now,
      ...(runId ? { runId } : {}),
    });
    return { data, html: redact(renderReport(runHref ? { ...data, runHref } : data)) };
  };
  const dir = join(exp.paths.workspace, "reports");
  if (all.length) mkdirSync(dir, { recursive: true });
  for (const id of all) {
    const { html } = await page(id, (other) => `${encodeURIComponent(other)}.html`);
    writeFileAtomic(join(dir, `${id}.html`), html);
  }
  const { data, html } = await page(options.run);
  writeFileAtomic(exp.paths.report, html);
  const done = data.iterations.filter((i) => i.outcome !== "baseline").length;
  const rel = (f: string) => relative(process.cwd(), f) || f;
  out.write(
    `wrote ${rel(exp.paths.report)} (${done} iterations)${data.run ? ` for run ${data.run.id}` : ""}` +
      `${all.length ? `; every run's page in ${rel(dir)}/` : ""}\n`,
  );
  return 0;
}
