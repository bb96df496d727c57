import { join } from "node:path";
import { networkInterfaces } from "node:os";
import { expandIpv6 } from "../proc/net.js";
import { rm } from "node:fs/promises";
import type { Events } from "../events.js";
import type { KeptFile } from "../criu/kept-files.js";
import { resolveNetns } from "./netns.js";
import { formatAddress, parsePublish, publishedUrl, type Published } from "./publish.js";
import { isolatedCommand, stageSharedMemory, type CriuIsolation } from "./private-shm.js";
import { startForwarder } from "./forwarder.js";
import { StasisError } from "../errors.js";

/**
 * Where a namespaced restore puts its server: in a network namespace of its own (`--publish` alone) or the one given
 * (`--netns`), published at a host address by a forwarder (forwarder.ts). Each such restore also has a /dev/shm of
 * its own (private-shm.ts). What the instance's record says of it is `InstancePlacement`.
 */
export interface Placement {
  /** The namespace file to join; undefined: a new namespace, the restore's own. */
  netnsPath?: string;
  /** "own", or the given namespace's "net:[INODE]" (claims compare it: two restores into one namespace share ports). */
  netnsId: string;
  /** The host address asked for (port 0: picked as the restore claims). */
  publish: Published;
}

/** What an instance's record keeps of its placement. */
export interface InstancePlacement {
  netns: string;
  netnsId: string;
  /** "host:port" the forwarder listens at. */
  published: string;
  /** The URL the server answers at inside its namespace (the captured one). */
  innerUrl: string;
  forwarderPid?: number;
}

/** The placement `--publish` and `--netns` ask for; undefined for neither (the server keeps the host's network). */
export async function resolvePlacement(opts: {
  publish?: string;
  netns?: string;
  fallback?: string;
}): Promise<Placement | undefined> {
  if (opts.publish === undefined && opts.netns === undefined) return undefined;
  if (opts.fallback !== undefined) {
    throw new StasisError("E_USAGE", "--fallback warm cannot go with --publish or --netns", {
      hint: "a warm start runs the server on the host's network, at its captured address: leave out one or the other",
    });
  }
  // Into a given namespace without --publish: stasis's canary and `ps` still need a way in, on loopback.
  const publish = parsePublish(opts.publish ?? "127.0.0.1");
  if (opts.netns === undefined) return { netnsId: "own", publish };
  const given = await resolveNetns(opts.netns);
  return { netnsPath: given.path, netnsId: given.id, publish };
}

/** The record's placement before the restore starts (the claim): the published port is the one claimed. */
export function claimedPlacement(p: Placement, capturedUrl: string): InstancePlacement {
  return {
    netns: p.netnsPath ?? "own",
    netnsId: p.netnsId,
    published: formatAddress(p.publish),
    innerUrl: capturedUrl,
  };
}

/** A namespaced restore under way: what CRIU runs under, and what publishes the server once restored. */
export interface NamespacedRestore {
  /** The snapshot's kept files that are not for /dev/shm: placed on the host, as for any restore. */
  rest: KeptFile[];
  command: (criuArgv: string[]) => string[];
  /** Once CRIU has restored: the staged /dev/shm copies go (the namespace has its own). */
  done: () => Promise<void>;
  /** Publishes the server restored in the namespace of `nsInit`: its URL from the host, the record's placement. */
  publish: (nsInit: number, events: Events) => Promise<{ url: string; placement: InstancePlacement }>;
  /** A failed restore: the forwarder ends. */
  abort: () => void;
}

/**
 * Sets up a namespaced restore before CRIU runs: the snapshot's /dev/shm files staged for the private /dev/shm,
 * CRIU's command line, and the forwarder started (it waits for the namespace; forwarder.ts).
 */
export async function prepareNamespacedCriu(
  p: InstancePlacement,
  snap: { dir: string; kept: KeptFile[]; addresses: string[] },
  instanceDir: string,
): Promise<NamespacedRestore> {
  const shmFrom = join(instanceDir, "shm");
  const { rest } = await stageSharedMemory(snap.dir, snap.kept, shmFrom);
  const iso: CriuIsolation = {
    shmFrom,
    addresses: snap.addresses,
    ...(p.netns !== "own" ? { joinNetns: p.netns } : {}),
  };
  const inner = new URL(p.innerUrl);
  const listen = parsePublish(p.published);
  const port = Number(inner.port || (inner.protocol === "https:" ? 443 : 80));
  const target = { host: inner.hostname.replace(/^\[|\]$/g, ""), port };
  const fwd = startForwarder({ listen, target, dir: instanceDir });
  return {
    rest,
    command: (argv) => isolatedCommand(iso, argv),
    done: () => rm(shmFrom, { recursive: true, force: true }),
    publish: async (nsInit, events) => {
      const port = await events.phase("publish", () => fwd.serve(nsInit));
      const at = { ...listen, port };
      const placement = { ...p, published: formatAddress(at), forwarderPid: fwd.pid };
      return { url: publishedUrl(p.innerUrl, at), placement };
    },
    abort: () => fwd.kill(),
  };
}

/**
 * A unix socket bound at a path (the two-process example's engine socket, vLLM's ZMQ ipc sockets in /tmp) is not
 * in the network namespace but in the file system, which replicas share: CRIU removes the stale socket file and
 * binds it again, and two replicas' CRIUs doing that at the same moment make one fail with "Address already in use".
 * Restored once more, it succeeds (the path then names the newest replica's socket; each replica keeps the
 * connections it was captured with).
 */
export function unixPathRaced(err: unknown): boolean {
  const raced = /unix: Can't bind .*Address already in use/;
  return err instanceof StasisError && err.code === "E_CRIU_RESTORE" && raced.test(err.message);
}

/**
 * A restore on the host's network needs every address the snapshot's sockets were bound to on this machine (CRIU
 * binds each socket back to its address and fails with "Cannot assign requested address" otherwise): refused here,
 * before anything starts, with what to do instead.
 */
export function refuseMissingAddresses(addresses: string[], here?: string[]): void {
  if (addresses.length === 0) return; // most snapshots: the interfaces are not read on a restore's path
  const mine = here ?? localAddresses();
  const missing = addresses.filter((a) => !mine.includes(a));
  if (missing.length === 0) return;
  throw new StasisError(
    "E_ADDRESS_MISSING",
    `the snapshot's sockets are bound to ${missing.join(", ")}, not an address of this machine`,
    {
      hint:
        "restore it in a network namespace of its own (--publish), where stasis adds the address to the namespace's " +
        "loopback, or capture the server bound to loopback inside (vLLM: --env VLLM_HOST_IP=127.0.0.1, stasis's default)",
      details: { missing },
    },
  );
}

/** This machine's addresses (every interface's), as net.ts writes them. */
function localAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .map((i) => (i?.family === "IPv6" ? expandIpv6(i.address.replace(/%.*$/, "")) : (i?.address ?? "")));
}
