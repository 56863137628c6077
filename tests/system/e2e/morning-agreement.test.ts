/**
 * The morning after, as a user without bubblewrap sees it: `npm run demo` on a PATH with no bwrap runs
 * unsealed with a banner that says so, and the night's numbers agree everywhere they are shown: the run's
 * last line, `status --json`, the report and `view` say the same val_score, best, holdout verdict and spend,
 * to the cent.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import { findBwrap } from "../../../src/benchmark/sealed/sandbox.ts";
import { main } from "../../../src/cli/program.ts";
import { openView } from "../../../src/cli/view.ts";
import { Capture } from "../../helpers/capture.ts";
import { runDemo } from "../../helpers/demo.ts";
import { REPO_ROOT } from "../../helpers/experiment.ts";
import { findTool } from "../../helpers/tools.ts";

const scratch = mkdtempSync(join(tmpdir(), "morning-"));
const dir = join(scratch, "demo");
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A PATH with node and git only: what a macOS laptop or a slim container offers the demo. */
function pathWithoutBwrap(): string {
  const bin = join(scratch, "bin");
  mkdirSync(bin, { recursive: true });
  for (const tool of ["node", "git"]) symlinkSync(findTool(tool) as string, join(bin, tool));
  expect(findBwrap(bin)).toBeNull();
  return bin;
}

const text = (html: string, id: string): string => {
  const m = new RegExp(`id="${id}"[^>]*>(?:<div class="k">[^<]*</div><div class="v">)?([^<]*)<`).exec(html);
  if (!m) throw new Error(`no #${id} on the page`);
  return m[1]!.replace(/&#39;/g, "'").trim();
};

describe("the morning's numbers agree, on a machine without bubblewrap", () => {
  it("demo unsealed with its banner; last line, status --json, report and view agree to the cent", async () => {
    const stdout = await runDemo(dir, { ...process.env, PATH: pathWithoutBwrap() });
    expect(stdout).toContain("UNSEALED: bubblewrap (bwrap) is not installed here, so this demo runs the agent");
    expect(stdout).toContain("sudo apt-get install bubblewrap");
    // Said once, not once per benchmark run and gate look (it used to be 68 of the demo's 166 lines).
    expect(stdout.match(/the agent under test runs unsealed \(sandbox: none\)/g)).toHaveLength(1);
    expect(readFileSync(join(dir, "experiment_config.yaml"), "utf8")).toMatch(/^sandbox: none$/m);

    // 1. The run's last line.
    const last =
      /run done: [^;]+; val_score (\d\.\d{4}) \(best (\d\.\d{4}), baseline \d\.\d{4}\); \d+ accepted, \d+ rejected; sealed holdout ([a-z ]+): .*; spend \$(\d+\.\d\d) of \$20\.00/.exec(
        stdout,
      );
    expect(last, stdout).not.toBeNull();
    const [, valScore, best, verdict, spend] = last as unknown as [string, string, string, string, string];
    expect(["improved", "no detectable change", "worse", "too small to tell"]).toContain(verdict);

    // 2. status --json.
    const out = new Capture();
    expect(await main(["node", "auto-harness", "status", "--json", "--dir", dir], { stdout: out })).toBe(0);
    const status = JSON.parse(out.text);
    expect(status.valScore.toFixed(4)).toBe(valScore);
    expect(status.bestValScore.toFixed(4)).toBe(best);
    expect(status.holdout.verdict).toBe(verdict);
    expect(status.spendUsd.total.toFixed(2)).toBe(spend);
    expect(status.sandbox).toBe("none");

    // 3. The report the demo wrote.
    const html = readFileSync(join(dir, "workspace", "report.html"), "utf8");
    expect(text(html, "card-val-score")).toBe(valScore);
    expect(text(html, "card-best")).toBe(best);
    expect(text(html, "card-holdout")).toBe(verdict);
    expect(text(html, "card-spend")).toBe(`$${spend} of $20.00`);

    // 4. view.
    const view = await openView({ dir });
    try {
      const page = await (await fetch(`${view.url}runs/${status.run}`)).text();
      expect(text(page, "val-score")).toBe(valScore);
      expect(text(page, "best")).toBe(best);
      expect(text(page, "holdout").startsWith(`${verdict}:`)).toBe(true);
      expect(page).toContain(`$${spend} of $20.00`);
    } finally {
      await view.close();
    }

    // The report as a person sees it: kept as a test artifact (and the README's picture when asked to refresh it).
    const browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: ["--no-sandbox", "--disable-gpu"],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
      await page.goto(`file://${join(dir, "workspace", "report.html")}`);
      const artifacts = join(REPO_ROOT, "test-artifacts");
      mkdirSync(artifacts, { recursive: true });
      await page.screenshot({ path: join(artifacts, "report-demo.png") });
      if (process.env.AUTO_HARNESS_UPDATE_PICTURE === "1") {
        copyFileSync(join(artifacts, "report-demo.png"), join(REPO_ROOT, "docs", "report.png"));
      }
    } finally {
      await browser.close();
    }
  }, 620_000);
});
