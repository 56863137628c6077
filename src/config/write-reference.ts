// `npm run docs:config`: regenerates the configuration page's reference from the schema.
import { readFileSync, writeFileSync } from "node:fs";
import { withReference } from "./reference.ts";

const file = new URL("../../docs/configuration.md", import.meta.url);
writeFileSync(file, withReference(readFileSync(file, "utf8")));
