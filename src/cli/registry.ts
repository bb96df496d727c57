import type { ParseArgsConfig } from "node:util";
import type { Events } from "../events.js";

/** What a CLI command module (`src/cli/cmd/<name>.ts`) exports: parsing and rendering around one command function. */
export interface CliCommand {
  usage: string;
  help?: string;
  options: NonNullable<ParseArgsConfig["options"]>;
  run(ctx: CliContext): Promise<CliResult>;
}

export interface CliContext {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  /** Arguments after a bare `--`. */
  passthrough: string[];
  events: Events;
  json: boolean;
}

export interface CliResult {
  /** What `--json` prints. */
  data: unknown;
  /** What a person sees. */
  text?: string;
  exitCode?: number;
}

interface Entry {
  name: string;
  summary: string;
  load: () => Promise<CliCommand>;
}

const mod = (m: { command: CliCommand }) => m.command;

/** Every command, in the order `stasis --help` lists them. Loading is lazy: nothing is imported until used. */
export const COMMANDS: Entry[] = [
  { name: "doctor", summary: "check this machine: kernel, CRIU, io_uring, privileges, store, GPU driver", load: () => import("./cmd/doctor.js").then(mod) },
  { name: "capture", summary: "start a server, warm it up, and snapshot it: capture <name> [options] -- <command...>", load: () => import("./cmd/capture.js").then(mod) },
  { name: "restore", summary: "restore a snapshot, serving, and check its canary", load: () => import("./cmd/restore.js").then(mod) },
  { name: "ps", summary: "list running instances", load: () => import("./cmd/ps.js").then(mod) },
  { name: "stop", summary: "stop an instance and its whole process tree", load: () => import("./cmd/stop.js").then(mod) },
  { name: "ls", summary: "list snapshots", load: () => import("./cmd/ls.js").then(mod) },
  { name: "inspect", summary: "show a snapshot's manifest, files and fingerprint (--verify checks digests)", load: () => import("./cmd/inspect.js").then(mod) },
  { name: "rm", summary: "remove snapshots", load: () => import("./cmd/rm.js").then(mod) },
  { name: "prefetch", summary: "read files or a snapshot into the page cache, in parallel", load: () => import("./cmd/prefetch.js").then(mod) },
  { name: "residency", summary: "how much of files or a snapshot is in the page cache", load: () => import("./cmd/residency.js").then(mod) },
  { name: "evict", summary: "drop files or a snapshot from the page cache", load: () => import("./cmd/evict.js").then(mod) },
  { name: "serve", summary: "stay resident on a unix socket; `stasis restore` then starts without loading stasis", load: () => import("./cmd/serve.js").then(mod) },
  { name: "bench", summary: "cold start vs restore, side by side, with a phase breakdown", load: () => import("./cmd/bench.js").then(mod) },
  { name: "demo", summary: "capture the bundled example server, restore it, compare start times and answers", load: () => import("./cmd/demo.js").then(mod) },
];

export function findCommand(name: string): Entry | undefined {
  return COMMANDS.find((c) => c.name === name);
}
