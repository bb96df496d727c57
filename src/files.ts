import { stat } from "node:fs/promises";

/** Whether anything is at `path` (a file, a folder, a socket). Never throws. */
export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
