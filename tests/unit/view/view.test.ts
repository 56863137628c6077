/**
 * `auto-harness view` through the real CLI in a child process, over a real journal, git repository and
 * traces: navigated in headless Chromium (a run, a round's diff, a transcript), screenshots kept under
 * test-artifacts/, every served byte scanned for held-out ids and inputs, and nothing written or accepted
 * but GET.
 */
import type { ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { get } from "node:http";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { paths } from "../../../src/workspace/paths.ts";
import { REPO_ROOT, spawnCli } from "../../helpers/experiment.ts";
import { buildNight, HELD_OUT, RUN, SPLIT, TRAIN_TEXT } from "../../helpers/night.ts";
import { tempDir } from "../../helpers/temp.ts";
import { haveTool } from "../../helpers/tools.ts";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const ARTIFACTS = join(REPO_ROOT, "test-artifacts");

/** Starts `view` as a user does; resolves with its URL once it says where it listens. */
async function startViewCli(dir: string): Promise<{ child: ChildProcess; url: string }> {
  const view = spawnCli(["view", "--dir", dir], {}, join(REPO_ROOT, "src", "cli", "main.ts"));
  let exited = false;
  void view.exited.then(() => {
    exited = true;
  });
  for (let i = 0; i < 1200 && !exited; i++) {
    const m = /view: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(view.stdout());
    if (m) return { child: view.child, url: m[1]! };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`view did not start: ${view.stderr()}`);
}

describe.skipIf(!haveTool(CHROMIUM, "chromium"))("auto-harness view", () => {
  let root: string;
  let view: { child: ChildProcess; url: string };
  let browser: Browser;
  const served: string[] = [];
  let journalBefore: { size: number; mtimeMs: number };

  beforeAll(async () => {
    root = tempDir("view-");
    await buildNight(root);
    journalBefore = statSync(paths(root).journal);
    view = await startViewCli(root);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
    });
    mkdirSync(ARTIFACTS, { recursive: true });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    view?.child.kill("SIGINT");
  });

  it("navigates runs → a run's rounds (candidate, diff, gate evidence, spend) → a train transcript", async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.on("response", async (r) => {
      served.push(await r.text());
    });
    await page.goto(view.url);
    const row = page.locator(`tr[data-run="${RUN}"]`);
    await expect(row.textContent()).resolves.toMatch(/0\.5000.*too small to tell.*\$1\.07 of \$20\.00.*1 \/ 1/);
    await page.screenshot({ path: join(ARTIFACTS, "view-runs.png"), fullPage: true });

    await page.click(`a[href="/runs/${RUN}"]`);
    await expect(page.locator("#val-score").textContent()).resolves.toBe("0.5000");
    await expect(page.locator("#spend").textContent()).resolves.toMatch(
      /\$1\.07 of \$20\.00.*coding agent\$0\.80.*agent under test\$0\.27/,
    );
    const accepted = page.locator("#round-1");
    await expect(accepted.locator(".candidate.won .hyp").textContent()).resolves.toBe(
      "the agent refunds without checking identity",
    );
    // The diff of the accepted commit, with the added line marked as added.
    await expect(accepted.locator("pre.diff .add").first().textContent()).resolves.toBe(
      "+// verify the customer's identity first",
    );
    const gate = await accepted.locator("dl.gate").textContent();
    expect(gate).toMatch(/first pass12 held-out run\(s\), mean 0\.5000/);
    expect(gate).toMatch(/paired re-runs1 pair\(s\): candidate ahead in 1, incumbent ahead in 0/);
    expect(gate).toMatch(/P\(improvement\)0\.950/);
    await expect(accepted.locator("ul.looks").textContent()).resolves.toContain("look at 50% (6 held-out tasks)");
    // The hostile candidate's diff names and copies a held-out task: it is kept from the page.
    await expect(page.locator("#round-2 pre.diff").count()).resolves.toBe(0);
    await expect(page.locator("#round-2 .withheld").textContent()).resolves.toBe(
      "diff withheld: it names or copies held-out tasks",
    );
    await page.screenshot({ path: join(ARTIFACTS, "view-run.png"), fullPage: true });

    await page.click('a[href="/traces"]');
    const links = await page.locator("a[href^='/traces/']").evaluateAll((as) => as.map((a) => a.getAttribute("href")));
    expect(links).toEqual([`/traces/latest/${SPLIT.train[0]}`, `/traces/latest/${SPLIT.train[1]}`]);
    await page.click(`a[href="/traces/latest/${SPLIT.train[1]}"]`);
    const transcript = page.locator("#transcript");
    await expect(transcript.locator(".turn.system").textContent()).resolves.toContain("support agent for Acme Shop");
    await expect(transcript.locator(".turn.tool").first().textContent()).resolves.toMatch(
      /tool call · find_customer.*alice\.moreno@example\.com/s,
    );
    await expect(page.locator("#verdict").textContent()).resolves.toBe(
      "scorer's verdictreward 0 · order O1002 was not cancelled",
    );
    await page.screenshot({ path: join(ARTIFACTS, "view-transcript.png"), fullPage: true });
    await page.close();
  }, 120_000);

  it("serves no held-out id or input on any page, a held-out trace folder included", async () => {
    const urls = ["", `runs/${RUN}`, "traces", `traces/latest/${SPLIT.test[0]}`, `traces/latest/${SPLIT.train[0]}`];
    for (const u of urls) served.push(await (await fetch(view.url + u)).text());
    expect((await fetch(`${view.url}traces/latest/${SPLIT.test[0]}`)).status).toBe(404);
    // Read as a person would: entities and string escapes undone, whitespace collapsed.
    const all = served
      .join("\n")
      .replace(/&quot;/g, '"')
      .replace(/&#39;/g, "'")
      .replace(/&lt;/g, "<")
      .replace(/&gt;/g, ">")
      .replace(/&amp;/g, "&")
      .replace(/\\(["'\\])/g, "$1")
      .replace(/\s+/g, " ");
    expect(all.length).toBeGreaterThan(10_000);
    for (const secret of HELD_OUT) {
      // Any stretch of 24 characters of an input counts, as does an id as a whole token.
      const text = secret.replace(/\s+/g, " ");
      const stretches =
        text.length < 24 ? [text] : [...Array(text.length - 23).keys()].map((i) => text.slice(i, i + 24));
      for (const s of stretches.filter((x) => !TRAIN_TEXT.includes(x)))
        expect(all, `held out: ${secret}`).not.toContain(s);
    }
  });

  it("is read-only: only GET and HEAD, on 127.0.0.1, and the journal is untouched", async () => {
    for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
      const r = await fetch(view.url, { method });
      expect(r.status, method).toBe(405);
      expect(r.headers.get("allow")).toBe("GET, HEAD");
    }
    const csp = (await fetch(view.url)).headers.get("content-security-policy");
    expect(csp).toContain("default-src 'none'");
    // A page of another site reaching the view through its own host name is refused (DNS rebinding).
    const rebound = await new Promise<number>((resolve, reject) => {
      get(view.url, { headers: { host: "evil.example" } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on("error", reject);
    });
    expect(rebound).toBe(421);
    const after = statSync(paths(root).journal);
    expect({ size: after.size, mtimeMs: after.mtimeMs }).toEqual({
      size: journalBefore.size,
      mtimeMs: journalBefore.mtimeMs,
    });
    expect(readFileSync(paths(root).results, "utf8")).toMatch(/^iteration\t/);
  });
});
