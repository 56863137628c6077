/**
 * The bridge from a `command` sandboxed without a network (`command.network: false`) to the run's gateway: its
 * network namespace has a loopback of its own and nothing else, so a relay inside listens on the gateway's
 * port there and carries each connection over a unix socket bound in from the harness. The command then
 * calls the same base URLs, with the same token, as it would with a network.
 */
import { publishRuntimeFile } from "./runtime-dir.ts";

/** Plain JavaScript with node's built-ins only: it runs inside the sandbox, from the harness's runtime directory. */
const RELAY = `import { spawn } from "node:child_process";
import { connect, createServer } from "node:net";

const [port, socket, ...command] = process.argv.slice(2);
const server = createServer((client) => {
  const gateway = connect(socket);
  const close = () => {
    client.destroy();
    gateway.destroy();
  };
  client.on("error", close);
  gateway.on("error", close);
  client.pipe(gateway).pipe(client);
});
server.listen(Number(port), "127.0.0.1", () => {
  const child = spawn(command[0], command.slice(1), { stdio: "inherit" });
  child.on("error", (error) => {
    process.stderr.write("auto-harness relay: cannot start the command: " + error.message + "\\n");
    process.exit(127);
  });
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
});
`;

/** The command line that runs `argv` behind the relay: the relay listens first, then starts it. */
export function relayedCommand(port: number, socket: string, argv: string[]): string[] {
  return [process.execPath, publishRuntimeFile("command-relay", ".mjs", RELAY), String(port), socket, ...argv];
}
