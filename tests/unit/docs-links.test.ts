/**
 * The front door and the pages behind it: README.md stays short and shows how to start, and every relative link
 * in README.md and docs/*.md reaches a file and, with a #fragment, a heading that exist.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { tempDir } from "../helpers/temp.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const PAGES = [
  join(ROOT, "README.md"),
  ...readdirSync(join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => join(ROOT, "docs", f)),
];

/** Prose only: a link-like text in a code block or a code span is an example, not a link. */
function prose(markdown: string): string {
  return markdown.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, "").replace(/`[^`\n]*`/g, "");
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  const withoutCode = markdown.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, "");
  for (const [, text] of withoutCode.matchAll(/^#{1,6} +(.+?) *#*$/gm)) {
    const base = text!
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "")
      .replace(/ /g, "-");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Every relative link of a page that does not reach its file or heading, as "page: target (why)". */
function brokenLinks(page: string): { checked: number; broken: string[] } {
  const targets = [
    ...prose(readFileSync(page, "utf8")).matchAll(/\]\(([^)\s]+)(?: "[^"]*")?\)|\b(?:src|href)="([^"]+)"/g),
  ]
    .map((m) => (m[1] ?? m[2])!)
    .filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t));
  const broken: string[] = [];
  for (const target of targets) {
    const [path, fragment] = target.split("#", 2) as [string, string | undefined];
    const file = path === "" ? page : resolve(dirname(page), decodeURIComponent(path));
    const name = `${relative(ROOT, page)}: ${target}`;
    if (!existsSync(file)) broken.push(`${name} (no such file)`);
    else if (fragment !== undefined && !anchors(readFileSync(file, "utf8")).has(fragment)) {
      broken.push(`${name} (no such heading)`);
    }
  }
  return { checked: targets.length, broken };
}

describe("README.md, the front door", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");

  it("is at most 150 lines", () => {
    expect(readme.trimEnd().split("\n").length).toBeLessThanOrEqual(150);
  });

  it("shows the two set-up commands and the report's picture on its first screen", () => {
    const firstScreen = readme.split("\n").slice(0, 25).join("\n");
    expect(firstScreen).toContain("npm ci && npm run demo");
    expect(firstScreen).toMatch(/^npm test\b/m);
    expect(firstScreen).toContain('<img src="docs/report.png"');
  });

  it("links every page in docs/", () => {
    const linked = new Set([...readme.matchAll(/\]\(docs\/([^)#]+)/g)].map((m) => m[1]));
    const pages = readdirSync(join(ROOT, "docs")).filter((f) => f.endsWith(".md") && f !== "ARCHITECTURE.md");
    expect(pages.filter((p) => !linked.has(p))).toEqual([]);
  });
});

describe("links between the pages", () => {
  it("every relative link in README.md and docs/*.md reaches an existing file and heading", () => {
    const results = PAGES.map(brokenLinks);
    expect(results.flatMap((r) => r.broken)).toEqual([]);
    // The pages link to each other throughout: finding almost none means the link pattern stopped matching.
    expect(results.reduce((n, r) => n + r.checked, 0)).toBeGreaterThan(40);
  });

  it("a link to a missing file or heading is reported, one in a code block is not", () => {
    const dir = tempDir("ah-docs-");
    writeFileSync(join(dir, "other.md"), "# Other page\n\n## What survives what\n\n## Tasks (BullMQ) — on `workers`\n");
    const page = join(dir, "page.md");
    writeFileSync(
      page,
      [
        "# Page",
        "[fine](other.md#what-survives-what) [fine too](other.md#tasks-bullmq--on-workers) [self](#page)",
        '[gone](missing.md) [wrong heading](other.md#what-survives) <img src="nowhere.png">',
        "[outside](https://example.com/missing.md) `[code span](missing.md)`",
        "```md\n[in a block](missing.md)\n```",
      ].join("\n"),
    );
    const { checked, broken } = brokenLinks(page);
    expect(checked).toBe(6);
    expect(broken.map((b) => b.replace(/^.*page\.md: /, ""))).toEqual([
      "missing.md (no such file)",
      "other.md#what-survives (no such heading)",
      "nowhere.png (no such file)",
    ]);
  });
});
