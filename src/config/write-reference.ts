// `npm run docs:config`: regenerates the README's configuration reference from the schema.
import { readFileSync, writeFileSync } from "node:fs";
import { withReference } from "./reference.ts";

const file = new URL("../../README.md", import.meta.url);
writeFileSync(file, withReference(readFileSync(file, "utf8")));
