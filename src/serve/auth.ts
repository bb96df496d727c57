/**
 * The daemon over TCP (`stasis serve --listen HOST:PORT --token-file F`): the same API as on the unix socket, but
 * the socket's guard (mode 0600: root only) does not exist there, so every request must carry the token
 * (`Authorization: Bearer TOKEN`). TCP without a token is refused at start: whoever reaches the port could restore,
 * capture (run any command as root) and stop anything.
 */
import { readFile, stat } from "node:fs/promises";
import { timingSafeEqual, createHash } from "node:crypto";
import { StasisError } from "../errors.js";

export interface TcpListen {
  host: string;
  port: number;
}

/** HOST:PORT or [IPv6]:PORT; port 0 picks a free one (the daemon logs which). */
export function parseListen(text: string): TcpListen {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new StasisError("E_USAGE", `--listen: expected HOST:PORT, got "${text}"`, {
      hint: "e.g. --listen 127.0.0.1:7070 or --listen [::1]:7070 (with --token-file)",
    });
  }
  return { host: m[1] ?? m[2]!, port };
}

/** Tokens shorter than this are refused: a token is the only guard of a root API. */
export const MIN_TOKEN_CHARS = 16;

/**
 * The token in `file` (its first line, trimmed). Refused: a file others can read or write (like ssh's keys, so a
 * token is not shared by accident) and a token too short to guess at a network's pace.
 */
export async function readToken(file: string): Promise<string> {
  const hint = `write one with: (umask 077; openssl rand -hex 32 > ${file})`;
  const st = await stat(file).catch((err: NodeJS.ErrnoException) => {
    throw new StasisError("E_USAGE", `--token-file ${file}: ${err.code === "ENOENT" ? "no such file" : err.message}`, {
      hint,
    });
  });
  if (!st.isFile()) throw new StasisError("E_USAGE", `--token-file ${file}: not a file`, { hint });
  if (st.mode & 0o077) {
    const mode = (st.mode & 0o777).toString(8);
    throw new StasisError("E_PERMISSION", `--token-file ${file} is open to others (mode ${mode})`, {
      hint: `chmod 600 ${file}`,
    });
  }
  const token = (await readFile(file, "utf8")).split("\n")[0]!.trim();
  if (token.length < MIN_TOKEN_CHARS) {
    throw new StasisError(
      "E_USAGE",
      `--token-file ${file}: the token has ${token.length} characters; at least ${MIN_TOKEN_CHARS} needed`,
      { hint },
    );
  }
  return token;
}

/**
 * Checks an Authorization header against the token: undefined when it matches, else the error to answer (401).
 * Compared as digests in constant time, so the answer's timing says nothing about the token.
 */
export function checkBearer(header: string | undefined, token: string): StasisError | undefined {
  const hint = "send the header `Authorization: Bearer TOKEN` with the token of the daemon's --token-file";
  const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) return new StasisError("E_UNAUTHORIZED", "this request carries no bearer token", { hint });
  const digest = (s: string) => createHash("sha256").update(s).digest();
  if (!timingSafeEqual(digest(m[1]!), digest(token)))
    return new StasisError("E_UNAUTHORIZED", "wrong bearer token", { hint });
  return undefined;
}
