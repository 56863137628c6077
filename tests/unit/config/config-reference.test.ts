import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { configReference, REFERENCE_END, REFERENCE_START } from "../../../src/config/reference.ts";
import { configSchema } from "../../../src/config/schema.ts";

const page = readFileSync(new URL("../../../docs/configuration.md", import.meta.url), "utf8");

describe("the configuration reference (docs/configuration.md)", () => {
  it("is exactly what the schema generates (run `npm run docs:config` after changing the schema)", () => {
    const block = page.slice(page.indexOf(REFERENCE_START), page.indexOf(REFERENCE_END) + REFERENCE_END.length);
    expect(block).toBe(configReference());
  });

  it("documents every key of the schema", () => {
    for (const key of Object.keys(configSchema.shape)) expect(page).toContain(`| \`${key}\` |`);
  });
});
