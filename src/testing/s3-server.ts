/** Test support: a real S3-compatible server (versitygw over a folder, scripts/s3-server.sh) on loopback. */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { REPO } from "./cli.js";

const SCRIPT = join(REPO, "scripts", "s3-server.sh");

export interface S3Server {
  /** AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION for a client of this server. */
  env: Record<string, string>;
  endpoint: string;
  bucket: string;
  /** Stops the server and removes its folder. */
  stop: () => Promise<void>;
}

/** Starts a server with a fresh bucket and fresh credentials (building the server first if it must: minutes). */
export async function startS3Server(bucket = "stasis"): Promise<S3Server> {
  const dir = mkdtempSync(join(tmpdir(), "stasis-s3-"));
  const stop = async () => {
    await promisify(execFile)(SCRIPT, ["stop", dir]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const { stdout } = await promisify(execFile)(SCRIPT, ["start", dir, bucket], { timeout: 900_000 });
    const env: Record<string, string> = {};
    for (const line of stdout.split("\n")) {
      const m = /^([A-Z_]+)=(.*)$/.exec(line);
      if (m) env[m[1]!] = m[2]!;
    }
    // Only what a client reads: a profile or other AWS_* variables of the caller would change what is tested.
    const clientEnv = {
      AWS_ENDPOINT_URL: env.AWS_ENDPOINT_URL!,
      AWS_ACCESS_KEY_ID: env.AWS_ACCESS_KEY_ID!,
      AWS_SECRET_ACCESS_KEY: env.AWS_SECRET_ACCESS_KEY!,
      AWS_REGION: env.AWS_REGION!,
    };
    return { env: clientEnv, endpoint: clientEnv.AWS_ENDPOINT_URL, bucket, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
