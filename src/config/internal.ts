/**
 * STASIS_* variables that are not settings a user gives stasis: the tests', the benchmarks' and the set-up scripts',
 * and the engine side's alternative being measured (read by python/stasis_engine/config.py, same name). A setting
 * only tests need is no variable: they pass it explicitly. Listed so
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
  {
    env: "STASIS_VLLM_GRAPHS",
    readBy: "engine side",
    doc: "gpu: vLLM's CUDA graph pool left on the GPU asleep, not released by the sleep (default sleep; for measuring)",
  },
  {
    env: "STASIS_VLLM_CONTEXT_STACK",
    readBy: "engine side",
    doc: "bytes (>= 1024): the CUDA context's stack size per thread set back to this before a checkpoint, shrinking its local memory where kernels raised it (default keep; for measuring)",
  },
];

/** A setting stasis no longer reads, and what took its place: `stasis doctor` names it where it is still set. */
export interface RemovedVariable {
  env: `STASIS_${string}`;
  instead: string;
}

export const REMOVED: readonly RemovedVariable[] = [
  {
    env: "STASIS_PREFILL_WORKERS",
    instead: "nothing: `--memory parallel` copies with one worker per core, at most 16",
  },
  {
    env: "STASIS_CRIU_FILE_VALIDATION",
    instead: "nothing: CRIU checks the mapped files' build-ids (docs/decisions/0012-criu-file-validation.md)",
  },
  {
    env: "STASIS_VLLM_GPU_TRIM",
    instead:
      "nothing: the capture's GPU trim freed nothing and was removed (docs/decisions/0015-vllm-stale-graph-pools.md)",
  },
  { env: "STASIS_CRIU_LOG_MAX_MB", instead: "nothing: a restore whose CRIU log passes 256 MiB is stopped" },
  { env: "STASIS_PIN_WEIGHTS_MAX", instead: "`stasis serve --pin-weights --pin-weights-max N`" },
  { env: "STASIS_REMOTE_UPLOAD_PART_MB", instead: "`STASIS_REMOTE_PART_MB`, which sets a push's parts too" },
  {
    env: "STASIS_STAGE_THREADS",
    instead: "nothing: the stager reads with 8 threads from the page cache, 16 from disk",
  },
  { env: "STASIS_NATIVE_LANES", instead: "nothing: the weights loader's C loop wherever it is built" },
  {
    env: "STASIS_REFERENCE_COMPILE_THREADS",
    instead: "nothing: the reference engine compiles with one worker per core",
  },
  {
    env: "STASIS_REFERENCE_COMPILE_BACKEND",
    instead: "nothing: the reference engine compiles with inductor (tests pass another backend in its options)",
  },
];
