import type { Config } from "../config/config.js";

/**
 * The CRIU options a real inference server needs, in one place so capture and restore agree:
 * - --tcp-established: loopback connections inside the tree (torch.distributed's TCPStore, a front end
 *   talking to its engine) are dumped and restored as they are;
 * - --ext-unix-sk: unix sockets connected to something outside the tree (syslog, a journal) are allowed;
 * - --file-locks: flock/fcntl locks held by the server come back;
 * - --link-remap (dump only): files that are open or mapped but unlinked (multiprocessing semaphores in
 *   /dev/shm) are linked back under a `link_remap.N` name that must exist again at restore;
 * - --manage-cgroups=ignore: the restored tree runs in the restorer's cgroup, not the one captured (which may
 *   not exist on restore, e.g. a CI job's cgroup);
 * - --network-lock nftables: while established connections are dumped or restored, CRIU blocks their traffic;
 *   its nftables method needs only the kernel (the default, iptables, needs the iptables tool installed).
 *   `Config.criuNetworkLock` (STASIS_CRIU_NETWORK_LOCK=iptables) switches back.
 */
export function commonOptions(networkLock: Config["criuNetworkLock"]): string[] {
  return [
    "--tcp-established",
    "--ext-unix-sk",
    "--file-locks",
    "--manage-cgroups=ignore",
    "--network-lock",
    networkLock,
  ];
}

export function dumpOptions(opts: { leaveRunning: boolean; networkLock: Config["criuNetworkLock"] }): string[] {
  return [...commonOptions(opts.networkLock), "--link-remap", ...(opts.leaveRunning ? ["--leave-running"] : [])];
}

/**
 * No --restore-detached: CRIU stays as the init of the instance's PID namespace (see criu/restore.ts).
 * No --file-validation: CRIU's default, buildid, checks each mapped ELF file's build-id (a page or more of every
 * library), the only check that catches a library replaced by another of the same size. Why:
 * docs/decisions/0012-criu-file-validation.md.
 */
export function restoreOptions(settings: Pick<Config, "criuNetworkLock">): string[] {
  return commonOptions(settings.criuNetworkLock);
}

/**
 * The key CRIU uses for a regular file in `--inherit-fd fd[N]:KEY`: its path without the leading slash.
 * Restore hands fresh log files in place of the captured ones this way (CRIU would otherwise insist that the
 * captured log files still exist at their captured sizes).
 */
export function inheritKey(path: string): string {
  return path.replace(/^\/+/, "");
}
