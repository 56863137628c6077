/**
 * Who the agent runs as. When the harness runs as root, bubblewrap started by root would map the agent to
 * host uid 0: one write to /proc/sys/kernel/core_pattern then ran the agent's script as host root, and the
 * `command` sandbox kept every capability. So as root the harness starts the sandbox as an unprivileged user
 * (`sandbox_user`, `nobody` unless configured) with no capabilities; otherwise the agent runs as the
 * harness's own user, inside its own user namespace.
 */
import { readFileSync } from "node:fs";
import { type Config, configSchema } from "../../config/schema.ts";
import { UserError } from "../../errors.ts";

export interface SandboxUser {
  name: string;
  uid: number;
  gid: number;
}

export const runningAsRoot = (): boolean => process.getuid?.() === 0;

/** The user (name or uid) from the password file; a uid with no entry gets the group of the same number. */
export function resolveUser(wanted: string, passwd = "/etc/passwd"): SandboxUser {
  let lines: string[] = [];
  try {
    lines = readFileSync(passwd, "utf8").split("\n");
  } catch {}
  const entries = lines.map((l) => l.split(":")).filter((f) => f.length >= 4);
  const numeric = /^\d+$/.test(wanted);
  const entry = entries.find((f) => (numeric ? f[2] === wanted : f[0] === wanted));
  let user: SandboxUser;
  if (entry) user = { name: entry[0]!, uid: Number(entry[2]), gid: Number(entry[3]) };
  else if (numeric) user = { name: wanted, uid: Number(wanted), gid: Number(wanted) };
  else {
    throw new UserError(
      "CONFIG_INVALID",
      `sandbox_user: there is no user "${wanted}" on this machine; create one (useradd --system --no-create-home --shell /usr/sbin/nologin ${wanted}) or name another`,
    );
  }
  if (user.uid === 0 || user.gid === 0) {
    throw new UserError(
      "CONFIG_INVALID",
      `sandbox_user: "${wanted}" is root (uid ${user.uid}, gid ${user.gid}); the agent must run as an unprivileged user, e.g. nobody`,
    );
  }
  return user;
}

/** The user agent processes run as: the configured one when the harness is root, else null (the harness's own). */
export function sandboxUserOf(config: Partial<Pick<Config, "sandbox_user">> = {}): SandboxUser | null {
  if (!runningAsRoot()) return null;
  return resolveUser(config.sandbox_user ?? configSchema.shape.sandbox_user.parse(undefined));
}

/**
 * The command prefix that drops host root: the unprivileged user's uid and gid, no supplementary groups,
 * no capabilities (inheritable and bounding sets emptied) and no way to gain any back (no_new_privs).
 */
export function dropRootPrefix(user: SandboxUser | null): string[] {
  if (!user) return [];
  return [
    "/usr/bin/setpriv",
    `--reuid=${user.uid}`,
    `--regid=${user.gid}`,
    "--clear-groups",
    "--inh-caps=-all",
    "--bounding-set=-all",
    "--no-new-privs",
    "--",
  ];
}
