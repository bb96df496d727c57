/**
 * STASIS_* variables that are not settings a user gives stasis: the tests', the benchmarks' and the set-up scripts',
 * and the engine side's alternatives for measuring (read by python/stasis_engine/config.py, same names). Listed so
 * that docs/configuration.md names every one of them apart from the user's settings (`KNOBS`); nothing reads them
 * from here.
 */
export interface InternalVariable {
  env: `STASIS_${string}`;
  /** Who reads it. */
  readBy: "tests" | "set-up scripts" | "engine side";
  doc: string;
}

export const INTERNAL: readonly InternalVariable[] = [
  {
    env: "STASIS_TEST_DIR",
    readBy: "tests",
    doc: "a folder on a disk for the page-cache tests (tmpfs pages never leave memory)",
  },
  { env: "STASIS_RESULTS_DIR", readBy: "tests", doc: "where GPU tests and benchmarks append what they measured" },
  { env: "STASIS_VLLM_VENV", readBy: "tests", doc: "the vLLM CPU build the vLLM integration tests use" },
  {
    env: "STASIS_VLLM_SNAPSHOT",
    readBy: "tests",
    doc: "the vLLM snapshot the GPU suite's Python tests check (with STASIS_VLLM_URL)",
  },
  { env: "STASIS_VLLM_URL", readBy: "tests", doc: "where that restored vLLM server answers" },
  {
    env: "STASIS_TOOLS",
    readBy: "set-up scripts",
    doc: "where scripts/s3-server.sh builds the S3 server of the tests",
  },
  { env: "STASIS_TEST_BUCKET", readBy: "set-up scripts", doc: "the bucket scripts/s3-server.sh makes" },
  {
    env: "STASIS_CPUINFO",
    readBy: "set-up scripts",
    doc: "the file scripts/vllm-cpu-env.sh reads the CPU's flags from",
  },
  {
    env: "STASIS_VLLM_PYTHON",
    readBy: "set-up scripts",
    doc: "the Python scripts/vllm-cpu-env.sh builds the vLLM CPU venv with",
  },
  {
    env: "STASIS_PYTHON_DIR",
    readBy: "set-up scripts",
    doc: "the engine package the GPU machine's vLLM environment adds",
  },
  { env: "STASIS_STAGE_THREADS", readBy: "engine side", doc: "the weights stager's reading threads (8 hot, 16 cold)" },
  {
    env: "STASIS_NATIVE_LANES",
    readBy: "engine side",
    doc: "0: the weights loader's Python loop instead of its C one",
  },
  {
    env: "STASIS_REFERENCE_COMPILE_THREADS",
    readBy: "engine side",
    doc: "the reference engine's compile workers (every core)",
  },
  {
    env: "STASIS_VLLM_GRAPHS",
    readBy: "engine side",
    doc: "sleep: vLLM's CUDA graph pool released by the sleep (experimental: such snapshots do not serve yet)",
  },
  {
    env: "STASIS_VLLM_GPU_TRIM",
    readBy: "engine side",
    doc: "0: leave vLLM's stale CUDA graph pools on the GPU at capture (to measure what freeing them saves)",
  },
  {
    env: "STASIS_REFERENCE_COMPILE_BACKEND",
    readBy: "engine side",
    doc: "the reference engine's torch.compile backend (inductor)",
  },
];
