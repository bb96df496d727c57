import { open, readdir } from "node:fs/promises";
import { join } from "node:path";
import { findInstance } from "../instances/instances.js";
import { StasisError } from "../errors.js";

export type LogStream = "stderr" | "stdout" | "criu";

export interface LogsOptions {
  /** An instance id, or a unique prefix of one. */
  id: string;
  /** Which logs, in this order (default: the server's stderr). */
  streams: LogStream[];
  /** Keep reading what is appended until the instance ends or `signal` fires. */
  follow: boolean;
  /** Where followed output goes as it arrives (the CLI writes it to stdout). */
  onData?: (path: string, text: string) => void;
  signal?: AbortSignal;
  /** How often a followed log is read again. */
  pollMs?: number;
}

export interface LogFile {
  stream: LogStream;
  path: string;
  /** The whole log (without follow), or what was read of it. */
  text: string;
}

export interface LogsResult {
  instance: string;
  snapshot: string;
  running: boolean;
  logs: LogFile[];
}

/**
 * An instance's logs: the server's stderr and stdout (files in the instance's folder), and CRIU's logs of its
 * capture or restore (`criu-*.log`). With `follow`, what is appended is passed to `onData` until the instance's
 * process ends or `signal` fires, the way `tail -f` would, without holding the files open between reads.
 */
export async function logs(opts: LogsOptions): Promise<LogsResult> {
  const inst = await findInstance(opts.id);
  const files: { stream: LogStream; path: string }[] = [];
  for (const stream of opts.streams) {
    if (stream === "stdout" || stream === "stderr") files.push({ stream, path: inst[stream] });
    else {
      const names = (await readdir(inst.dir).catch(() => [] as string[]))
        .filter((n) => /^criu-.*\.log$/.test(n))
        .sort();
      if (names.length === 0)
        throw new StasisError("E_FILE_NOT_FOUND", `instance ${inst.id} has no CRIU log in ${inst.dir}`);
      for (const n of names) files.push({ stream, path: join(inst.dir, n) });
    }
  }
  const offsets = files.map(() => 0);
  const out: LogFile[] = files.map((f) => ({ ...f, text: "" }));
  const readNew = async () => {
    for (let i = 0; i < files.length; i++) {
      const { text, bytes } = await readFrom(files[i]!.path, offsets[i]!);
      if (bytes === 0) continue;
      offsets[i]! += bytes;
      out[i]!.text += opts.follow ? "" : text;
      opts.onData?.(files[i]!.path, text);
    }
  };
  await readNew();
  let running = inst.running;
  while (opts.follow && running && !opts.signal?.aborted) {
    await sleep(opts.pollMs ?? 250, opts.signal);
    running = (await findInstance(inst.id).catch(() => undefined))?.running ?? false;
    // The last words of an instance that just ended are read too.
    await readNew();
  }
  return { instance: inst.id, snapshot: inst.snapshot, running, logs: out };
}

async function readFrom(path: string, offset: number): Promise<{ text: string; bytes: number }> {
  const fh = await open(path, "r").catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw err;
  });
  if (!fh) return { text: "", bytes: 0 };
  try {
    const { size } = await fh.stat();
    if (size <= offset) return { text: "", bytes: 0 };
    const buf = Buffer.alloc(size - offset);
    const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
    const end = wholeCharacters(buf, bytesRead);
    return { text: buf.subarray(0, end).toString("utf8"), bytes: end };
  } finally {
    // Invariant: no log stays open between polls (the instance's stop removes its folder).
    await fh.close();
  }
}

/** How many of the first `n` bytes are whole UTF-8 characters: one cut at the end is read with the rest next time. */
export function wholeCharacters(buf: Uint8Array, n: number): number {
  let i = n - 1;
  let continuation = 0;
  while (i >= 0 && (buf[i]! & 0xc0) === 0x80 && continuation < 3) {
    i--;
    continuation++;
  }
  if (i < 0) return n;
  const lead = buf[i]!;
  const length = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return length > continuation + 1 ? i : n;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
