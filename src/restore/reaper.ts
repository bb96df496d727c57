/**
 * The init of a `--foreground` restore's PID namespace: CRIU execs it in its own place once the tree is restored
 * (`--exec-cmd`), which makes it the restored server's parent. It reaps every process that
 * ends in the namespace and, once the server (its child when it starts) ends, writes its exit status to
 * STATUS_FILE as JSON ({"code": N} or {"signal": N}) and exits with it (128 + N for a signal, as a shell says).
 * Its exit ends the namespace, and what is left in it.
 *
 *   node reaper.js STATUS_FILE
 *
 * CRIU, as the init it replaces, waits for the tree but exits 0 whatever the server's status was.
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { waitAnyChild } from "../native/libc-proc.js";

const statusFile = process.argv[2]!;
// Right after the exec, the server is this process's only child (CRIU forked it): pid 1's, in the namespace's /proc.
const server = Number(readFileSync("/proc/1/task/1/children", "utf8").trim().split(/\s+/)[0]);
for (;;) {
  const w = waitAnyChild();
  if (!w || w.pid === server) {
    const status = w ? (w.signal !== undefined ? { signal: w.signal } : { code: w.code }) : { lost: true };
    writeFileSync(statusFile + ".tmp", JSON.stringify(status) + "\n", { mode: 0o600 });
    renameSync(statusFile + ".tmp", statusFile);
    process.exit(w?.signal !== undefined ? 128 + w.signal : (w?.code ?? 1));
  }
}
