import { basename } from "node:path";

/** The worker extension stasis's vllm adapter calls (either module path names the same class). */
export const WORKER_EXTENSIONS = [
  "stasis_engine.vllm.StasisWorkerExtension",
  "stasis_engine.vllm.extension.StasisWorkerExtension",
];

/** What a vLLM command line lacks for a level-2 sleep capture: each with exactly what to add. */
export interface VllmCommandProblem {
  missing: "--enable-sleep-mode" | "VLLM_SERVER_DEV_MODE=1" | "--worker-extension-cls";
  add: string;
}

/**
 * The words of a command line: its arguments, and the words inside one given to a shell (`sh -c "vllm serve
 * ..."`), so that a command wrapped in a shell is read too.
 */
function words(argv: readonly string[]): string[] {
  return argv.flatMap((a) => (/\s/.test(a) ? a.split(/\s+/).filter(Boolean) : [a]));
}

/**
 * Whether `argv` starts vLLM's own server: `vllm serve ...`, or `python -m vllm.entrypoints...` (a wrapper script
 * cannot be read, and is taken for what it says it is not: another server speaking vLLM's API, like the
 * reference engine).
 */
export function isVllmServer(argv: readonly string[]): boolean {
  const w = words(argv);
  return w.some(
    (x, i) => (basename(x) === "vllm" && w[i + 1] === "serve") || (x === "-m" && /^vllm(\.|$)/.test(w[i + 1] ?? "")),
  );
}

/** The value of `--name VALUE` or `--name=VALUE` in `w`. */
function flagValue(w: string[], name: string): string | undefined {
  for (let i = 0; i < w.length; i++) {
    if (w[i] === name) return w[i + 1];
    if (w[i]!.startsWith(`${name}=`)) return w[i]!.slice(name.length + 1);
  }
  return undefined;
}

/**
 * What a real vLLM server's command and environment lack for stasis to capture it asleep at level 2 (weights
 * dumped once, neither weights nor KV cache in the image): `--enable-sleep-mode`, `VLLM_SERVER_DEV_MODE=1`
 * (its /collective_rpc, /sleep and /is_sleeping) and stasis's worker extension. `env` is what the server gets.
 *
 * @example
 *   vllmCommandProblems(["vllm", "serve", "m", "--enable-sleep-mode"], {});
 *   // [{ missing: "VLLM_SERVER_DEV_MODE=1", ... }, { missing: "--worker-extension-cls", ... }]
 */
export function vllmCommandProblems(argv: readonly string[], env: NodeJS.ProcessEnv): VllmCommandProblem[] {
  const w = words(argv);
  const problems: VllmCommandProblem[] = [];
  if (!w.some((x) => x === "--enable-sleep-mode" || x === "--enable-sleep-mode=true")) {
    problems.push({ missing: "--enable-sleep-mode", add: "add --enable-sleep-mode to the vLLM command (after `--`)" });
  }
  if (env.VLLM_SERVER_DEV_MODE !== "1" && !w.includes("VLLM_SERVER_DEV_MODE=1")) {
    problems.push({ missing: "VLLM_SERVER_DEV_MODE=1", add: "add --env VLLM_SERVER_DEV_MODE=1 (before `--`)" });
  }
  const ext = flagValue(w, "--worker-extension-cls");
  if (ext === undefined || !WORKER_EXTENSIONS.includes(ext)) {
    problems.push({
      missing: "--worker-extension-cls",
      add:
        `${ext === undefined ? "add" : `replace --worker-extension-cls ${ext} with`} ` +
        `--worker-extension-cls ${WORKER_EXTENSIONS[0]} (after \`--\`; stasis's python/ on the server's PYTHONPATH)`,
    });
  }
  return problems;
}

/**
 * What stasis adds to a vLLM server's environment at capture, unless the caller set it: VLLM_HOST_IP=127.0.0.1, so
 * that the workers' torch.distributed store (and anything else vLLM binds to "this host's address") uses loopback.
 * Otherwise the snapshot's sockets are bound to the capturing machine's address, and a restore needs that address:
 * on another machine, or in a network namespace (a replica, a pod), CRIU cannot bind them back. One host only:
 * a server spread over several machines needs its real address, and the caller says so.
 */
export function vllmLaunchDefaults(argv: readonly string[], env: NodeJS.ProcessEnv): Record<string, string> {
  if (!isVllmServer(argv) || env.VLLM_HOST_IP !== undefined || words(argv).some((w) => w.startsWith("VLLM_HOST_IP="))) {
    return {};
  }
  return { VLLM_HOST_IP: "127.0.0.1" };
}
