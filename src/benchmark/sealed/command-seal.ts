/**
 * The `command` benchmark's sandbox (`command.sandbox: true`) as root: the command runs the agent itself,
 * so it gets what an agent process gets of the seal's core, an unprivileged user with no capabilities in
 * its own user namespace. As root it kept every capability: it remounted the "read-only" tree writable and
 * appended to the harness's own source. The folders it may write are handed to that user.
 */
import { lchownSync, lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { dropRootPrefix, type SandboxUser } from "./sandbox-user.ts";

/** bubblewrap's flags that leave the command no capability and no way to gain one. */
export const NO_CAPABILITIES = ["--unshare-user", "--disable-userns", "--cap-drop", "ALL"];

/** The command line that starts bubblewrap as `user` (as root) or as the harness's own user. */
export function sealedCommandLine(user: SandboxUser | null, bwrapArgs: string[]): { file: string; args: string[] } {
  const line = [...dropRootPrefix(user), "bwrap", ...bwrapArgs];
  return { file: line[0]!, args: line.slice(1) };
}

/** Makes `user` the owner of each folder and what it holds (not following links), so the command can write there. */
export function handOver(dirs: string[], user: SandboxUser | null): void {
  if (!user) return;
  for (const dir of dirs) {
    if (lstatSync(dir).uid === user.uid) continue;
    lchownSync(dir, user.uid, user.gid);
    for (const entry of readdirSync(dir, { recursive: true, encoding: "utf8" })) {
      lchownSync(join(dir, entry), user.uid, user.gid);
    }
  }
}
