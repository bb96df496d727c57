/**
 * The set-up and harness scripts' own checks must not fail by themselves: no reader that leaves early piped into
 * under pipefail (see pipefail-lint.ts), and vllm-cpu-env.sh's host checks, run for real.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO } from "./cli.js";
import { earlyReaders } from "./pipefail-lint.js";

const SCRIPT_DIRS = [
  "scripts",
  "gpu",
  "gpu/suites",
  "gpu/vllm",
  "gpu/vllm/device",
  "bench",
  "examples/vllm-tiny",
  "deploy/container",
];
const scripts = [
  "setup.sh",
  ".ci/run",
  ...SCRIPT_DIRS.flatMap((d) =>
    readdirSync(join(REPO, d))
      .filter((f) => f.endsWith(".sh"))
      .map((f) => `${d}/${f}`),
  ),
];

test("no set-up, CI or harness script pipes into a reader that leaves early under pipefail", () => {
  assert.ok(scripts.length >= 20, `found ${scripts.length} scripts`);
  const bad = scripts.flatMap((f) =>
    earlyReaders(readFileSync(join(REPO, f), "utf8")).map((r) => `${f}:${r.line}: ${r.reader}`),
  );
  const fix = 'capture the output first (x=$(cmd); grep -q ... <<<"$x") or read to the end (grep -c, sed -n 1p)';
  assert.deepEqual(bad, [], fix);
});

test("the pipefail lint finds the early readers it is for, and passes the readers that read to the end", () => {
  const lint = (body: string) => earlyReaders(`set -euo pipefail\n${body}\n`).map((r) => r.reader);
  for (const bad of [
    "if ! ldconfig -p | grep -q 'libnuma\\.so\\.1 '; then",
    "v=$(ls -d x/*/ 2>/dev/null | head -1)",
    "x=$(printf '%s\\n4.1\\n' \"$v\" | sort -V | head -n1)",
    'dpkg-query -W -f=\'${Status}\\n\' "$p" | grep -Eq "ok installed" || echo "$p"',
    "cat f | grep -m1 x",
    "} | awk '$2 ~ /x/ {print $1; exit}'",
    "ls | sed 1q",
    "pgrep -f engine | head -1",
    "ldconfig -p \\\n  | grep --quiet numa",
  ])
    assert.equal(lint(bad).length, 1, bad);
  for (const good of [
    "grep -q 'libnuma' <<<\"$libs\"",
    "ldconfig -p | grep -c numa",
    "ls | sed -n 1p",
    "du -ch x | tail -1 | sed 's/^/pack: /'",
    "a || b | grep x",
    "echo 'a | head' | cat",
    "grep -q x file  # not piped | head",
    "ldd x | awk '/=> \\// {print $3}' | while read -r lib; do",
    "sed -n 's/^quick: //p' f | cut -c1-3",
  ])
    assert.deepEqual(lint(good), [], good);
  assert.deepEqual(earlyReaders("ls | head -1\n"), [], "without pipefail an early reader fails nothing");
});

/** A fake `ldconfig` whose `-p` names libnuma first and then more than a pipe holds (64 KiB): what a real
 *  machine with many libraries prints, in an order that lets `grep -q` leave at once. */
function fakeLdconfig(dir: string): void {
  const f = join(dir, "ldconfig");
  writeFileSync(
    f,
    [
      "#!/bin/bash",
      "printf '\\tlibnuma.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libnuma.so.1\\n'",
      "seq -f '\\tlibother%g.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libother.so.1' 20000",
      "",
    ].join("\n"),
  );
  chmodSync(f, 0o755);
}

const AVX2 = "fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi1 bmi2";
const CPUS: Record<string, { flags: string; kernels: string }> = {
  // This development machine (AMD EPYC, Zen 4): AVX-512 with BF16.
  "AMD EPYC (Zen 4)": { flags: `${AVX2} avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16`, kernels: "_C" },
  "Intel Xeon Skylake-SP": { flags: `${AVX2} avx512f avx512dq avx512cd avx512bw avx512vl`, kernels: "_C_AVX512" },
  // The newcomer's machine and qemu's EPYC model: AVX2, no AVX-512.
  "AMD EPYC (Zen 1-3)": { flags: `${AVX2} sha_ni`, kernels: "_C_AVX2" },
  "Intel Haswell": { flags: AVX2, kernels: "_C_AVX2" },
};

function host(cpuFlags: string, dir: string) {
  const cpuinfo = join(dir, "cpuinfo");
  const cpu = (n: number) => `processor\t: ${n}\nmodel name\t: test\nflags\t\t: ${cpuFlags}\n`;
  writeFileSync(cpuinfo, `${cpu(0)}\n${cpu(1)}`);
  return spawnSync("bash", [join(REPO, "scripts/vllm-cpu-env.sh"), "--host"], {
    env: { ...process.env, PATH: `${dir}:${process.env.PATH}`, STASIS_CPUINFO: cpuinfo },
    encoding: "utf8",
  });
}

test("vllm-cpu-env.sh finds libnuma though ldconfig -p prints more than a pipe holds (not 'libnuma.so.1 is missing')", () => {
  const dir = mkdtempSync(join(tmpdir(), "stasis-ldconfig-"));
  try {
    fakeLdconfig(dir);
    // The fault, for real: the old check's pipeline fails with libnuma listed.
    const old = spawnSync("bash", ["-c", "set -o pipefail; ldconfig -p | grep -q 'libnuma\\.so\\.1 '"], {
      env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
    });
    assert.notEqual(old.status, 0, "the grep -q pipeline fails under pipefail (SIGPIPE)");
    const r = host(CPUS["Intel Haswell"]!.flags, dir);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "_C_AVX2");
    assert.doesNotMatch(r.stderr, /missing/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("vllm-cpu-env.sh picks vLLM's kernels by the CPU's flags, and refuses a CPU without AVX2", () => {
  const dir = mkdtempSync(join(tmpdir(), "stasis-cpuflags-"));
  try {
    fakeLdconfig(dir);
    for (const [cpu, { flags, kernels }] of Object.entries(CPUS)) {
      const r = host(flags, dir);
      assert.equal(r.status, 0, `${cpu}: ${r.stderr}`);
      assert.equal(r.stdout.trim(), kernels, cpu);
    }
    const old = host("fpu sse sse2 ssse3 sse4_1 sse4_2 avx", dir);
    assert.equal(old.status, 1);
    assert.match(old.stderr, /lacks AVX2, F16C or FMA .*need all three/);
    assert.equal(host(AVX2.replace(" f16c", ""), dir).status, 1, "AVX2 without F16C");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
