import { readFile, readdir } from "node:fs/promises";
import { createServer } from "node:net";
import { fdTargets } from "./tree.js";

/** A TCP socket's local end and inode, from /proc/net/tcp{,6} (this process's network namespace): a listener's when
 *  the socket is in the LISTEN state. */
export interface Listener {
  address: string;
  port: number;
  inode: number;
}

/** A TCP socket of /proc/net/tcp{,6}: its local end, its state (hex, as the kernel writes it), its inode. */
export interface TcpSocket extends Listener {
  state: string;
}

/** A socket's local end as "address:port", as manifests record listening addresses. */
export function localEnd(s: Listener): string {
  return `${s.address}:${s.port}`;
}

export const TCP_STATE = { TIME_WAIT: "06", LISTEN: "0A" } as const;

/** Every socket in the text of /proc/net/tcp (`v6`: /proc/net/tcp6). */
export function parseTcp(text: string, v6: boolean): TcpSocket[] {
  const out: TcpSocket[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [addr, port] = f[1]!.split(":");
    out.push({ address: v6 ? ipv6(addr!) : ipv4(addr!), port: parseInt(port!, 16), state: f[3]!, inode: Number(f[9]) });
  }
  return out;
}

/** The listening sockets among `sockets`. */
function listening(sockets: TcpSocket[]): Listener[] {
  return sockets
    .filter((s) => s.state === TCP_STATE.LISTEN)
    .map(({ address, port, inode }) => ({ address, port, inode }));
}

/** The listening sockets in the text of /proc/net/tcp (`v6`: /proc/net/tcp6). */
export function parseListeners(text: string, v6: boolean): Listener[] {
  return listening(parseTcp(text, v6));
}

/** Every TCP socket of this network namespace, IPv4 and IPv6. */
export async function tcpSockets(): Promise<TcpSocket[]> {
  const [v4, v6] = await Promise.all(
    ["/proc/net/tcp", "/proc/net/tcp6"].map((p) => readFile(p, "utf8").catch(() => "")),
  );
  return [...parseTcp(v4!, false), ...parseTcp(v6!, true)];
}

/** /proc/net/tcp's address: the 4 bytes of the address in the host's (little-endian) order. */
function ipv4(hex: string): string {
  const n = parseInt(hex, 16);
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff].join(".");
}

/** An IPv6 address in the form ipv6() writes: 8 groups, no "::", no leading zeros ("::1" -> "0:0:0:0:0:0:0:1"). */
export function expandIpv6(address: string): string {
  const [head, tail] = address.includes("::") ? address.split("::") : [address, undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  return groups.map((g) => parseInt(g, 16).toString(16)).join(":");
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

/** The inodes of the sockets the processes `pids` hold open. */
async function socketInodesOf(pids: number[]): Promise<Set<number>> {
  const inodes = new Set<number>();
  for (const pid of pids) {
    for (const target of await fdTargets(pid)) {
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m) inodes.add(Number(m[1]));
    }
  }
  return inodes;
}

/** What the processes `pids` hold on TCP: the addresses ("address:port") they listen on, and the local addresses,
 *  other than loopback and the wildcard, their sockets of any state are bound to (a restore needs those on its
 *  network: CRIU binds every socket back to its address before it connects or listens again). */
export async function tcpOf(pids: number[]): Promise<{ listeners: string[]; addresses: string[] }> {
  const [inodes, sockets] = await Promise.all([socketInodesOf(pids), tcpSockets()]);
  const ours = sockets.filter((s) => inodes.has(s.inode));
  const listeners = [...new Set(listening(ours).map(localEnd))].sort();
  const addresses = [...new Set(ours.map((s) => unmapped(s.address)).filter((a) => !isLoopbackOrAny(a)))].sort();
  return { listeners, addresses };
}

/** An IPv4-mapped IPv6 address (a dual-stack socket's IPv4 peer, "0:0:0:0:0:ffff:a00:5") as its IPv4 address. */
export function unmapped(address: string): string {
  const m = /^0:0:0:0:0:ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(address);
  if (!m) return address;
  const hi = parseInt(m[1]!, 16);
  const lo = parseInt(m[2]!, 16);
  return [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff].join(".");
}

/** Loopback (127.0.0.0/8, ::1) or the wildcard (0.0.0.0, ::): there in every network namespace. */
export function isLoopbackOrAny(address: string): boolean {
  return address.startsWith("127.") || address === "0.0.0.0" || /^(0:){7}[01]$/.test(address);
}

/** The sockets listening on TCP, IPv4 and IPv6. */
export async function listeners(): Promise<Listener[]> {
  return listening(await tcpSockets());
}

/** The sockets listening on TCP `port`, IPv4 and IPv6. */
export async function listenersOn(port: number): Promise<Listener[]> {
  return (await listeners()).filter((l) => l.port === port);
}

/** The process holding the socket with this inode (a scan of /proc/*\/fd: for error messages, not hot paths). */
export async function socketOwner(inode: number): Promise<number | undefined> {
  const want = `socket:[${inode}]`;
  for (const pid of await readdir("/proc").catch(() => [] as string[])) {
    if (/^\d+$/.test(pid) && (await fdTargets(Number(pid))).includes(want)) return Number(pid);
  }
  return undefined;
}

/** A free TCP port on the loopback interface. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}
