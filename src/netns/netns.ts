import { readdir, readlink, stat, statfs } from "node:fs/promises";
import { StasisError } from "../errors.js";

/** The file system type of namespace files (/proc/PID/ns/*, and their bind mounts under /run/netns). */
const NSFS_MAGIC = 0x6e736673;

/** A network namespace given with `--netns`: the path to open, and its identity (the nsfs inode). */
export interface GivenNetns {
  path: string;
  /** "net:[INODE]", as /proc/PID/ns/net's link says: two paths of one namespace have the same. */
  id: string;
}

const HINT =
  '--netns takes "net:[INODE]" (what `readlink /proc/self/ns/net` says inside the namespace), a process id' +
  " (its network namespace is used: a Kubernetes pod's pause process, a container's " +
  "init) or the path of a network namespace file (/proc/PID/ns/net, /run/netns/NAME from `ip netns add NAME`)";

/**
 * Resolves `--netns PATH|PID` to the namespace file to join, refusing what is not a network namespace (a plain
 * file, a namespace of another kind, a process that is gone).
 */
export async function resolveNetns(spec: string): Promise<GivenNetns> {
  if (/^net:\[\d+\]$/.test(spec)) return { path: await processIn(spec), id: spec };
  const path = /^\d+$/.test(spec) ? `/proc/${spec}/ns/net` : spec;
  if (!path.startsWith("/")) {
    throw new StasisError("E_USAGE", `--netns "${spec}" is neither a process id nor an absolute path`, { hint: HINT });
  }
  const st = await stat(path).catch(() => undefined);
  if (!st) {
    const what = /^\d+$/.test(spec) ? `no process ${spec}` : `${path} does not exist`;
    throw new StasisError("E_USAGE", `--netns "${spec}": ${what}`, { hint: HINT });
  }
  const fs = await statfs(path).catch(() => undefined);
  if (fs?.type !== NSFS_MAGIC) {
    throw new StasisError("E_USAGE", `--netns "${spec}": ${path} is not a namespace file`, { hint: HINT });
  }
  // Another kind of namespace file passes this check; nsenter then refuses it before CRIU starts ("Invalid argument").
  return { path, id: `net:[${st.ino}]` };
}

/**
 * A process's namespace file for "net:[INODE]": how a pod names its own namespace to a node agent that sees every
 * process (hostPID). The namespace's first process found; it must stay up until CRIU has joined the namespace.
 */
async function processIn(id: string): Promise<string> {
  for (const pid of await readdir("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    if ((await readlink(`/proc/${pid}/ns/net`).catch(() => "")) === id) return `/proc/${pid}/ns/net`;
  }
  throw new StasisError("E_USAGE", `--netns "${id}": no process here is in that network namespace`, {
    hint: "stasis must see the namespace's processes (a node agent runs with hostPID: true); " + HINT,
  });
}
