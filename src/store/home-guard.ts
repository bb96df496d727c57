import { access, chmod, constants, mkdir, stat, statfs } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { StasisError } from "../errors.js";
import { stasisHome } from "../home.js";
import { PRIVATE_DIR } from "./private.js";

/**
 * File systems that hold no files of their own (linux/magic.h). A store there cannot work, and worse: Node's
 * recursive mkdir retries for ever on procfs (mkdir answers ENOENT while the parent exists).
 */
export const PSEUDO_FILE_SYSTEMS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, "proc"],
  [0x62656572, "sysfs"],
  [0x1cd1, "devpts"],
  [0x27e0eb, "cgroup"],
  [0x63677270, "cgroup2"],
  [0x64626720, "debugfs"],
  [0x74726163, "tracefs"],
  [0x73636673, "securityfs"],
  [0xcafe4a11, "bpf"],
  [0x62656570, "configfs"],
  [0x6165676c, "pstore"],
  [0xde5e81e4, "efivarfs"],
  [0x65735543, "fusectl"],
  [0x42494e4d, "binfmt_misc"],
  [0x6e736673, "nsfs"],
  [0xf97cff8c, "selinuxfs"],
  [0x43415d53, "smackfs"],
  [0x19800202, "mqueue"],
  [0x958458f6, "hugetlbfs"],
]);

/** The folders directly under STASIS_HOME that hold snapshots, instances' logs and state. */
const SUBFOLDERS = ["snapshots", "instances", "locks", "weights"];

const warned = new Set<string>();

/**
 * Makes STASIS_HOME usable and root's alone, or refuses at once with E_STORE_UNUSABLE: on a pseudo file system
 * (/proc, /sys, ...), not a folder, read-only, not creatable. A missing home is created 0700; an existing home
 * (and its snapshots/instances folders) open to others is tightened to 0700, and `warn` says so once per process.
 * Cheap (a statfs and a few stats): every command that uses the store calls it first.
 */
export async function prepareHome(warn?: (message: string) => void, home = stasisHome()): Promise<string> {
  const abs = resolve(home);
  const existing = await nearestExisting(abs);
  const fsType = PSEUDO_FILE_SYSTEMS.get(Number((await statfs(existing)).type));
  if (fsType) {
    throw unusable(home, `it is on ${fsType}, a pseudo file system that holds no files`, { fsType });
  }
  if (existing !== abs) {
    try {
      await mkdir(dirname(abs), { recursive: true });
      await mkdir(abs, { mode: PRIVATE_DIR });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") {
        throw unusable(home, `it cannot be created (${(err as Error).message})`, {}, err);
      }
    }
  }
  const st = await stat(abs);
  if (!st.isDirectory()) throw unusable(home, "it is not a folder", {});
  await access(abs, constants.W_OK | constants.X_OK).catch((err) => {
    throw unusable(home, `it is not writable (${(err as Error).message})`, {}, err);
  });
  const tightened: string[] = [];
  for (const path of [abs, ...SUBFOLDERS.map((s) => join(abs, s))]) {
    const s = path === abs ? st : await stat(path).catch(() => undefined);
    if (!s?.isDirectory() || (s.mode & 0o077) === 0) continue;
    await chmod(path, s.mode & 0o700);
    tightened.push(`${path} (was ${(s.mode & 0o777).toString(8)})`);
  }
  if (tightened.length > 0 && !warned.has(abs)) {
    warned.add(abs);
    warn?.(`made the store root's alone (0700): ${tightened.join(", ")}; snapshots hold the server's memory`);
  }
  return abs;
}

/** `path` itself, or its nearest ancestor that exists. */
async function nearestExisting(path: string): Promise<string> {
  for (let p = path; ; p = dirname(p)) {
    try {
      await stat(p);
      return p;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOTDIR") throw unusable(path, `a part of ${p} is a file, not a folder`, {}, err);
      if (code !== "ENOENT" || dirname(p) === p) throw unusable(path, (err as Error).message, {}, err);
    }
  }
}

function unusable(home: string, why: string, details: Record<string, unknown>, cause?: unknown): StasisError {
  return new StasisError("E_STORE_UNUSABLE", `STASIS_HOME ${home} cannot hold the store: ${why}`, {
    hint: "point STASIS_HOME at a writable folder on a real disk (default /var/lib/stasis)",
    details: { home, ...details },
    cause,
  });
}
