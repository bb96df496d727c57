/**
 * The only module that calls NVML (libnvidia-ml): GPU inventory and per-process GPU memory, in milliseconds
 * where nvidia-smi takes a few hundred. Loaded only inside the CUDA worker process, like libcuda.
 */
import koffi from "koffi";

const Memory = koffi.struct("nvmlMemory_t", { total: "uint64", free: "uint64", used: "uint64" });
const ProcessInfo = koffi.struct("nvmlProcessInfo_t", {
  pid: "uint32",
  usedGpuMemory: "uint64",
  gpuInstanceId: "uint32",
  computeInstanceId: "uint32",
});

export interface NvmlGpu {
  index: number;
  uuid: string;
  name: string;
  memoryMiB: number;
  memoryUsedMiB: number;
}

export interface LibNvml {
  driverVersion(): string;
  cudaVersion(): string;
  gpus(): NvmlGpu[];
  /** Compute processes on every GPU: host pid, bytes, GPU UUID. */
  processes(): { pid: number; bytes: number; uuid: string }[];
}

export function loadLibNvml(path = "libnvidia-ml.so.1"): LibNvml {
  const lib = koffi.load(path);
  const init = lib.func("int nvmlInit_v2()");
  const errorString = lib.func("const char *nvmlErrorString(int result)");
  const sysDriver = lib.func("int nvmlSystemGetDriverVersion(_Out_ char *version, unsigned int length)");
  const sysCuda = lib.func("int nvmlSystemGetCudaDriverVersion_v2(_Out_ int *version)");
  const count = lib.func("int nvmlDeviceGetCount_v2(_Out_ unsigned int *count)");
  const byIndex = lib.func("int nvmlDeviceGetHandleByIndex_v2(unsigned int index, _Out_ void **device)");
  const name = lib.func("int nvmlDeviceGetName(void *device, _Out_ char *name, unsigned int length)");
  const uuid = lib.func("int nvmlDeviceGetUUID(void *device, _Out_ char *uuid, unsigned int length)");
  const memInfo = lib.func("int nvmlDeviceGetMemoryInfo(void *device, _Out_ nvmlMemory_t *memory)");
  const procs = lib.func(
    "int nvmlDeviceGetComputeRunningProcesses_v3(void *device, _Inout_ unsigned int *count, void *infos)",
  );

  const ok = (call: string, r: number) => {
    if (r !== 0) throw new Error(`${call} failed: ${errorString(r) as string} (${r})`);
  };
  const str = (fn: (buf: Buffer, n: number) => number, call: string) => {
    const buf = Buffer.alloc(96);
    ok(call, fn(buf, buf.length));
    return buf.toString("utf8", 0, buf.indexOf(0) === -1 ? buf.length : buf.indexOf(0));
  };
  ok("nvmlInit_v2", init());
  const handles = () => {
    const n = [0];
    ok("nvmlDeviceGetCount_v2", count(n));
    return Array.from({ length: n[0]! }, (_, i) => {
      const h: unknown[] = [null];
      ok("nvmlDeviceGetHandleByIndex_v2", byIndex(i, h));
      return h[0];
    });
  };
  return {
    driverVersion: () => str((b, n) => sysDriver(b, n), "nvmlSystemGetDriverVersion"),
    cudaVersion() {
      const v = [0];
      ok("nvmlSystemGetCudaDriverVersion_v2", sysCuda(v));
      return `${Math.floor(v[0]! / 1000)}.${(v[0]! % 1000) / 10}`;
    },
    gpus: () =>
      handles().map((h, index) => {
        const mem = {} as { total: bigint | number; used: bigint | number };
        ok("nvmlDeviceGetMemoryInfo", memInfo(h, mem));
        return {
          index,
          uuid: str((b, n) => uuid(h, b, n), "nvmlDeviceGetUUID"),
          name: str((b, n) => name(h, b, n), "nvmlDeviceGetName"),
          memoryMiB: Math.round(Number(mem.total) / 2 ** 20),
          memoryUsedMiB: Math.round(Number(mem.used) / 2 ** 20),
        };
      }),
    processes() {
      const out: { pid: number; bytes: number; uuid: string }[] = [];
      for (const h of handles()) {
        const id = str((b, n) => uuid(h, b, n), "nvmlDeviceGetUUID");
        const n = [256];
        const buf = koffi.alloc(ProcessInfo, 256);
        try {
          ok("nvmlDeviceGetComputeRunningProcesses_v3", procs(h, n, buf));
          if (n[0] === 0) continue;
          const decoded = koffi.decode(buf, koffi.array(ProcessInfo, n[0]!)) as {
            pid: number;
            usedGpuMemory: number | bigint;
          }[];
          for (const p of decoded) out.push({ pid: p.pid, bytes: Number(p.usedGpuMemory), uuid: id });
        } finally {
          koffi.free(buf);
        }
      }
      return out;
    },
  };
}

void Memory;
