import { existsSync } from "node:fs";
import { relative } from "node:path";
import { openRepo } from "../git/repo.ts";
import { gatherReport } from "../report/gather.ts";
import { renderReport } from "../report/render.ts";
import { redact } from "../secrets.ts";
import { writeFileAtomic } from "../workspace/files.ts";
import { type GlobalOptions, openExperiment, requirePrepared } from "./experiment.ts";

/** `report`: gathers (read-only), renders (pure), writes workspace/report.html. Safe while the daemon runs. */
export async function reportCommand(
  options: GlobalOptions & { stdout?: NodeJS.WritableStream; now?: Date },
): Promise<number> {
  const out = options.stdout ?? process.stdout;
  const exp = openExperiment(options);
  // The page is built from results.tsv: without it there is nothing to show, and nothing is written.
  if (!existsSync(exp.paths.results)) requirePrepared(exp);
  const data = await gatherReport({
    paths: exp.paths,
    benchmark: exp.config.benchmark,
    repo: openRepo(exp.root),
    now: options.now ?? new Date(),
  });
  writeFileAtomic(exp.paths.report, redact(renderReport(data)));
  const done = data.iterations.filter((i) => i.outcome !== "baseline").length;
  out.write(`wrote ${relative(process.cwd(), exp.paths.report) || exp.paths.report} (${done} iterations)\n`);
  return 0;
}
