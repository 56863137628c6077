import { main } from "./program.ts";

const code = await main(process.argv);
// Let pino's synchronous streams and stdout drain, then leave with the command's code.
process.exitCode = code;
