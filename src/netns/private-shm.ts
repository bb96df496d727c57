import { chmod, copyFile, mkdir } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { KeptFile } from "../criu/kept-files.js";
import { isPlainName, resolveInSnapshot, SHM_ROOT } from "../store/confine.js";
import { PRIVATE_DIR } from "../store/private.js";
import { UNSHARE_ARGS } from "../criu/restore.js";
import { isIP } from "node:net";
import { StasisError } from "../errors.js";

/**
 * A namespaced restore's /dev/shm is a tmpfs of its own, mounted in the restore's mount namespace before CRIU runs:
 * vLLM names its shared-memory queues after nothing a second replica would change, so two replicas of one snapshot
 * sharing the host's /dev/shm would open each other's queues. The snapshot's files for /dev/shm (its shared-memory
 * files, and link_remap files kept there) are copied into `stageDir` here; the restore's set-up script copies them
 * into the fresh tmpfs (criuIsolation), and the namespace's end takes them all away.
 *
 * Returns the files staged and the rest (kept files elsewhere, placed on the host as ever).
 */
export async function stageSharedMemory(
  snapshotDir: string,
  kept: KeptFile[],
  stageDir: string,
): Promise<{ staged: KeptFile[]; rest: KeptFile[] }> {
  const staged = kept.filter((k) => dirname(k.original) === SHM_ROOT && isPlainName(basename(k.original)));
  const rest = kept.filter((k) => !staged.includes(k));
  await mkdir(stageDir, { recursive: true, mode: PRIVATE_DIR });
  for (const k of staged) {
    const to = join(stageDir, basename(k.original));
    await copyFile(await resolveInSnapshot(snapshotDir, k.file), to);
    if (k.mode !== undefined) await chmod(to, k.mode); // CRIU checks the mode against the one it dumped
  }
  return { staged, rest };
}

/** What criu/restore.ts runs CRIU inside, for a namespaced restore. */
export interface CriuIsolation {
  /** Join this network namespace (a file); without it the restore makes a new one. */
  joinNetns?: string;
  /** Files to copy into the private /dev/shm. */
  shmFrom: string;
  /** Addresses other than loopback the snapshot's sockets are bound to: added to the namespace's loopback. */
  addresses: string[];
}

/**
 * The shell script run as the new PID namespace's init before it becomes CRIU (`exec "$@"`): loopback up (a fresh
 * namespace has it down, and the server's 127.0.0.1 listener could not be restored), the snapshot's own addresses on
 * it (CRIU binds each socket back to its address: vLLM's torch.distributed store connects over the host's address
 * unless VLLM_HOST_IP says otherwise), a tmpfs of its own on /dev/shm in the restore's mount namespace (private to
 * it: unshare made the host's mounts its slaves), the snapshot's shared-memory files copied in.
 */
export function isolationScript(iso: CriuIsolation): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return [
    "set -e",
    LOOPBACK_UP,
    ...(iso.addresses.length > 0 ? [addressesUp(iso.addresses)] : []),
    "mount -t tmpfs -o mode=1777,nosuid,nodev stasis-shm /dev/shm",
    `cp -a ${q(iso.shmFrom)}/. /dev/shm/`,
    'exec "$@"',
  ].join("\n");
}

/**
 * Loopback up (a fresh namespace has it down): with iproute2's `ip` where there is one, else with the SIOCSIFFLAGS
 * ioctl from Python (GPU machines and slim images often lack iproute2).
 */
const LOOPBACK_UP =
  "if command -v ip >/dev/null 2>&1; then ip link set lo up; else python3 -c '" +
  'import socket, fcntl, struct; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); ifr = "16sh22x"; ' +
  'f = struct.unpack(ifr, fcntl.ioctl(s, 0x8913, struct.pack(ifr, b"lo", 0)))[1]; ' +
  'fcntl.ioctl(s, 0x8914, struct.pack(ifr, b"lo", f | 1))\'; fi';

/**
 * The addresses on loopback, each as a host route of its own (/32, /128: nothing else of its subnet is routed there,
 * which matters in a pod's namespace), an address already there left as it is: with `ip` where there is one, else
 * with one RTM_NEWADDR netlink request each from Python.
 */
export function addressesUp(addresses: string[]): string {
  for (const a of addresses) {
    if (!isIP(a)) throw new StasisError("E_MANIFEST_INVALID", `the snapshot's address "${a}" is not an IP address`);
  }
  const withIp = addresses.map((a) => `ip addr replace ${a}/${isIP(a) === 6 ? 128 : 32} dev lo`).join("; ");
  return `if command -v ip >/dev/null 2>&1; then ${withIp}; else python3 -c '${NETLINK_ADD}' ${addresses.join(" ")}; fi`;
}

/** RTM_NEWADDR for each argument on lo, host scope, full-length prefix; EEXIST (already there) is fine. */
const NETLINK_ADD = [
  "import os, socket, struct, sys",
  "s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)",
  'attr = lambda t, v: struct.pack("HH", 4 + len(v), t) + v + bytes(-len(v) % 4)',
  "for n, a in enumerate(sys.argv[1:]):",
  '  fam = socket.AF_INET6 if ":" in a else socket.AF_INET',
  "  raw = socket.inet_pton(fam, a)",
  '  body = struct.pack("BBBBI", fam, len(raw) * 8, 0, 254, socket.if_nametoindex("lo")) + attr(2, raw) + attr(1, raw)',
  '  s.send(struct.pack("IHHII", 16 + len(body), 20, 0x405, n + 1, 0) + body)',
  '  err = -struct.unpack("i", s.recv(4096)[16:20])[0]',
  '  if err not in (0, 17): sys.exit("stasis: cannot add " + a + " to lo: " + os.strerror(err))',
].join("\n");

/** The command CRIU's restore runs under: unshare (PID, mount and, unless joining one, network namespaces). */
export function isolatedCommand(iso: CriuIsolation, criuArgv: string[]): string[] {
  const unshare = ["unshare", ...(iso.joinNetns ? [] : ["--net"]), ...UNSHARE_ARGS];
  const inner = ["sh", "-c", isolationScript(iso), "stasis-restore", ...criuArgv];
  // nsenter execs unshare (no --fork: only entering a PID namespace needs one), so the holder's pid stays unshare's.
  return iso.joinNetns ? ["nsenter", `--net=${iso.joinNetns}`, "--", ...unshare, ...inner] : [...unshare, ...inner];
}
