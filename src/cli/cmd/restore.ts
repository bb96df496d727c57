import type { CliCommand } from "../registry.js";
import { num, oneOf, str } from "../args.js";
import { interruptSignal } from "../interrupt.js";
import { renderTimeline } from "../render/timeline.js";
import { formatBytes, formatMs } from "../../text.js";
import type { RestoreRequest } from "../../serve/protocol.js";
import { requestKnobs } from "../../config/config.js";
import type { Events } from "../../events.js";
import type { CliResult } from "../registry.js";
import type { RestoreOptions } from "../../restore/restore.js";
import { endpointOption } from "./push.js";
import {
  DEFAULT_MEMORY,
  DEFAULT_PREFETCH,
  DEFAULT_WEIGHTS,
  MEMORY_MODES,
  PREFETCH_MODES,
  VERIFY_MODES,
  WEIGHTS_MODES,
} from "../../restore/modes.js";

export const command: CliCommand = {
  args: ["<name|s3://bucket/prefix/name>"],
  help: [
    "Restores a snapshot detached (it keeps serving after stasis exits), checks its canary, and prints the",
    "timeline of the restore. Refuses a snapshot captured on a different machine (see `stasis inspect`).",
    "A running `stasis serve` does the restore when there is one (STASIS_NO_DAEMON=1: never); --json says which",
    '("via": "daemon" or "process"). From s3://bucket/prefix/NAME (unless the store here has it already), the',
    "restore runs while the snapshot arrives: what it needs first (CRIU's images, then the weights) is fetched",
    "first, CRIU starts once its images are whole, and the snapshot joins the store once it serves (docs/remote.md).",
  ].join("\n"),
  options: {
    verify: {
      type: "string",
      arg: "MODE",
      help: [
        "auto (default): check the digest of every file not verified earlier in this boot",
        "and unchanged since (inode, size, mtime, ctime), sizes of the rest; full: every",
        "file's digest; size: sizes only; none. Digests are checked while CRIU restores",
      ].join("\n"),
    },
    prefetch: {
      type: "string",
      arg: "MODE",
      help: [
        "what to read into the page cache beside CRIU. auto (default): the images when",
        "they are not in the page cache (at the disk's parallel rate; CRIU's memory is",
        "then copied in parallel from there), else nothing; images; weights (read beside",
        "CRIU for the refill; staged weights read the file themselves); all; none",
        "(--no-prefetch). Files already in the page cache are never read again.",
        "See docs/pagecache.md",
      ].join("\n"),
    },
    "no-prefetch": { type: "boolean", help: "--prefetch none" },
    gpu: {
      type: "string",
      arg: "GPU[,GPU]",
      help: [
        "restore the GPU state onto this GPU (index or UUID, same model) instead of the",
        "captured one; a multi-GPU snapshot (tensor parallel) takes one per captured GPU,",
        "comma-separated in the order of their indexes: --gpu 2,3",
      ].join("\n"),
    },
    force: { type: "boolean", help: "restore despite a fingerprint mismatch" },
    fallback: {
      type: "string",
      arg: "warm",
      help: [
        "if the snapshot cannot be restored here (fingerprint mismatch), start the server",
        "the ordinary way with the snapshot's compile caches instead, and say so",
      ].join("\n"),
    },
    memory: {
      type: "string",
      arg: "MODE",
      help: [
        "how CRIU brings back the tree's memory. auto (default): parallel when CRIU has",
        "stasis's patch (set-up builds it so) and the images are in the page cache, else",
        "copy; copy: CRIU copies it with one thread per process (faster from a cold disk);",
        "parallel: workers of a `criu lazy-pages` daemon copy it in before the tree",
        "resumes (one per core, at most 16); lazy: served on first touch (userfaultfd),",
        "slow for GPU servers (the CUDA restore then faults ~1 GB in page by page)",
      ].join("\n"),
    },
    "lazy-pages": { type: "boolean", help: "--memory lazy" },
    weights: {
      type: "string",
      arg: "MODE",
      help: [
        "how the weights released by the engine's sleep come back. auto (default): where",
        "the engine can adopt them (the reference engine), a stager fills fresh GPU memory",
        "from the weights file while CRIU and the CUDA driver restore, and the engine maps",
        "it at its weights' addresses (a stager that fails or lacks GPU memory falls back",
        "to refill, with a warning); refill: the engine wakes its weights' memory after",
        "the CUDA restore and refills it in place",
      ].join("\n"),
    },
    "ready-timeout": { type: "string", arg: "S", help: "seconds to wait for the restored server (default 120)" },
    publish: {
      type: "string",
      arg: "ADDR",
      help: [
        "restore into a network namespace (and /dev/shm) of its own, reachable at host address",
        "ADDR (HOST:PORT; a forwarder relays to the captured address inside): many replicas of",
        "one snapshot side by side. HOST alone (or HOST:0): a free port, in the instance's URL",
      ].join("\n"),
    },
    netns: {
      type: "string",
      arg: "PATH|PID",
      help: [
        "restore into this network namespace (/proc/PID/ns/net, /run/netns/NAME, a pid, or",
        "net:[INODE]: a Kubernetes pod's, a container's), with a /dev/shm of its own; it answers",
        "at the namespace's addresses. With --publish also at that host address, else on",
        "a free 127.0.0.1 port (for the canary and `stasis ps`). See docs/kubernetes.md",
      ].join("\n"),
    },
    foreground: {
      type: "boolean",
      help: [
        "stay with the restored server: pass SIGTERM/SIGINT/SIGHUP on to it, exit with its",
        "exit status (128+N for signal N), tell systemd READY=1 after the canary",
        "($NOTIFY_SOCKET). For a systemd service or a container's main process. Restores in",
        "this process, never through `stasis serve`",
      ].join("\n"),
    },
    endpoint: endpointOption,
  },
  async run({ values, positionals, events, config, settings }) {
    const target = positionals[0]!;
    let name = target;
    let pulled: object | undefined;
    const { signal, dispose } = interruptSignal();
    try {
      const request: RestoreRequest = {
        name,
        verify: oneOf(values, "verify", VERIFY_MODES, "auto"),
        prefetch: values["no-prefetch"] ? "none" : oneOf(values, "prefetch", PREFETCH_MODES, DEFAULT_PREFETCH),
        force: Boolean(values.force),
        gpu: str(values, "gpu"),
        fallback: values.fallback === undefined ? undefined : oneOf(values, "fallback", ["warm"] as const, "warm"),
        readyTimeoutMs: num(values, "ready-timeout", 120, { min: 1 }) * 1000,
        memory: values["lazy-pages"] ? "lazy" : oneOf(values, "memory", MEMORY_MODES, DEFAULT_MEMORY),
        weights: oneOf(values, "weights", WEIGHTS_MODES, DEFAULT_WEIGHTS),
        ...(values.publish === undefined ? {} : { publish: str(values, "publish") }),
        ...(values.netns === undefined ? {} : { netns: str(values, "netns") }),
        // The knobs this command's user set: a daemon's restore uses them over its own settings.
        config: requestKnobs(settings),
      };
      // In this process, the settings read as it started.
      const { config: _sent, ...options } = request;
      if (values.foreground) {
        if (target.startsWith("s3://")) {
          const { StasisError } = await import("../../errors.js");
          throw new StasisError("E_USAGE", "--foreground restores a snapshot of this store, not one from s3://", {
            hint: "`stasis pull` it first, then `stasis restore NAME --foreground`",
          });
        }
        return await restoreInForeground({ ...options, config }, signal, events, dispose);
      }
      // A running `stasis serve` does the work with its code already loaded; else this process does. From a store,
      // this process: the restore runs while the snapshot arrives, unless the store here has it already.
      const { restoreViaDaemon } = await import("../../serve/client.js");
      let via: "daemon" | "process" = "daemon";
      let r: Awaited<ReturnType<typeof restoreViaDaemon>>;
      if (target.startsWith("s3://")) {
        via = "process";
        const { restoreFromRemote } = await import("../../restore/from-remote.js");
        const { pull, ...restored } = await restoreFromRemote(
          { ...options, config, from: target, endpoint: str(values, "endpoint"), signal },
          events,
        );
        r = restored;
        pulled = pull;
        name = pull.snapshot;
      } else r = config.noDaemon ? undefined : await restoreViaDaemon(request, events, { signal });
      if (!r) {
        via = "process";
        const { restore } = await import("../../restore/restore.js");
        r = await restore({ ...options, config, signal }, events);
      }
      if (r.fallback) {
        const text = [
          renderTimeline(r.phases, r.readyMs),
          "",
          `NOT restored: ${r.fallback.reason}`,
          `started "${name}"'s server the ordinary way with its compile caches instead (--fallback warm): instance ${r.instance.id}, ready in ${formatMs(r.readyMs)}; canary ${r.fallback.canaryMatched ? "matched" : "differs (expected on other hardware)"}`,
        ].join("\n");
        return { data: { ...r, via, ...(pulled ? { pull: pulled } : {}) }, text };
      }
      const text = [
        renderTimeline(r.phases, r.readyMs),
        "",
        `restored "${name}" as instance ${r.instance.id} (pid ${r.instance.pid}) serving at ${r.instance.url}: ready and canary matched in ${formatMs(r.readyMs)}`,
        `read ${formatBytes(r.reads.bytesRead)} (${formatBytes(r.reads.bytesAlreadyResident)} was already in memory), verified ${formatBytes(r.reads.bytesVerified)}`,
        `logs: \`stasis logs ${r.instance.id}\` (${r.instance.stderr}, ${r.instance.stdout}); ` +
          `stop it with \`stasis stop ${r.instance.id}\``,
        ...(via === "daemon" ? ["(restored by `stasis serve`)"] : []),
        ...(r.taken ? [takenLine(r.taken)] : []),
      ].join("\n");
      return { data: { ...r, via, ...(pulled ? { pull: pulled } : {}) }, text };
    } finally {
      dispose();
    }
  },
};

/** What served a restore from a parked instance (docs/parking.md). */
function takenLine(t: { id: string; hibernated: boolean; parkMs: number }): string {
  const how = t.hibernated
    ? `woken from hibernation (hibernating took ${formatMs(t.parkMs)})`
    : `taken parked (parking took ${formatMs(t.parkMs)}, ahead)`;
  return `served by parked instance ${t.id}: ${how}`;
}

/**
 * `--foreground`: restores in this process (the server's exit status reaches this process only from the reaper that
 * its restore sets up), then stays with the server until it ends and exits with its status.
 */
async function restoreInForeground(
  request: Omit<RestoreOptions, "signal" | "foreground">,
  signal: AbortSignal,
  events: Events,
  dispose: () => void,
): Promise<CliResult> {
  const { restore } = await import("../../restore/restore.js");
  const { stayInForeground, exitStatusOf } = await import("../../restore/foreground.js");
  const r = await restore({ ...request, foreground: true, signal }, events);
  if (r.fallback) {
    // A server started the ordinary way has no reaper: it is stopped, and the failure to restore said.
    const { stopInstance, findInstance } = await import("../../instances/instances.js");
    await stopInstance(await findInstance(r.instance.id), 10_000);
    const { StasisError } = await import("../../errors.js");
    throw new StasisError("E_USAGE", `--foreground cannot follow a --fallback warm start (${r.fallback.reason})`, {
      hint: "leave out --fallback with --foreground",
    });
  }
  dispose(); // from here on, SIGINT and SIGTERM are the server's
  events.log(
    `restored "${request.name}" as instance ${r.instance.id} (pid ${r.instance.pid}) serving at ${r.instance.url}: ` +
      `ready and canary matched in ${formatMs(r.readyMs)}; staying in the foreground`,
  );
  const exit = await stayInForeground(r.instance, events);
  const how = exit.lost
    ? "its namespace ended without a status (killed)"
    : exit.signal !== undefined
      ? `killed by signal ${exit.signal}`
      : `exited with status ${exit.code}`;
  return {
    data: { ...r, via: "process", exit },
    text: `${renderTimeline(r.phases, r.readyMs)}\n\nthe server of instance ${r.instance.id} ${how}`,
    exitCode: exitStatusOf(exit),
  };
}
