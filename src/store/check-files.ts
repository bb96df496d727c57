import { lstat } from "node:fs/promises";
import { join } from "node:path";
import { StasisError } from "../errors.js";
import { resolveInSnapshot } from "./confine.js";
import type { FileEntry } from "./manifest.js";

/**
 * Before anything reads a snapshot's files (CRIU above all): each one is a regular file inside the snapshot folder,
 * through no symlink, with the size the manifest recorded. A stat each, whatever `--verify` says: CRIU given a
 * truncated pages image does not fail, it retries and logs for as long as it is let (a 9.5 GB log in 600 s).
 * E_DIGEST_MISMATCH naming the first file that differs; E_PATH_OUTSIDE_SNAPSHOT for one that leads elsewhere.
 */
export async function checkSnapshotFiles(dir: string, files: Pick<FileEntry, "path" | "size">[]): Promise<void> {
  const found = await Promise.all(
    files.map(async (f) => {
      const st = await lstat(join(dir, f.path)).catch(() => undefined);
      // The quick answer for the usual case; anything odd goes through the full check, which names the reason.
      if (!st?.isFile()) {
        await resolveInSnapshot(dir, f.path).catch((err: StasisError) => {
          if (err.code !== "E_FILE_NOT_FOUND") throw err; // missing: said below, with the others' sizes
        });
      }
      return st?.isFile() ? st.size : -1;
    }),
  );
  // Every file must also be reached through no symlinked folder (images -> elsewhere).
  const folders = [...new Set(files.map((f) => f.path.split("/").slice(0, -1).join("/")).filter((d) => d !== ""))];
  await Promise.all(folders.map((d) => resolveInSnapshot(dir, d, { folder: true })));
  for (const [i, f] of files.entries()) {
    const size = found[i]!;
    if (size !== f.size) {
      throw new StasisError(
        "E_DIGEST_MISMATCH",
        size < 0
          ? `snapshot file ${f.path} is missing`
          : `snapshot file ${f.path} has ${size} bytes, the manifest says ${f.size}`,
        {
          hint: "the snapshot was changed after capture (a copy cut short?); capture it again",
          details: { path: f.path, size, expected: f.size },
        },
      );
    }
  }
}
