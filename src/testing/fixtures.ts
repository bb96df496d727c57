/** Test support: well-formed sample data. */
import { MANIFEST_SCHEMA, type Manifest } from "../store/manifest.js";

export function sampleManifest(): Manifest {
  const digest = "a".repeat(64);
  return {
    schema: MANIFEST_SCHEMA,
    name: "s",
    createdAt: new Date(0).toISOString(),
    stasisVersion: "0.1.0",
    command: { argv: ["python3", "server.py"], cwd: "/", env: { UV_USE_IO_URING: "0" } },
    server: {
      url: "http://127.0.0.1:8000",
      readyPath: "/health",
      stdoutPath: "/x/stdout.log",
      stderrPath: "/x/stderr.log",
    },
    engine: { kind: "http", canary: { method: "GET", path: "/a", status: 200, sha256: digest }, state: {} },
    fingerprint: { arch: "x64", kernel: "6.1", cpuModel: "cpu", cpuFlags: "f", criuVersion: "4.2.1" },
    tree: { rootPid: 100, processes: 1, cudaProcesses: 0 },
    criu: { options: [] },
    caches: [],
    linkRemaps: [],
    shmFiles: [],
    listeners: [],
    addresses: [],
    periodicTimers: [],
    files: [{ path: "images/pages-1.img", role: "image", size: 3, sha256: digest, chunkSize: 64, chunks: [digest] }],
    timings: { totalMs: 1 },
  };
}
