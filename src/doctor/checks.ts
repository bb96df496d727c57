import { access, readFile, statfs } from "node:fs/promises";
import { release } from "node:os";
import { stasisHome } from "../home.js";
import { locateCriu, MIN_CRIU } from "../criu/locate.js";
import { run } from "../proc/run.js";
import { StasisError } from "../errors.js";
import { filterPython } from "../launch/io-uring-off.js";
import type { Config } from "../config/config.js";

export type Status = "pass" | "warn" | "fail";

export interface Check {
  name: string;
  status: Status;
  detail: string;
  /** What to do about a warn or fail. */
  fix?: string;
}

type Probe = (config: Config) => Promise<Omit<Check, "name">>;

const MIN_FREE_BYTES = 10 * 2 ** 30;

/** Every check `stasis doctor` runs, in order. Each probe returns data; none changes the machine. */
export const CHECKS: { name: string; probe: Probe }[] = [
  {
    name: "privileges",
    probe: async () =>
      process.getuid?.() === 0
        ? { status: "pass", detail: "running as root" }
        : {
            status: "fail",
            detail: `running as uid ${process.getuid?.()}`,
            fix: "run stasis as root: CRIU and PID namespaces need it",
          },
  },
  {
    name: "kernel",
    probe: async () => {
      const nsLastPid = await access("/proc/sys/kernel/ns_last_pid").then(
        () => true,
        () => false,
      );
      return nsLastPid
        ? { status: "pass", detail: `Linux ${release()}, checkpoint/restore support present (ns_last_pid)` }
        : {
            status: "fail",
            detail: `Linux ${release()} lacks /proc/sys/kernel/ns_last_pid`,
            fix: "use a kernel built with CONFIG_CHECKPOINT_RESTORE=y",
          };
    },
  },
  {
    name: "criu",
    probe: async (config) => {
      try {
        const criu = await locateCriu(config.criu);
        const check = await run(criu.path, ["check"], { timeoutMs: 60_000 });
        const text = (check.stdout + check.stderr).trim();
        if (check.code !== 0) {
          return {
            status: "fail",
            detail: `criu ${criu.version} at ${criu.path}: \`criu check\` failed: ${text.split("\n").pop()}`,
            fix: "see `criu check` output",
          };
        }
        const lazy = await run(criu.path, ["check", "--feature", "uffd-noncoop"], { timeoutMs: 30_000 });
        return {
          status: "pass",
          detail: `criu ${criu.version} at ${criu.path} (${criu.source}); criu check: ${text.split("\n").pop()}; lazy pages (uffd-noncoop): ${lazy.code === 0 ? "supported" : "not supported"}`,
        };
      } catch (err) {
        const e = err as StasisError;
        return { status: "fail", detail: e.message, fix: e.hint ?? `install CRIU >= ${MIN_CRIU}` };
      }
    },
  },
  {
    name: "io_uring",
    probe: async (config) => {
      const v = (await readFile("/proc/sys/kernel/io_uring_disabled", "utf8").catch(() => "")).trim();
      const state = v === "" ? "not present" : v === "0" ? "enabled" : v === "1" ? "restricted" : "disabled";
      const shared = `io_uring is ${state} host-wide; stasis leaves that setting alone and refuses to dump a process holding an io_uring`;
      if (!config.ioUringFilter) {
        return {
          status: "warn",
          detail: `${shared}; STASIS_IO_URING_FILTER=0: servers start unfiltered`,
          fix: "unset STASIS_IO_URING_FILTER",
        };
      }
      if (!filterPython(true)) {
        return {
          status: "warn",
          detail: `${shared}; no python3 on the PATH, so servers start without the seccomp filter that makes io_uring unavailable to them: one on libuv 1.50+ (uvloop 0.23) opens a ring at start and cannot be captured`,
          fix: "install python3",
        };
      }
      return {
        status: "pass",
        detail: `${shared}; servers start with io_uring unavailable to them (a seccomp filter on io_uring_setup) and UV_USE_IO_URING=0`,
      };
    },
  },
  {
    name: "namespaces",
    probe: async () => {
      const out = await run("unshare", ["--pid", "--fork", "setsid", "true"], { timeoutMs: 10_000 }).catch(
        (e: Error) => e,
      );
      if (out instanceof Error)
        return { status: "fail", detail: out.message, fix: "install util-linux (unshare, setsid)" };
      return out.code === 0
        ? { status: "pass", detail: "unshare --pid and setsid work" }
        : {
            status: "fail",
            detail: `unshare --pid failed: ${out.stderr.trim()}`,
            fix: "run as root on a kernel with PID namespaces",
          };
    },
  },
  {
    name: "network lock",
    probe: async () => {
      const nft = await access("/proc/sys/net/netfilter").then(
        () => true,
        () => false,
      );
      return nft
        ? { status: "pass", detail: "netfilter present: CRIU can lock established connections with nftables" }
        : {
            status: "warn",
            detail: "no /proc/sys/net/netfilter: servers with established loopback TCP connections cannot be dumped",
            fix: "load nf_tables, or set STASIS_CRIU_NETWORK_LOCK=iptables with iptables installed",
          };
    },
  },
  {
    name: "lock tables",
    probe: async (config) => {
      const { lockTables } = await import("../criu/network-lock.js");
      const method = config.criuNetworkLock;
      if (method !== "nftables") return { status: "pass", detail: `CRIU locks the network with ${method}` };
      let tables: string[];
      try {
        tables = await lockTables(config.criu);
      } catch (err) {
        return { status: "warn", detail: `cannot list nftables tables: ${(err as Error).message}` };
      }
      // A snapshot never restored owns its dump's table (a restore or `stasis rm` removes it); any other is not
      // this store's to keep.
      const { listSnapshots } = await import("../store/store.js");
      const owned = new Set((await listSnapshots()).map((s) => s.manifest?.criu.networkLockTable).filter(Boolean));
      const others = tables.filter((t) => !owned.has(t));
      const kept = `${tables.length - others.length} kept for snapshots not restored yet`;
      if (others.length === 0) return { status: "pass", detail: `CRIU lock tables: ${kept}` };
      return {
        status: "warn",
        detail: `CRIU lock tables: ${kept}; ${others.length} owned by no snapshot in ${stasisHome()}: ${others.join(", ")}`,
        fix:
          "each drops the traffic of connections dumped by a capture (of another store, a CRIU run outside stasis, " +
          "or a stasis from before it removed them); once no restore needs it: nft delete table inet NAME",
      };
    },
  },
  {
    name: "store",
    probe: async () => {
      const home = stasisHome();
      try {
        const { prepareHome } = await import("../store/home-guard.js");
        await prepareHome(undefined, home);
        const s = await statfs(home);
        const free = s.bavail * s.bsize;
        const gib = (free / 2 ** 30).toFixed(1);
        return free >= MIN_FREE_BYTES
          ? { status: "pass", detail: `${home}: ${gib} GiB free` }
          : {
              status: "warn",
              detail: `${home}: only ${gib} GiB free`,
              fix: "free space or point STASIS_HOME at a larger disk; a snapshot holds the process images and weights",
            };
      } catch (err) {
        return { status: "fail", detail: `${home}: ${(err as Error).message}`, fix: "make STASIS_HOME writable" };
      }
    },
  },
  {
    name: "gpu",
    probe: async () => {
      const { gpuInventory } = await import("../cuda/gpus.js");
      const inv = await gpuInventory();
      if (!inv) return { status: "pass", detail: "no NVIDIA GPU or driver (CPU-only snapshots)" };
      const models = inv.gpus.map((g) => `${g.index}: ${g.name}`).join(", ");
      try {
        const { CudaDriver } = await import("../cuda/driver.js");
        const driver = await CudaDriver.start();
        const v = (await driver.call("driverVersion", {})).result as number;
        driver.close();
        return {
          status: "pass",
          detail: `driver ${inv.driver} (CUDA ${Math.floor(v / 1000)}.${(v % 1000) / 10}); libcuda exports the cuCheckpointProcess* API; GPUs ${models}`,
        };
      } catch (err) {
        return {
          status: "fail",
          detail: `driver ${inv.driver}; GPUs ${models}; ${(err as Error).message}`,
          fix: "GPU snapshots need driver r570 or newer (libcuda with cuCheckpointProcess*)",
        };
      }
    },
  },
];
