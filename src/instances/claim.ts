import { stat } from "node:fs/promises";
import { StasisError } from "../errors.js";
import type { Events } from "../events.js";
import { stasisHome } from "../home.js";
import { refuseTakenAddress } from "../proc/address.js";
import type { Listener } from "../proc/net.js";
import { isGhostFile, removeTempFiles } from "../criu/temp-files.js";
import { freePortOn, formatAddress, parsePublish } from "../netns/publish.js";
import {
  readRecords,
  recordInstance,
  withStatus,
  stopInstance,
  withClaimsLock,
  type Instance,
  type InstanceStatus,
} from "./instances.js";

/** What a restore is about to hold: its record (state "restoring"), the server's URL and listeners, CRIU's temporary
 *  files (criu/temp-files.ts). */
export type Claim = Omit<Instance, "startTime"> & { state: "restoring"; listeners: string[]; criuFiles: string[] };

/**
 * Claims what a restore will hold, before anything of it starts: the snapshot's listening addresses (CRIU binds a
 * restored listener even where another socket listens, so two restores of one snapshot at once would both "succeed"
 * on one port) and the paths of CRIU's temporary files (a ghost file is created exclusively). Under one lock for
 * every claim (held for the check and the record's write, milliseconds), it refuses, naming the holder, where a live
 * instance or a restore at work holds one of them, or any other process listens on the port; reaps what a dead
 * restore left there (its record, processes and files); removes ghost files no live restore owns; then writes the
 * restore's record, which is its claim from then on (`ps` lists it as restoring; it becomes the instance's record once
 * it serves).
 */
export async function claimRestore(
  claim: Claim,
  events: Events,
  home = stasisHome(),
  /** The listening sockets as read before the lock was taken (started beside the restore's other checks). */
  listening?: Promise<Listener[]>,
): Promise<Instance> {
  return withClaimsLock(async () => {
    let reaped = false;
    // Only a record that holds part of the claim is looked at further (its processes; /proc scans for some).
    for (const record of await readRecords(home)) {
      if (record.id === claim.id || !holdsPartOf(record, claim)) continue;
      const other = await withStatus(record);
      if (other.status === "abandoned") {
        await stopInstance(other, 0, { claimsHeld: true });
        reaped = true;
        events.log(
          `removed what an unfinished ${other.origin} (instance ${other.id}, its stasis process gone) left on ` +
            describe(claim),
          "warn",
        );
        continue;
      }
      if (other.status === "exited") continue; // an ended server holds no address
      throw refusal(other, claim);
    }
    // Any other process listening on one of the ports (the captured original, a server stasis did not start). A
    // namespaced restore's server listens in its namespace: on the host it needs only its published port.
    if (claim.placement) await claimPublished(claim, home);
    else {
      const urls = [claim.url, ...listenerPorts(claim.listeners).map((port) => `http://127.0.0.1:${port}`)];
      // Read again where a dead restore was reaped just now: its server may have been listening at the first read.
      await refuseTakenAddress(urls, reaped ? undefined : listening);
    }
    // A ghost file is CRIU's alone: one found here is a dead restore's. A link_remap file's old name may be another
    // program's file: left alone (CRIU then says it exists), and not this restore's to remove later either.
    const ghosts = claim.criuFiles.filter(isGhostFile);
    const stale = await removeTempFiles(ghosts);
    if (stale.length > 0) events.log(`removed file(s) an interrupted restore left: ${stale.join(", ")}`, "warn");
    const others = claim.criuFiles.filter((f) => !isGhostFile(f));
    const present = new Set(
      await Promise.all(others.map(async (f) => ((await stat(f).catch(() => undefined)) ? f : ""))),
    );
    claim.criuFiles = [...ghosts, ...others.filter((f) => !present.has(f))];
    return await recordInstance(claim);
  }, home);
}

/**
 * The published address of a namespaced restore: the one asked for, refused where something listens there, or (port
 * 0) a port free on the host that no other instance holds, picked here under the claims lock so that restores
 * started at once never pick the same.
 */
async function claimPublished(claim: Claim, home: string): Promise<void> {
  const asked = parsePublish(claim.placement!.published);
  if (asked.port !== 0) {
    await refuseTakenAddress(`http://${claim.placement!.published}`).catch((err: unknown) => {
      if (!(err instanceof StasisError)) throw err;
      throw new StasisError(err.code, err.message.replace(/, and the restored server would listen at .*$/, ""), {
        hint: "publish the instance elsewhere (--publish HOST:PORT), or give HOST alone: stasis picks a free port",
        details: err.details,
      });
    });
    return;
  }
  const held = new Set<string>();
  for (const other of await readRecords(home)) {
    if (other.id !== claim.id) for (const a of addressesOf(other)) held.add(a);
  }
  for (let i = 0; i < 50; i++) {
    const port = await freePortOn(asked.host);
    if (held.has(`host:${port}`)) continue;
    claim.placement!.published = formatAddress({ host: asked.host, port });
    return;
  }
  throw new StasisError("E_ADDRESS_IN_USE", `found no free port on ${asked.host} to publish the instance at`, {
    hint: "give one with --publish HOST:PORT",
  });
}

/**
 * The addresses an instance holds, as "SPACE:PORT": SPACE is "host" for the host's network, or the network namespace
 * ("net:[INODE]") a restore was given with --netns. A server in a namespace of its own holds only its published port
 * on the host: its captured ports are its namespace's alone, so replicas of one snapshot never collide there.
 */
export function addressesOf(inst: Pick<Instance, "url" | "listeners" | "placement">): Set<string> {
  const p = inst.placement;
  if (!p) return new Set([...portsOf(inst)].map((port) => `host:${port}`));
  const out = new Set<string>();
  const published = parsePublish(p.published).port;
  if (published !== 0) out.add(`host:${published}`);
  if (p.netnsId === "own") return out;
  for (const port of portsOf({ url: p.innerUrl, listeners: inst.listeners })) out.add(`${p.netnsId}:${port}`);
  return out;
}

/** The TCP ports an instance holds: its listeners', and its URL's. */
export function portsOf(inst: Pick<Instance, "url" | "listeners">): Set<number> {
  const ports = new Set(listenerPorts(inst.listeners));
  try {
    const u = new URL(inst.url);
    ports.add(Number(u.port || (u.protocol === "https:" ? 443 : 80)));
  } catch {
    /* a record without a usable URL claims only its listeners */
  }
  return ports;
}

/** The ports of TCP addresses ("address:port", IPv6 addresses included). */
function listenerPorts(listeners: string[] = []): number[] {
  return listeners.map((l) => Number(l.slice(l.lastIndexOf(":") + 1))).filter((p) => p > 0);
}

/** Whether `other` holds a port or a temporary file's path the claim wants. */
export function holdsPartOf(
  other: Pick<Instance, "url" | "listeners" | "criuFiles" | "placement">,
  claim: Claim,
): boolean {
  const mine = addressesOf(claim);
  return [...addressesOf(other)].some((a) => mine.has(a)) || sharesGhosts(other, claim);
}

function sharesGhosts(other: Pick<Instance, "criuFiles">, claim: Claim): boolean {
  return (other.criuFiles ?? []).some((g) => claim.criuFiles.includes(g));
}

function describe(claim: Claim): string {
  return `port ${[...addressesOf(claim)].map(portOfAddress).join(", ")}`;
}

/** "host:8000" -> "8000"; "net:[4026532]:8000" -> "8000 in net:[4026532]". */
function portOfAddress(a: string): string {
  const i = a.lastIndexOf(":");
  return a.startsWith("host:") ? a.slice(i + 1) : `${a.slice(i + 1)} in ${a.slice(0, i)}`;
}

function refusal(other: InstanceStatus, claim: Claim): StasisError {
  const by = other.owner?.pid ?? "?";
  const doing =
    other.status === "serving" || other.status === "exited"
      ? `instance ${other.id} (snapshot "${other.snapshot}", pid ${other.pid}) serves there`
      : other.status === "parked"
        ? `instance ${other.id} (snapshot "${other.snapshot}") is parked there by stasis serve (pid ${by})`
        : `instance ${other.id} is ${other.status} snapshot "${other.snapshot}" there (stasis process ${by})`;
  const mine = addressesOf(claim);
  const shared = [...addressesOf(other)].filter((a) => mine.has(a)).map(portOfAddress);
  const what =
    shared.length > 0 ? `port ${shared.join(", ")}` : `${claim.criuFiles.find((f) => other.criuFiles?.includes(f))}`;
  return new StasisError("E_ADDRESS_IN_USE", `${what} is taken: ${doing}, and the restored server would need it too`, {
    hint:
      `one instance per snapshot and address on a machine: stop it first (\`stasis stop ${other.id}\`), ` +
      "or wait for its restore to end",
    details: {
      holder: other.id,
      status: other.status,
      ...(other.owner ? { ownerPid: other.owner.pid } : {}),
      pid: other.pid,
    },
  });
}
