import { stat } from "node:fs/promises";
import { join } from "node:path";
import { StasisError, fsError } from "../errors.js";
import type { Events } from "../events.js";
import type { FileEntry } from "../store/manifest.js";
import { prefetch } from "./prefetch.js";

/**
 * Checks files under `root` against their manifest entries: size first (cheap, catches truncation), then every
 * chunk's digest. Throws E_DIGEST_MISMATCH naming the first file (and chunk) that differs.
 */
export async function verifyFiles(
  root: string,
  entries: FileEntry[],
  opts: { events?: Events; phase?: string; concurrency?: number } = {},
): Promise<{ bytes: number }> {
  for (const e of entries) {
    let size: number;
    try {
      size = (await stat(join(root, e.path))).size;
    } catch (err) {
      const se = fsError(err, join(root, e.path), "verify");
      throw new StasisError(
        se.code === "E_FILE_NOT_FOUND" ? "E_DIGEST_MISMATCH" : se.code,
        `snapshot file ${e.path} is missing or unreadable`,
        {
          cause: err,
          hint: "the snapshot is incomplete; capture it again",
        },
      );
    }
    if (size !== e.size) {
      throw new StasisError(
        "E_DIGEST_MISMATCH",
        `snapshot file ${e.path} has ${size} bytes, the manifest says ${e.size}`,
        {
          hint: "the file was changed after capture; capture the snapshot again",
          details: { path: e.path },
        },
      );
    }
  }
  // Every chunk against its digest, in parallel: the page-cache engine's verified read (the same path a
  // restore's background reads take).
  await prefetch(
    entries.map((e) => ({
      path: join(root, e.path),
      expectSize: e.size,
      verify: { chunkSize: e.chunkSize, sha256: e.chunks },
    })),
    {
      events: opts.events,
      phase: opts.phase ?? "verify",
      ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
    },
  );
  return { bytes: entries.reduce((a, e) => a + e.size, 0) };
}
