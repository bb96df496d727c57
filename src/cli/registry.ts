import type { Events } from "../events.js";
import type { Config, Settings } from "../config/config.js";
import type { ArgumentSpec, OptionSpecs, OptionValues } from "./parse.js";

/**
 * What a CLI command module (`src/cli/cmd/<name>.ts`) exports: parsing and rendering around one command function.
 * Its usage line and the options part of its help are generated from `args`, `passthrough` and `options`.
 */
export interface CliCommand extends ArgumentSpec {
  /** Other forms of the command line, shown under the usage line. */
  forms?: string[];
  /** What the command does, beyond its one-line summary. */
  help?: string;
  options: OptionSpecs;
  run(ctx: CliContext): Promise<CliResult>;
}

export interface CliContext {
  values: OptionValues;
  positionals: string[];
  /** Arguments after a bare `--`. */
  passthrough: string[];
  events: Events;
  json: boolean;
  /** The STASIS_* settings, read from the environment once, before the command ran. */
  config: Config;
  /** The same, with where each value came from (`stasis doctor` shows them). */
  settings: Settings;
}

export interface CliResult {
  /** What `--json` prints, after the `schema` that names its shape (`stasis.<command>/v1`). */
  data: object;
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
  {
    name: "doctor",
    summary: "check this machine: kernel, CRIU, io_uring, privileges, store, GPU driver",
    load: () => import("./cmd/doctor.js").then(mod),
  },
  {
    name: "capture",
    summary: "start a server, warm it up, and snapshot it",
    load: () => import("./cmd/capture.js").then(mod),
  },
  {
    name: "restore",
    summary: "restore a snapshot, serving, and check its canary",
    load: () => import("./cmd/restore.js").then(mod),
  },
  {
    name: "logs",
    summary: "show an instance's server log (stderr; --stdout, --criu), -f to follow it",
    load: () => import("./cmd/logs.js").then(mod),
  },
  { name: "ps", summary: "list running instances", load: () => import("./cmd/ps.js").then(mod) },
  {
    name: "stop",
    summary: "stop an instance and its whole process tree",
    load: () => import("./cmd/stop.js").then(mod),
  },
  {
    name: "park",
    summary: "keep a snapshot restored ahead of demand, stopped before the GPU (needs `stasis serve`)",
    load: () => import("./cmd/park.js").then(mod),
  },
  {
    name: "hibernate",
    summary: "take a serving instance off the GPU and keep it parked (needs `stasis serve`)",
    load: () => import("./cmd/hibernate.js").then(mod),
  },
  {
    name: "swap",
    summary: "hand the GPU from a serving instance to another snapshot (needs `stasis serve`)",
    load: () => import("./cmd/swap.js").then(mod),
  },
  {
    name: "ls",
    summary: "list snapshots (here, or in s3://bucket/prefix)",
    load: () => import("./cmd/ls.js").then(mod),
  },
  {
    name: "inspect",
    summary: "show a snapshot's manifest, files and fingerprint (--verify checks digests)",
    load: () => import("./cmd/inspect.js").then(mod),
  },
  { name: "rm", summary: "remove snapshots", load: () => import("./cmd/rm.js").then(mod) },
  {
    name: "push",
    summary: "send a snapshot to an S3-compatible store (content-addressed chunks)",
    load: () => import("./cmd/push.js").then(mod),
  },
  {
    name: "pull",
    summary: "fetch a snapshot from an S3-compatible store into this machine's store",
    load: () => import("./cmd/pull.js").then(mod),
  },
  {
    name: "gc",
    summary: "remove the chunks no snapshot uses from an S3-compatible store (dry run unless --yes)",
    load: () => import("./cmd/gc.js").then(mod),
  },
  {
    name: "prefetch",
    summary: "read files or a snapshot into the page cache, in parallel",
    load: () => import("./cmd/prefetch.js").then(mod),
  },
  {
    name: "residency",
    summary: "how much of files or a snapshot is in the page cache",
    load: () => import("./cmd/residency.js").then(mod),
  },
  {
    name: "evict",
    summary: "drop files or a snapshot from the page cache",
    load: () => import("./cmd/evict.js").then(mod),
  },
  {
    name: "serve",
    summary: "stay resident, serving the HTTP API (restore, capture, list, stop, metrics) on a unix socket",
    load: () => import("./cmd/serve.js").then(mod),
  },
  {
    name: "bench",
    summary: "cold start vs restore, side by side, with a phase breakdown",
    load: () => import("./cmd/bench.js").then(mod),
  },
  {
    name: "demo",
    summary: "capture the bundled example server, restore it, compare start times and answers",
    load: () => import("./cmd/demo.js").then(mod),
  },
];

export const commandNames = (): string[] => COMMANDS.map((c) => c.name);

export function findCommand(name: string): Entry | undefined {
  return COMMANDS.find((c) => c.name === name);
}
