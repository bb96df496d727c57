import { accessSync, constants } from "node:fs";
import { delimiter, join, resolve } from "node:path";

/**
 * The server's command, run so that it cannot open an io_uring instance (which CRIU cannot dump): a short Python
 * program installs a seccomp filter under which `io_uring_setup` fails with ENOSYS, then execs the command (same
 * pid, same session; the filter is inherited by every process of the tree and restored with it by CRIU). libuv
 * (under uvloop and Node) then batches its epoll calls without a ring: libuv 1.50 and later (uvloop 0.23) open one
 * at every loop start whatever UV_USE_IO_URING says, and a vLLM server on uvloop 0.23 could not be captured. Only
 * that one system call is filtered; nothing host-wide changes.
 *
 * Off with `filter` false (STASIS_IO_URING_FILTER=0), or where there is no python3 on the PATH (the command then runs
 * as it is, and the capture's preflight refuses a tree that holds a ring). A filter the kernel refuses is reported on
 * the server's stderr, and the command runs unfiltered.
 */
export function withIoUringOff(
  argv: string[],
  cwd: string,
  filter: boolean,
  env: NodeJS.ProcessEnv = process.env,
): string[] {
  const python = filterPython(filter, env);
  if (!python || argv.length === 0) return argv;
  // A command that cannot be found runs as it is: its spawn then fails with the usual clear error.
  const command = argv[0]!;
  const found = command.includes("/")
    ? executable(resolve(cwd, command))
    : onPath(command, env.PATH ?? "") !== undefined;
  // -I -S: no site packages, no PYTHON* variables for the shim itself (the command still gets the whole
  // environment): it starts faster (bench/launch-overhead.mjs).
  return found ? [python, "-I", "-S", "-c", SHIM, ...argv] : argv;
}

/** The python3 that installs the filter, or undefined where servers start unfiltered (turned off, or none). */
export function filterPython(filter: boolean, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return filter ? onPath("python3", env.PATH ?? "") : undefined;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string, path: string): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (dir && executable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/**
 * The filter: on this machine's architecture (x86_64 or aarch64; others run unfiltered), io_uring_setup (425 on
 * both) returns ENOSYS; every other call is allowed. Root needs no no_new_privs for it; anyone else sets it first.
 */
export const SHIM = String.raw`
import ctypes, os, struct, sys

def install():
    arch = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}.get(os.uname().machine)
    if arch is None:
        return "not on x86_64 or aarch64"
    ins = lambda code, k, jt=0, jf=0: struct.pack("HBBI", code, jt, jf, k)
    prog = b"".join([
        ins(0x20, 4),                  # A = seccomp_data.arch
        ins(0x15, arch, 0, 3),         # another architecture: allow
        ins(0x20, 0),                  # A = seccomp_data.nr
        ins(0x15, 425, 0, 1),          # io_uring_setup ...
        ins(0x06, 0x00050000 | 38),    # ... fails with ENOSYS
        ins(0x06, 0x7FFF0000),         # allow
    ])
    buf = ctypes.create_string_buffer(prog, len(prog))

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = Prog(len(prog) // 8, ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    if os.geteuid() != 0 and libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        return os.strerror(ctypes.get_errno())
    if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        return os.strerror(ctypes.get_errno())
    return None

problem = install()
if problem:
    print(f"stasis: could not make io_uring unavailable to the server ({problem}); a server that opens one cannot be captured", file=sys.stderr, flush=True)
args = sys.argv[1:]
try:
    os.execvp(args[0], args)
except OSError as e:
    print(f"stasis: cannot start {args[0]}: {e.strerror}", file=sys.stderr, flush=True)
    sys.exit(127)
`;
