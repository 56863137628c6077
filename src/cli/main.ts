import { main } from "./program.ts";

const code = await main(process.argv);
// Exit explicitly: under pm2 its IPC channel keeps the event loop alive, and an exit code (75: paused) must
// reach pm2. Logs and stdout are synchronous here, so nothing is lost.
process.exit(code);
