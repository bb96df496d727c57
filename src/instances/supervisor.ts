import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { stasisHome } from "../home.js";

/** The stasis CLI, which a supervisor runs to reap a dead run (`stasis stop --grace 0 ID`). */
const CLI = fileURLToPath(new URL("../cli/main.js", import.meta.url));

/**
 * The supervisor's program (POSIX sh). It reads lines from the capture or restore that started it: `group PGID` (a
 * process group to kill if that run dies), `done` (the run finished or undid itself: exit). The end of its input
 * without `done` means the run's process died (kill -9, a crash): it kills the groups at once, then runs `stasis
 * stop --grace 0 ID`, which ends the rest of the run's processes and removes its record and files, and removes the
 * run's folder where it was given one (there is no record to stop where the run died before writing it). It ignores
 * the terminal's signals, which are for the run.
 */
const PROGRAM = `
trap '' INT TERM HUP QUIT
dir=$1
shift
groups=
while read -r what arg; do
  case "$what" in
    group) groups="$groups $arg" ;;
    done) exit 0 ;;
  esac
done
for g in $groups; do kill -9 -"$g" 2>/dev/null; done
"$@" >/dev/null 2>&1 </dev/null
[ -z "$dir" ] || rm -rf -- "$dir"
`;

export interface Supervisor {
  /** Kill this process group too should the run die: a process it started before its record could name it. */
  group(pgid: number): void;
  /** The run is over, finished or undone by itself: the supervisor exits and does nothing. */
  release(): void;
}

/**
 * Ties an unfinished capture or restore (instance `id`; `dir`, its folder to remove, or "" to keep it) to a process
 * that outlives it: a small shell in a session of its own whose input is a pipe from this process. The kernel closes
 * that pipe however this process ends, kill -9 included, and the supervisor then reaps what the run left. A finished
 * run (a restored server, a capture's original kept with --leave-running) calls release() first and keeps running on
 * its own. In `stasis serve` each restore has its own supervisor, so a killed daemon leaves none of its unfinished
 * restores behind either.
 */
export function supervise(id: string, dir: string, home = stasisHome()): Supervisor {
  const child = spawn(
    "sh",
    ["-c", PROGRAM, "stasis-supervisor", dir, process.execPath, CLI, "stop", "--grace", "0", id],
    {
      detached: true,
      stdio: ["pipe", "ignore", "ignore"],
      env: { ...process.env, STASIS_HOME: home, STASIS_NO_DAEMON: "1" },
    },
  );
  child.on("error", () => undefined); // no sh: the run goes on unsupervised, as before
  child.stdin!.on("error", () => undefined); // a supervisor that is gone cannot be told anything
  child.unref();
  // The pipe must not keep this process alive: the run's end is what closes it.
  (child.stdin as unknown as { unref?: () => void }).unref?.();
  let open = true;
  return {
    group: (pgid) => {
      if (open && pgid > 0) child.stdin!.write(`group ${pgid}\n`);
    },
    release: () => {
      if (!open) return;
      open = false;
      child.stdin!.end("done\n");
    },
  };
}
