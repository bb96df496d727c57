/**
 * Every STASIS_* setting a user may give stasis, defined once: its variable, what a value must be, its default,
 * one line of documentation and who it is for. `config.ts` reads them from the environment (and from a request to
 * `stasis serve`), `scripts/gen-config-docs.mjs` writes the table in docs/configuration.md from this list.
 *
 * Settings that only tests and benchmarks read are not here: `internal.ts` lists them.
 */
/** Who sets a knob: the part of stasis that reads it. */
export type Audience = "everyone" | "capture" | "restore" | "capture, restore" | "daemon" | "remote";

export interface Knob<T> {
  /** The environment variable. */
  readonly env: `STASIS_${string}`;
  /** What a value must be, as the docs and errors say it ("0 or 1", "an integer from 1 to 64"). */
  readonly expected: string;
  readonly default: T;
  /** The default as the docs say it, where the value itself says it badly (computed, or none). */
  readonly defaultText?: string;
  readonly doc: string;
  readonly for: Audience;
  /**
   * Whether the CLI sends it to `stasis serve` with a capture or restore, to be used over the daemon's own for that
   * operation: the knobs a capture or restore reads. The others are the process's (the store's place, the daemon's
   * own options).
   */
  readonly perRequest: boolean;
  /** The value `raw` stands for, or undefined when it is not one (the caller names the knob and `expected`). */
  parse(raw: string): T | undefined;
}

type Common = Pick<Knob<unknown>, "env" | "doc" | "for" | "perRequest"> & { defaultText?: string };

const ON = ["1", "true", "yes", "on"];
const OFF = ["0", "false", "no", "off"];

function flag(k: Common & { default: boolean }): Knob<boolean> {
  return {
    ...k,
    expected: "1 or 0 (or true/false, yes/no, on/off)",
    parse: (raw) => (ON.includes(raw.toLowerCase()) ? true : OFF.includes(raw.toLowerCase()) ? false : undefined),
  };
}

function int<D extends number | undefined>(k: Common & { default: D; min: number; max?: number }): Knob<number | D> {
  const { min, max = Number.MAX_SAFE_INTEGER, ...rest } = k;
  return {
    ...rest,
    expected: max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`,
    parse: (raw) => {
      const n = /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : NaN;
      return Number.isSafeInteger(n) && n >= min && n <= max ? n : undefined;
    },
  };
}

function oneOf<C extends string, D extends C | undefined>(
  k: Common & { choices: readonly C[]; default: D },
): Knob<C | D> {
  const { choices, ...rest } = k;
  return { ...rest, expected: `one of ${choices.join(", ")}`, parse: (raw) => choices.find((c) => c === raw) };
}

function path<D extends string | undefined>(k: Common & { default: D }): Knob<string | D> {
  return { ...k, expected: "an absolute path", parse: (raw) => (raw.startsWith("/") ? raw : undefined) };
}

/** The knobs, by the name of their field in `Config`. */
export const KNOBS = {
  home: path({
    env: "STASIS_HOME",
    default: "/var/lib/stasis",
    doc: "the snapshot store and state: snapshots, weights, instances, chunk cache, the daemon's socket",
    for: "everyone",
    perRequest: false,
  }),
  criu: path({
    env: "STASIS_CRIU",
    default: undefined,
    defaultText: "set-up's build, else the PATH",
    doc: "the CRIU binary to use (the only candidate when set)",
    for: "everyone",
    perRequest: true,
  }),
  noDaemon: flag({
    env: "STASIS_NO_DAEMON",
    default: false,
    doc: "1: `stasis restore`, `capture`, `ps` and `stop` work in their own process even when `stasis serve` runs",
    for: "restore",
    perRequest: false,
  }),
  ioUringFilter: flag({
    env: "STASIS_IO_URING_FILTER",
    default: true,
    doc: "0: start servers without the seccomp filter that keeps io_uring from them (CRIU cannot dump a ring)",
    for: "capture, restore",
    perRequest: true,
  }),
  maxCacheBytes: int({
    env: "STASIS_MAX_CACHE_BYTES",
    default: 4 * 2 ** 30,
    defaultText: "4294967296 (4 GiB)",
    min: 0,
    doc: "the largest compile cache (bytes) a capture keeps for `--fallback warm`",
    for: "capture",
    perRequest: true,
  }),
  workingSet: flag({
    env: "STASIS_WORKING_SET",
    default: true,
    doc: "0: no working set recorded or read (the pages of the engine's files a restore touches)",
    for: "restore",
    perRequest: true,
  }),
  criuNetworkLock: oneOf({
    env: "STASIS_CRIU_NETWORK_LOCK",
    choices: ["nftables", "iptables"] as const,
    default: "nftables",
    doc: "how CRIU blocks the tree's connections while it dumps or restores them (iptables needs iptables installed)",
    for: "capture, restore",
    perRequest: true,
  }),
  chunkCacheGb: int({
    env: "STASIS_CHUNK_CACHE_GB",
    default: 64,
    min: 0,
    doc: "the size of the cache of chunks pulled from S3 stores (GiB; 0: no cache)",
    for: "remote",
    perRequest: false,
  }),
  remoteConcurrency: int({
    env: "STASIS_REMOTE_CONCURRENCY",
    default: 4,
    min: 1,
    max: 64,
    doc: "chunks `push` and `pull` transfer at once (each holds one 64 MiB chunk in memory)",
    for: "remote",
    perRequest: false,
  }),
  remotePartMb: int({
    env: "STASIS_REMOTE_PART_MB",
    default: undefined,
    defaultText: "pulls 16, pushes whole",
    min: 0,
    max: 5120,
    doc: "chunks over this many MiB move in parallel parts: ranged GETs to pull, a multipart upload to push (0: whole)",
    for: "remote",
    perRequest: false,
  }),
} as const;

export type KnobKey = keyof typeof KNOBS;

/** Every setting's effective value. */
export type Config = {
  readonly [K in KnobKey]: (typeof KNOBS)[K]["default"] | NonNullable<ReturnType<(typeof KNOBS)[K]["parse"]>>;
};
