import { readFile, readdir, readlink } from "node:fs/promises";

/** A TCP socket in the LISTEN state, from /proc/net/tcp{,6} (this process's network namespace). */
export interface Listener {
  address: string;
  port: number;
  inode: number;
}

const LISTEN = "0A";

/** The listening sockets in the text of /proc/net/tcp (`v6`: /proc/net/tcp6). */
export function parseListeners(text: string, v6: boolean): Listener[] {
  const out: Listener[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[3] !== LISTEN) continue;
    const [hexAddr, hexPort] = f[1]!.split(":");
    out.push({ address: v6 ? ipv6(hexAddr!) : ipv4(hexAddr!), port: parseInt(hexPort!, 16), inode: Number(f[9]) });
  }
  return out;
}

/** /proc/net/tcp's address: the 4 bytes of the address in the host's (little-endian) order. */
function ipv4(hex: string): string {
  const n = parseInt(hex, 16);
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff].join(".");
}

/** /proc/net/tcp6's address: four 32-bit words, each in the host's order; written here as 8 hex groups. */
function ipv6(hex: string): string {
  const bytes: string[] = [];
  for (let w = 0; w < 4; w++) {
    const word = hex.slice(w * 8, w * 8 + 8);
    for (let b = 3; b >= 0; b--) bytes.push(word.slice(b * 2, b * 2 + 2));
  }
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(String(parseInt(bytes[i]! + bytes[i + 1]!, 16).toString(16)));
  return groups.join(":");
}

/** The sockets listening on TCP `port`, IPv4 and IPv6. */
export async function listenersOn(port: number): Promise<Listener[]> {
  const [v4, v6] = await Promise.all(["/proc/net/tcp", "/proc/net/tcp6"].map((p) => readFile(p, "utf8").catch(() => "")));
  return [...parseListeners(v4!, false), ...parseListeners(v6!, true)].filter((l) => l.port === port);
}

/** The process holding the socket with this inode (a scan of /proc/*\/fd: for error messages, not hot paths). */
export async function socketOwner(inode: number): Promise<number | undefined> {
  const want = `socket:[${inode}]`;
  for (const pid of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
      if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "")) === want) return Number(pid);
    }
  }
  return undefined;
}
