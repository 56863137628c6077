// pm2: `AUTO_HARNESS_DIR=/path/to/experiment pm2 start ecosystem.config.cjs` (or run it from the experiment dir).
// `daemon` resumes the unfinished run or starts one, so a crash or a reboot (pm2 startup/save) continues by itself.
const { mkdirSync } = require("node:fs");
const path = require("node:path");

const dir = path.resolve(process.env.AUTO_HARNESS_DIR || process.cwd());
// Nightly: AUTO_HARNESS_CRON="0 22 * * *" restarts the daemon at 22:00, and `daemon --new` then starts a fresh
// run if the last one has finished (an unfinished one is resumed, never abandoned).
const cron = process.env.AUTO_HARNESS_CRON || "";
const logs = path.join(dir, "workspace", "logs");
// pm2 does not create missing log directories.
mkdirSync(logs, { recursive: true });

module.exports = {
  apps: [
    {
      name: "auto-harness",
      script: path.join(__dirname, "bin", "auto-harness.js"),
      args: cron ? ["daemon", "--new", "--dir", dir] : ["daemon", "--dir", dir],
      ...(cron ? { cron_restart: cron } : {}),
      cwd: dir,
      exec_mode: "fork",
      instances: 1,
      autorestart: true,
      // No restart_delay or exp_backoff_restart_delay: with either, pm2 7 shows an app that exited with a stop
      // code as "waiting restart" for ever (God.js sets that status before it looks at the code), so a finished
      // run would never read "stopped". The daemon backs off itself instead: paused by an outage, a full disk or
      // Redis down, it waits 5 s, doubling per pause in a row up to 5 min, before it exits 75.
      // 2 (bad usage or config) and 64 (the run is over: done, or nothing to resume) stop it for good. Not 0:
      // pm2 7 reports a process killed by a signal (SIGKILL, the OOM killer) as exit code 0 (`code || 0` in
      // God.js), so listing 0 would leave a killed daemon dead. Crashes, signals, 1 and 75 (paused on an
      // outage) restart, and the restarted `daemon` resumes the unfinished run.
      stop_exit_codes: [2, 64],
      // pm2 sends SIGINT, then SIGKILL after this: room for the daemon's own 4 s graceful shutdown.
      kill_timeout: 10000,
      treekill: true,
      max_restarts: 1000,
      min_uptime: 5000,
      // One pino JSON object per line: no `time`, no `log_date_format`, no `log_type: "json"` (they rewrite lines).
      // Progress is in those lines (out_file); the error file gets only what went wrong.
      out_file: path.join(logs, "pm2-out.log"),
      error_file: path.join(logs, "pm2-err.log"),
      merge_logs: true,
      env: { NODE_ENV: "production" },
    },
  ],
};
