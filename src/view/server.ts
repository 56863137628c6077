/**
 * `auto-harness view`: a read-only browser over the journal, served by node:http on 127.0.0.1. Every request
 * opens the journal read-only and closes it again (a running daemon keeps writing; the page shows what is
 * there), only GET and HEAD are answered, pages carry no script, and as a last wall every held-out id and
 * input is cut from every byte before it leaves.
 */
import { existsSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { checkHardcoding, type HeldOutTasks } from "../gate/hardcode.ts";
import type { Repo } from "../git/repo.ts";
import { Journal } from "../journal/journal.ts";
import { pinnedSplit } from "../journal/pins.ts";
import type { Paths } from "../workspace/paths.ts";
import { layout, runPage, runsPage, tracePage, tracesPage } from "./pages.ts";
import { type HeldOutGuard, readRounds, readRuns, readTrace, type TraceSet, traceIds } from "./read.ts";

export interface ViewOptions {
  paths: Paths;
  benchmark: string;
  repo: Repo | null;
  /** The held-out tasks (test split, sealed holdout): cut from every response, whatever produced it. */
  heldOut: HeldOutTasks;
  /** 0: any free port. */
  port?: number;
}

export interface ViewServer {
  url: string;
  close(): Promise<void>;
}

/** Held-out input strings shorter than this are ordinary words; longer ones are the task's own text. */
const MIN_INPUT = 12;

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** A function that replaces every held-out id (as a whole token) and input string in a text. */
export function heldOutFilter(heldOut: HeldOutTasks): (text: string) => string {
  const ids = heldOut.ids.filter((id) => id.length > 0).map(escapeRe);
  const inputs = [...new Set(heldOut.inputs.filter((s) => s.length >= MIN_INPUT))].sort((a, b) => b.length - a.length);
  const idRe = ids.length ? new RegExp(`(?<![A-Za-z0-9_.-])(?:${ids.join("|")})(?![A-Za-z0-9_-])`, "g") : null;
  return (text) => {
    let out = text;
    for (const input of inputs) if (out.includes(input)) out = out.split(input).join("[held out]");
    // A page escapes its text: an input with markup characters reaches the page in its escaped form.
    return idRe ? out.replace(idRe, "[held out]") : out;
  };
}

type Page = { status: number; html: string };

async function route(o: ViewOptions, journal: Journal | null, path: string[], safe: HeldOutGuard): Promise<Page> {
  const notFound = (what: string): Page => ({ status: 404, html: layout("not found", `<p>${what}</p>`) });
  if (path.length === 0) return { status: 200, html: runsPage(o.benchmark, journal ? readRuns(journal) : []) };
  if (path[0] === "runs" && path.length === 2 && journal) {
    const runs = readRuns(journal);
    const v = runs.find((r) => r.run.id === path[1]);
    if (!v) return notFound("No such run in the journal.");
    return { status: 200, html: runPage(v, await readRounds(journal, o.repo, o.paths, v.run.id, safe), runs) };
  }
  if (path[0] === "traces") {
    // Only train tasks of the pinned split: the view never looks in another split's folder.
    const train = new Set(journal ? (pinnedSplit(journal.pins)?.train ?? []) : []);
    if (path.length === 1) {
      return {
        status: 200,
        html: tracesPage({
          latest: traceIds(o.paths, "latest", train),
          baseline: traceIds(o.paths, "baseline", train),
        }),
      };
    }
    const set = path[1] as TraceSet;
    const id = path[2];
    if (path.length === 3 && (set === "latest" || set === "baseline") && id !== undefined && train.has(id)) {
      if (!traceIds(o.paths, set, train).includes(id)) return notFound("No trace of that task in this set.");
      return { status: 200, html: tracePage(set, id, readTrace(o.paths, set, id)) };
    }
  }
  return notFound("Nothing here.");
}

function send(res: ServerResponse, status: number, body: string, head: boolean): void {
  res.writeHead(status, {
    "content-type": "text/html; charset=utf-8",
    // No script, no fetch, no frame: a page is text and inline style only.
    "content-security-policy":
      "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
  });
  res.end(head ? undefined : body);
}

export async function startView(o: ViewOptions): Promise<ViewServer> {
  const filter = heldOutFilter(o.heldOut);
  // The hard-coding check's own rule decides what names or copies a held-out task.
  const safe: HeldOutGuard = (text) => checkHardcoding({ candidate: text, accepted: "", heldOut: o.heldOut }).passed;
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const head = req.method === "HEAD";
    if (req.method !== "GET" && !head) {
      res.setHeader("allow", "GET, HEAD");
      send(res, 405, layout("read-only", "<p>This view only reads.</p>"), false);
      return;
    }
    // A page from another site must not read the journal through a name that points here (DNS rebinding).
    const host = (req.headers.host ?? "").replace(/:\d+$/, "");
    if (host !== "127.0.0.1" && host !== "localhost") {
      send(res, 421, layout("wrong host", "<p>Open the view at 127.0.0.1.</p>"), head);
      return;
    }
    let path: string[];
    try {
      path = new URL(req.url ?? "/", "http://127.0.0.1").pathname.split("/").filter(Boolean).map(decodeURIComponent);
    } catch {
      send(res, 400, layout("bad address", "<p>That address does not parse.</p>"), head);
      return;
    }
    const journal = existsSync(o.paths.journal) ? Journal.open(o.paths.journal, { readonly: true }) : null;
    try {
      const page = await route(o, journal?.schemaVersion() === 0 ? null : journal, path, safe);
      send(res, page.status, filter(page.html), head);
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      send(res, 500, filter(layout("could not read the journal", `<p>${text.replace(/[<>&]/g, " ")}</p>`)), head);
    } finally {
      journal?.close();
    }
  };
  const server = createServer((req, res) => {
    void handle(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port ?? 0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | null = null;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
