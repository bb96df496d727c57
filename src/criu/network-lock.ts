/**
 * The nftables table of CRIU's `--network-lock nftables`. A dump makes one (`inet CRIU-<run id>`) that drops the
 * traffic of the tree's TCP connections, and keeps it when the tree is not left running, so that the peers of those
 * connections see nothing until a restore brings them back; only a restore of those images deletes it (CRIU's
 * network unlock, with the dump's run id from the images). A snapshot never restored, a dump that failed half-way
 * or was killed would leave it forever. So every table has an owner in stasis: the capture until it commits
 * (removed on failure), then the snapshot (its manifest names the table; `stasis rm` removes it), and a dead
 * capture's staging folder (removed with it).
 */
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { StasisError } from "../errors.js";
import { criuCandidates } from "./locate.js";

/** CRIU writes the table's name, "inet CRIU-" and its run id, into a 32-byte buffer: the name is cut to 31. */
const CRIU_TABLE_BUFFER = 32;

/** The table a CRIU run with this run id makes: `CRIU-` and as much of the id as CRIU's buffer holds. */
export function lockTableName(runId: string): string {
  return `inet CRIU-${runId}`.slice(0, CRIU_TABLE_BUFFER - 1).slice("inet ".length);
}

/** The run id a CRIU log starts with ("CRIU run id = 7106451f-..."), or undefined. */
export function criuRunId(log: string): string | undefined {
  return /CRIU run id = ([0-9a-f-]{8,})/.exec(log)?.[1];
}

/**
 * The lock table the CRIU run that wrote `logPath` made if it locked the network with nftables (the default;
 * undefined where it never ran). A run that used iptables made none: removing a table that is not there is no error.
 */
export async function lockTableOfLog(logPath: string): Promise<string | undefined> {
  const log = await readFile(logPath, "utf8").catch(() => "");
  const id = criuRunId(log.slice(0, 4096));
  return id ? lockTableName(id) : undefined;
}

/** CRIU's lock tables present now (names: "CRIU-..."). */
export async function lockTables(criu?: string): Promise<string[]> {
  const { nftCommand } = await import("../native/libnftables.js");
  const out = nftCommand("list tables", libDirs(criu));
  return [...out.matchAll(/^table inet (CRIU-\S+)$/gm)].map((m) => m[1]!);
}

/**
 * Deletes the lock table `name` ("CRIU-..."); true if it was there. A table already gone (a restore unlocked it)
 * is not an error.
 */
export async function removeLockTable(name: string, criu?: string): Promise<boolean> {
  if (!/^CRIU-[0-9a-f-]+$/.test(name)) {
    throw new StasisError("E_INTERNAL", `"${name}" is not the name of a CRIU network-lock table`, {
      hint: "expected CRIU- and a run id",
    });
  }
  const { nftCommand } = await import("../native/libnftables.js");
  try {
    nftCommand(`delete table inet ${name}`, libDirs(criu));
    return true;
  } catch (err) {
    if (err instanceof StasisError && /No such file or directory/.test(String(err.details?.nftError))) return false;
    throw err;
  }
}

/** Removes `name` if set, never throwing: for cleanup paths, which must go on. The error, if any, is returned. */
export async function removeLockTableQuietly(name: string | undefined, criu?: string): Promise<Error | undefined> {
  if (!name) return undefined;
  return removeLockTable(name, criu).then(
    () => undefined,
    (err: Error) => err,
  );
}

/**
 * The library folders of the private CRIU builds stasis would use (their libnftables is CRIU's own): `criu`'s
 * (`Config.criu`, where the caller has it), else set-up's.
 */
function libDirs(criu: string | undefined): string[] {
  return criuCandidates(criu)
    .filter((c) => c.path.endsWith("/bin/criu"))
    .map((c) => join(dirname(dirname(c.path)), "lib"));
}
