import type { CliCommand } from "../registry.js";
import { formatBytes, formatMs } from "../../text.js";
import { endpointOption } from "./push.js";

export const command: CliCommand = {
  args: ["<s3://bucket/prefix/name>", "[name]"],
  help: [
    "Fetches a snapshot pushed with `stasis push` into the store (as NAME, default its own name). Its",
    "fingerprint is checked against this machine before any chunk moves (--force skips that); every",
    "chunk's sha256 is checked; chunks are kept in $STASIS_HOME/cache/chunks (STASIS_CHUNK_CACHE_GB,",
    "default 64; least recently used out), so a pull that was killed resumes, and another snapshot of the",
    "same model fetches no weights again. The snapshot appears whole or not at all. See docs/remote.md",
  ].join("\n"),
  options: {
    endpoint: endpointOption,
    force: { type: "boolean", help: "pull despite a fingerprint mismatch" },
  },
  async run({ values, positionals, events, config }) {
    const { pull } = await import("../../commands/pull.js");
    const r = await pull(
      {
        from: positionals[0]!,
        as: positionals[1],
        endpoint: values.endpoint as string | undefined,
        force: Boolean(values.force),
        config,
      },
      events,
    );
    const text =
      `pulled ${r.remote} as ${r.snapshot} in ${formatMs(r.durationMs)}: ${formatBytes(r.bytes)}, ` +
      `${r.fetched} chunks fetched ` +
      `(${formatBytes(r.bytesFetched)}), ${r.fromCache} from the cache (${formatBytes(r.bytesFromCache)})`;
    return { data: r, text };
  },
};
