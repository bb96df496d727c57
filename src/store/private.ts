import { chmod, lstat, readdir } from "node:fs/promises";
import { join } from "node:path";

/**
 * Everything under STASIS_HOME is root's alone: a snapshot's memory images hold the server's secrets (API keys,
 * tokens, whatever it had in memory), and its logs may too. Folders are created with PRIVATE_DIR and files with
 * PRIVATE_FILE; what others write into a snapshot (CRIU, the engine's weights dump, tar) is tightened by
 * `restrictTree` before it is digested and committed.
 */
export const PRIVATE_DIR = 0o700;
export const PRIVATE_FILE = 0o600;

/** The umask under which CRIU writes a snapshot's images (its own default leaves them world-readable). */
export const PRIVATE_UMASK = 0o077;

/**
 * Takes group and other bits off every folder and file under `root` (and `root` itself), symlinks aside (they are
 * not followed). A file already private is left alone: a chmod changes its ctime, which would invalidate the stamp
 * of a file verified already (store/verified.ts). Returns the paths it changed.
 */
export async function restrictTree(root: string): Promise<string[]> {
  const changed: string[] = [];
  const visit = async (path: string): Promise<void> => {
    const st = await lstat(path).catch(() => undefined);
    if (!st || st.isSymbolicLink()) return;
    if ((st.mode & 0o077) !== 0) {
      await chmod(path, st.mode & 0o700);
      changed.push(path);
    }
    if (!st.isDirectory()) return;
    for (const name of await readdir(path).catch(() => [] as string[])) await visit(join(path, name));
  };
  await visit(root);
  return changed;
}
