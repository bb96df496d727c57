/**
 * The libc calls about processes and namespaces, through koffi: setns (the forwarder of a namespaced instance
 * connects inside the instance's network namespace), waitpid (the reaper of a `--foreground` restore, the init of its
 * PID namespace, learns the server's exit status), and a unix datagram sent to a path (sd_notify: Node has no unix
 * datagram sockets). koffi and libc load on the first call (`libcBase`, shared with libc.ts), so importing this
 * module costs nothing.
 *
 * @example
 *   const fd = openSync("/proc/1234/ns/net", "r");
 *   setns(fd, CLONE_NEWNET); // sockets this thread makes from now on are in 1234's network namespace
 */
import { StasisError } from "../errors.js";
import { libcBase, type LibcBase } from "./libc.js";

type Koffi = typeof import("koffi");
type Fn = ReturnType<ReturnType<Koffi["load"]>["func"]>;

/** setns(2)'s namespace type for a network namespace. */
export const CLONE_NEWNET = 0x40000000;
const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
/** sizeof(struct sockaddr_un): a 2-byte family and 108 bytes of path. */
const SOCKADDR_UN_SIZE = 110;

interface LibcProc extends LibcBase {
  setns: Fn;
  waitpid: Fn;
  socket: Fn;
  sendto: Fn;
}

let loaded: LibcProc | undefined;

function libc(): LibcProc {
  if (loaded) return loaded;
  const base = libcBase();
  loaded = {
    ...base,
    setns: base.lib.func("int setns(int fd, int nstype)"),
    waitpid: base.lib.func("int waitpid(int pid, _Out_ int *status, int options)"),
    socket: base.lib.func("int socket(int domain, int type, int protocol)"),
    sendto: base.lib.func(
      "long sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t alen)",
    ),
  };
  return loaded;
}

function fail(call: string, what: string): StasisError {
  const l = libc();
  const errno = l.koffi.errno();
  const name = l.errnoNames.get(errno) ?? `errno ${errno}`;
  const message = `${call} ${what} failed: ${name} (${String(l.strerror(errno))})`;
  return new StasisError(name === "EPERM" ? "E_PERMISSION" : "E_IO", message, {
    hint: name === "EPERM" ? "stasis runs as root (namespaces need CAP_SYS_ADMIN)" : undefined,
    details: { call, errno: name },
  });
}

/** setns(2) for the calling thread: `fd` is an open namespace file (/proc/PID/ns/net, or a bind mount of one). */
export function setns(fd: number, nstype: number, path: string): void {
  if ((libc().setns(fd, nstype) as number) !== 0) throw fail("setns", `into ${path}`);
}

/** What waitpid(2) said: the child's pid, and its exit code or the signal that ended it. */
export interface Waited {
  pid: number;
  code?: number;
  signal?: number;
}

/** Blocks until any child exits (waitpid(-1, &status, 0)); undefined once there is none left (ECHILD). */
export function waitAnyChild(): Waited | undefined {
  const l = libc();
  for (;;) {
    const status = [0];
    const pid = l.waitpid(-1, status, 0) as number;
    if (pid > 0) {
      const s = status[0]!;
      // WIFEXITED: the low 7 bits are 0; the exit code is the next byte. Otherwise the low 7 bits are the signal.
      return (s & 0x7f) === 0 ? { pid, code: (s >> 8) & 0xff } : { pid, signal: s & 0x7f };
    }
    const errno = l.errnoNames.get(l.koffi.errno());
    if (errno === "EINTR") continue;
    if (errno === "ECHILD") return undefined;
    throw fail("waitpid", "for any child");
  }
}

/**
 * Sends `message` as one datagram to the unix socket at `path` (a leading "@" names an abstract socket, as
 * $NOTIFY_SOCKET does). What sd_notify(3) does, without libsystemd.
 */
export function sendDatagram(path: string, message: string): void {
  const l = libc();
  const name = Buffer.from(path.startsWith("@") ? "\0" + path.slice(1) : path);
  if (name.length === 0 || name.length > SOCKADDR_UN_SIZE - 2 - (path.startsWith("@") ? 0 : 1)) {
    throw new StasisError("E_USAGE", `unix socket path "${path}" is empty or longer than 107 bytes`, {
      hint: "NOTIFY_SOCKET must name a unix datagram socket (systemd sets it for Type=notify services)",
    });
  }
  const addr = Buffer.alloc(SOCKADDR_UN_SIZE);
  addr.writeUInt16LE(AF_UNIX, 0);
  name.copy(addr, 2);
  // An abstract name's length is exact (no terminating NUL); a path's includes its NUL.
  const alen = 2 + name.length + (path.startsWith("@") ? 0 : 1);
  const fd = l.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0) as number;
  if (fd < 0) throw fail("socket", "(unix datagram)");
  try {
    const body = Buffer.from(message);
    if (Number(l.sendto(fd, body, body.length, 0, addr, alen)) < 0) throw fail("sendto", path);
  } finally {
    l.close(fd);
  }
}
