import type { Stats } from "node:fs";
import { StasisError } from "../errors.js";
import { resolveRange, statRegular } from "./_files.js";
import type { PrefetchFile } from "./prefetch.js";

/** One file of a prefetch, checked: its stat before any I/O and the range to bring in. */
export interface Plan {
  path: string;
  st: Stats;
  offset: number;
  length: number;
  verify?: { chunkSize: number; sha256: string[] };
}

const SHA256_HEX = /^[0-9a-f]{64}$/i;

export function changed(path: string, what: string, details: Record<string, unknown> = {}): StasisError {
  return new StasisError("E_FILE_CHANGED", `${path} ${what}`, {
    hint: "something modified, replaced or removed the file; if it belongs to a snapshot, the snapshot is damaged: capture it again",
    details: { path, ...details },
  });
}

/** stat()s every file and checks it against what the caller expects, before any byte is read. */
export async function planFiles(files: PrefetchFile[]): Promise<Plan[]> {
  return Promise.all(
    files.map(async (f): Promise<Plan> => {
      const st = await statRegular(f.path, "prefetch");
      if (f.expectSize !== undefined && st.size !== f.expectSize) {
        throw changed(f.path, `has ${st.size} bytes, expected ${f.expectSize}`, {
          size: st.size,
          expectSize: f.expectSize,
        });
      }
      if (f.expectMtimeMs !== undefined && Math.abs(st.mtimeMs - f.expectMtimeMs) > 1e-3) {
        throw changed(
          f.path,
          `was modified at ${new Date(st.mtimeMs).toISOString()}, expected ${new Date(f.expectMtimeMs).toISOString()}`,
          {
            mtimeMs: st.mtimeMs,
            expectMtimeMs: f.expectMtimeMs,
          },
        );
      }
      const { offset, length } = resolveRange(f, st.size);
      if (!f.verify) return { path: f.path, st, offset, length };
      const { chunkSize, sha256 } = f.verify;
      if (
        !Number.isSafeInteger(chunkSize) ||
        chunkSize <= 0 ||
        !Array.isArray(sha256) ||
        !sha256.every((h) => SHA256_HEX.test(h))
      ) {
        throw new StasisError(
          "E_USAGE",
          `${f.path}: verify needs a positive integer chunkSize and sha256 hex digests`,
          { details: { path: f.path } },
        );
      }
      const chunks = Math.max(1, Math.ceil(st.size / chunkSize));
      if (sha256.length !== chunks) {
        throw new StasisError(
          "E_DIGEST_MISMATCH",
          `${f.path} has ${st.size} bytes (${chunks} chunks of ${chunkSize}), but ${sha256.length} chunk digests were given`,
          {
            hint: "the file's size differs from the one its digests were made for; if it belongs to a snapshot, capture it again",
            details: { path: f.path, size: st.size, chunkSize, digests: sha256.length },
          },
        );
      }
      // Widen the range to whole digest chunks: a digest can only be checked over all of its bytes.
      const start = length === 0 ? offset : Math.floor(offset / chunkSize) * chunkSize;
      const end = length === 0 ? offset : Math.min(st.size, Math.ceil((offset + length) / chunkSize) * chunkSize);
      return {
        path: f.path,
        st,
        offset: start,
        length: end - start,
        verify: { chunkSize, sha256: sha256.map((h) => h.toLowerCase()) },
      };
    }),
  );
}

/** [start, end) cut at multiples of `chunk`, so jobs line up with each other across calls. */
function split(start: number, end: number, chunk: number, out: { offset: number; length: number }[]): void {
  for (let at = start; at < end;) {
    const next = Math.min(end, (Math.floor(at / chunk) + 1) * chunk);
    out.push({ offset: at, length: next - at });
    at = next;
  }
}

/** The jobs of one file: its range in chunks; verified files in whole digest chunks, grouped up to chunkBytes. */
export function jobRanges(plan: Plan, chunkBytes: number): { offset: number; length: number }[] {
  const out: { offset: number; length: number }[] = [];
  const end = plan.offset + plan.length;
  if (plan.verify) {
    // An empty file has one digest, of no bytes: check it too.
    if (plan.st.size === 0) return [{ offset: 0, length: 0 }];
    const step = Math.max(1, Math.floor(chunkBytes / plan.verify.chunkSize)) * plan.verify.chunkSize;
    for (let at = plan.offset; at < end; at += step) out.push({ offset: at, length: Math.min(step, end - at) });
    return out;
  }
  split(plan.offset, end, chunkBytes, out);
  return out;
}
