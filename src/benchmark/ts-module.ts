/**
 * The benchmark's own TypeScript modules that run in the harness (a local benchmark's scorer, its env builder),
 * imported once per content. tsx's `tsImport` registers a fresh loader namespace on every call: a message port
 * and new copies of the module that are never freed. The gate built its adapter, and so imported the scorer,
 * once per iteration: about 0.15–0.3 MB a night's iteration, for ever. The same file with the same bytes is now
 * the same module; an edited file loads anew.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { tsImport } from "tsx/esm/api";

const loaded = new Map<string, Promise<{ default?: unknown }>>();

export function importTsModule(file: string): Promise<{ default?: unknown }> {
  let content: Buffer;
  try {
    content = readFileSync(file);
  } catch {
    // Unreadable: let the import say why, in its own words.
    return tsImport(pathToFileURL(file).href, import.meta.url);
  }
  const key = `${file}\0${createHash("sha256").update(content).digest("hex")}`;
  let module = loaded.get(key);
  if (!module) {
    module = tsImport(pathToFileURL(file).href, import.meta.url) as Promise<{ default?: unknown }>;
    loaded.set(key, module);
    // A failed import is not kept: the next look tries again (the operator may be fixing it).
    module.catch(() => loaded.delete(key));
  }
  return module;
}
