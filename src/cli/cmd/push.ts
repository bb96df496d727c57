import type { CliCommand } from "../registry.js";
import { formatBytes, formatMs } from "../../text.js";

export const endpointOption = {
  type: "string",
  arg: "URL",
  help: "the S3-compatible endpoint (default: AWS_ENDPOINT_URL, else AWS S3 in AWS_REGION)",
} as const;

export const command: CliCommand = {
  args: ["<name>", "<s3://bucket/prefix>"],
  help: [
    "Sends a snapshot to an S3-compatible store: its files in 64 MiB chunks named by their sha256 under",
    "PREFIX/chunks/ (a chunk the bucket has already, a model's weights pushed with another snapshot, is",
    "skipped), then its index and manifest under PREFIX/snapshots/NAME/. Run again after a failure, it",
    "sends only what is missing. Credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,",
    "AWS_REGION, or ~/.aws/credentials (AWS_PROFILE). See docs/remote.md",
  ].join("\n"),
  options: { endpoint: endpointOption },
  async run({ values, positionals, events, config }) {
    const { push } = await import("../../commands/push.js");
    const r = await push(
      { name: positionals[0]!, to: positionals[1]!, endpoint: values.endpoint as string | undefined, config },
      events,
    );
    const text =
      `pushed ${r.snapshot} to ${r.remote} in ${formatMs(r.durationMs)}: ` +
      `${r.uploaded} chunks sent (${formatBytes(r.bytesUploaded)}), ` +
      `${r.skipped} already there (${formatBytes(r.bytesSkipped)})`;
    return { data: r, text };
  },
};
