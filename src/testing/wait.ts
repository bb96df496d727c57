/** Test support: waiting for something another process or task does, with a deadline that fails loudly. */

/**
 * Resolves once `check()` is true; polls every `everyMs`. Throws naming `what` after `timeoutMs`: generous, because a
 * loaded 2-core CI machine runs several test files at once, and a loop that gives up silently only moves the failure
 * to an assertion that no longer says what was awaited.
 */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  { timeoutMs = 15_000, everyMs = 10 }: { timeoutMs?: number; everyMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
