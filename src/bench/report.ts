import type { BenchReport } from "./bench.js";
import type { DiskSample } from "./system.js";
import { formatMs, table } from "../text.js";

/** Disk samples cut into consecutive windows of about `windowMs` (each from one sample to the last within
 *  `windowMs` of it): what the disks read in each (GB/s, reads, their mean size), and the mean of the reads in
 *  flight at the samples that end inside it. */
export function diskWindows(
  samples: DiskSample[],
  windowMs: number,
): { fromMs: number; gbps: number; reads: number; meanReadKiB: number; inFlight: number }[] {
  const out = [];
  for (let i = 0; i < samples.length - 1;) {
    const first = samples[i]!;
    let j = i + 1;
    while (j + 1 < samples.length && samples[j + 1]!.ms <= first.ms + windowMs) j++;
    const last = samples[j]!;
    const inside = samples.slice(i + 1, j + 1);
    const bytes = last.bytes - first.bytes;
    const reads = last.reads - first.reads;
    out.push({
      fromMs: first.ms,
      gbps: bytes / Math.max(1e-6, last.ms - first.ms) / 1e6,
      reads,
      meanReadKiB: reads > 0 ? bytes / reads / 1024 : 0,
      inFlight: inside.reduce((a, x) => a + x.inFlight, 0) / inside.length,
    });
    i = j;
  }
  return out;
}

/** The benchmark as a table: one row per strategy, plain text or markdown (with the run's facts above it). */
export function benchTable(r: BenchReport, style: "text" | "markdown"): string {
  const cold = r.strategies.find((s) => s.strategy === "cold");
  const rows = [
    ["strategy", "setup", "ready (median)", "first token (median)", "vs cold", "runs (first token)"],
    ...r.strategies.map((s) => [
      s.strategy,
      s.setup,
      formatMs(s.medianReadyMs),
      formatMs(s.medianFirstTokenMs),
      cold ? `${(cold.medianFirstTokenMs / s.medianFirstTokenMs).toFixed(1)}x` : "",
      s.runs.map((x) => formatMs(x.firstTokenMs)).join(", "),
    ]),
  ];
  const facts = [
    `snapshot ${r.snapshot}, ${r.repeat} run(s) per restore strategy, ${r.repeatStarts ?? r.repeat} per cold/warm start, restore --verify ${r.verify}${r.prefetch ? ` --prefetch ${r.prefetch}` : ""}${r.memory ? ` --memory ${r.memory}` : ""}${r.weights ? ` --weights ${r.weights}` : ""}${r.via === "api" ? ", each a request to `stasis serve`" : ""}`,
    `${r.date} on ${r.machine.host}: ${r.machine.cpus} x ${r.machine.cpuModel}, kernel ${r.machine.kernel}${r.machine.gpu ? `, ${r.machine.gpu} (driver ${r.machine.driver})` : ""}`,
    ...(r.engine ? [`engine: ${subjectLine(r)}`] : []),
    `command: ${r.command}`,
    ...(r.disk && r.coldRatio !== undefined
      ? [
          `disk: ${(r.disk.bytes / 1e9).toFixed(2)} GB read before the first token (images, weights) at ${r.disk.gbps.toFixed(2)} GB/s (${r.disk.how}) = ${formatMs(r.disk.ms)}; restore-cold's first token took ${r.coldRatio.toFixed(2)}x that`,
        ]
      : []),
    ...(r.coldDiskRead
      ? [
          `restore-cold really read ${(r.coldDiskRead.bytes / 1e9).toFixed(2)} GB from the machine's disks before its first token (median; /proc/diskstats: the snapshot, the engine's libraries, stasis and CRIU themselves, any other reader); at the same rate that is ${formatMs(r.coldDiskRead.ms)}, and restore-cold took ${r.coldDiskRead.ratio.toFixed(2)}x that`,
        ]
      : []),
  ];
  if (style === "text") return [...facts, "", table(rows)].join("\n");
  const md = [
    `| ${rows[0]!.join(" | ")} |`,
    `|${rows[0]!.map(() => " --- ").join("|")}|`,
    ...rows.slice(1).map((row) => `| ${row.join(" | ")} |`),
  ];
  const phases = r.strategies.flatMap((s) => [
    "",
    `**${s.strategy}** phases (median run):`,
    "",
    "| phase | start | took | bytes | rate |",
    "| --- | --- | --- | --- | --- |",
    ...s.phases.map(
      (p) =>
        `| ${p.name} | ${formatMs(p.startMs)} | ${formatMs(p.ms)} | ${p.bytes ?? ""} | ${p.gbps ? `${p.gbps.toFixed(2)} GB/s` : ""} |`,
    ),
    ...(s.disk && s.disk.length > 1
      ? [
          "",
          `**${s.strategy}** disks (the same run, /proc/diskstats every 100 ms, 500 ms windows):`,
          "",
          "| from | read | reads | mean read | in flight |",
          "| --- | --- | --- | --- | --- |",
          ...diskWindows(s.disk, 500).map(
            (w) =>
              `| ${formatMs(w.fromMs)} | ${w.gbps.toFixed(2)} GB/s | ${w.reads} | ${w.meanReadKiB.toFixed(0)} KiB | ${w.inFlight.toFixed(1)} |`,
          ),
        ]
      : []),
  ]);
  return [...facts.map((f) => `- ${f}`), "", ...md, ...phases].join("\n");
}

/** "vllm 0.26.0 (vllm adapter), model /opt/model: LlamaForCausalLM, hidden 3072 x 28 layers, 6.43 GB of weights". */
export function subjectLine(r: BenchReport): string {
  const e = r.engine!;
  const m = r.model;
  const shape = m?.shape as { architectures?: string[]; hidden_size?: number; num_hidden_layers?: number } | undefined;
  const parts = [
    shape?.architectures?.[0],
    shape?.hidden_size && shape.num_hidden_layers
      ? `hidden ${shape.hidden_size} x ${shape.num_hidden_layers} layers`
      : undefined,
    m && m.weightsBytes > 0 ? `${(m.weightsBytes / 1e9).toFixed(2)} GB of weights` : undefined,
    m?.gpuStateBytes !== undefined ? `${(m.gpuStateBytes / 1e9).toFixed(2)} GB of GPU state` : undefined,
    m ? `${(m.imageBytes / 1e9).toFixed(2)} GB image` : undefined,
  ].filter(Boolean);
  return `${e.name ?? "?"} ${e.version ?? "?"} (${e.adapter} adapter)${m?.id ? `, model ${m.id}` : ""}${parts.length ? `: ${parts.join(", ")}` : ""}`;
}
