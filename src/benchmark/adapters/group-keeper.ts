/**
 * Nothing a benchmark command starts outlives the daemon, even a SIGKILLed one. The command runs under a small
 * keeper process that leads its process group and holds one end of a pipe whose other end only the daemon holds
 * (stdin). When the daemon dies, however it dies, the kernel closes its end; the keeper reads end-of-file and
 * SIGKILLs the whole group, itself included.
 *
 * Why not PR_SET_PDEATHSIG (`setpriv --pdeathsig`, bwrap's --die-with-parent): it reaches only the one child it
 * is set on, never the grandchildren a benchmark command starts in the background, which are the ones that were
 * seen running on after the daemon. A keeper needs no prctl, no util-linux and no privilege: it works as root and
 * as a user, and on macOS. Only a SIGKILL of the keeper itself (with the daemon) leaves the group behind; the
 * group is journaled, and the next start reaps it.
 */

/** The keeper, run as `node -e KEEPER -- <file> <args…>`; plain JavaScript, so it starts in tens of ms. */
export const GROUP_KEEPER_SOURCE = `
const { spawn } = require("node:child_process");
const [file, ...args] = process.argv.slice(1);
const killGroup = () => {
  try { process.kill(-process.pid, "SIGKILL"); } catch { process.exit(137); }
};
// The lifeline: end-of-file means the daemon is gone.
process.stdin.on("end", killGroup);
process.stdin.on("error", killGroup);
process.stdin.resume();
const child = spawn(file, args, { stdio: ["ignore", "ignore", "inherit"] });
child.on("error", (e) => {
  process.stderr.write("cannot start the benchmark command: " + e.message + "\\n");
  process.exit(127);
});
child.on("exit", (code, signal) => {
  process.stdin.off("end", killGroup);
  process.stdin.destroy();
  if (signal) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  }
  process.exit(code ?? 1);
});
`;

/** The argv that runs `file args…` under the keeper, from `node`. */
export function keeperArgs(file: string, args: string[]): string[] {
  return ["-e", GROUP_KEEPER_SOURCE, "--", file, ...args];
}
