import { homedir } from "node:os";
import { join } from "node:path";
import { StasisError, type ErrorCode } from "../errors.js";
import type { RemoteStore } from "./url.js";
import { eachLimit } from "./_pool.js";

/** Where the client reaches the store, and where its credentials come from (for errors that must say so). */
export interface RemoteOptions {
  /** `--endpoint`; else AWS_ENDPOINT_URL; else AWS's own endpoint for the region. */
  endpoint?: string;
  env?: NodeJS.ProcessEnv;
}

/** The few object-store calls stasis makes; `S3Remote` implements them with the AWS SDK. */
export interface Remote {
  readonly endpoint: string;
  readonly credentialSource: string;
  /** Size of the object, or undefined where there is none. */
  head(key: string): Promise<number | undefined>;
  get(key: string): Promise<Buffer>;
  /** Undefined where there is no such object. */
  getIfExists(key: string): Promise<Buffer | undefined>;
  put(key: string, body: Buffer): Promise<void>;
  /**
   * Bytes [start, start + into.length) of an object, read straight into `into`; the object's whole size (from the
   * answer's Content-Range), or undefined where there is no such object.
   */
  getRange(key: string, start: number, into: Buffer): Promise<number | undefined>;
  /** A multipart upload of `body` in parts of `partSize` bytes, `concurrency` at a time (aborted on failure). */
  putParts(key: string, body: Buffer, partSize: number, concurrency: number): Promise<void>;
  /** The common prefixes one level under `prefix` (the "folders"). */
  folders(prefix: string): Promise<string[]>;
  /** Every object under `prefix`, with its size and when it was last written. */
  list(prefix: string): Promise<{ key: string; size: number; lastModified: Date }[]>;
  delete(key: string): Promise<void>;
}

/** Names where the credentials come from, as the SDK's default chain picks them, for an error to say. */
export function credentialSource(env: NodeJS.ProcessEnv = process.env): string {
  if (env.AWS_ACCESS_KEY_ID) return "the environment (AWS_ACCESS_KEY_ID)";
  const file = env.AWS_SHARED_CREDENTIALS_FILE ?? join(homedir(), ".aws", "credentials");
  return `profile "${env.AWS_PROFILE ?? "default"}" of ${file}`;
}

/** Opens a client for a store. Nothing is sent until the first call. */
export async function openRemote(store: RemoteStore, opts: RemoteOptions = {}): Promise<Remote> {
  const env = opts.env ?? process.env;
  // The pinned SDK runs on Node 20 (stasis's floor); its warning is about later releases, which the lock file
  // keeps out.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  const sdk = await import("@aws-sdk/client-s3"); // loaded only by the commands that reach a store
  const endpoint = opts.endpoint ?? env.AWS_ENDPOINT_URL ?? env.AWS_ENDPOINT_URL_S3;
  if (endpoint !== undefined && !/^https?:\/\/[^/]+/.test(endpoint)) {
    throw new StasisError("E_USAGE", `endpoint "${endpoint}" is not a URL`, {
      hint: "write http://HOST:PORT or https://HOST (--endpoint or AWS_ENDPOINT_URL)",
    });
  }
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? "us-east-1";
  const client = new sdk.S3Client({
    region,
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    // Keys in `env` are used as given; without them the SDK's own chain looks (~/.aws/credentials, AWS_PROFILE, ...).
    ...(env.AWS_ACCESS_KEY_ID
      ? {
          credentials: {
            accessKeyId: env.AWS_ACCESS_KEY_ID,
            secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? "",
            ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
          },
        }
      : {}),
    // Every chunk is checked against its sha256 by stasis itself; S3-compatible servers differ in the checksums
    // they take, so the SDK adds none where the API does not require one.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  const where = endpoint ?? `AWS S3 (${region})`;
  const source = credentialSource(env);
  const fail = (err: unknown, what: string, key: string): never => {
    throw remoteError(err, { endpoint: where, credentialSource: source, bucket: store.bucket, what, key });
  };
  const notFound = (err: unknown) => {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    return e.name === "NotFound" || e.name === "NoSuchKey" || e.$metadata?.httpStatusCode === 404;
  };
  const get = async (key: string): Promise<Buffer> => {
    const res = await client.send(new sdk.GetObjectCommand({ Bucket: store.bucket, Key: key }));
    return readBody(res.Body as AsyncIterable<Uint8Array>, res.ContentLength, key);
  };
  return {
    endpoint: where,
    credentialSource: source,
    async head(key) {
      try {
        const res = await client.send(new sdk.HeadObjectCommand({ Bucket: store.bucket, Key: key }));
        return res.ContentLength ?? 0;
      } catch (err) {
        if (notFound(err) && (err as { name?: string }).name !== "NoSuchBucket") return undefined;
        return fail(err, "look up", key);
      }
    },
    async get(key) {
      try {
        return await get(key);
      } catch (err) {
        return fail(err, "read", key);
      }
    },
    async getIfExists(key) {
      try {
        return await get(key);
      } catch (err) {
        if ((err as { name?: string }).name === "NoSuchKey") return undefined;
        return fail(err, "read", key);
      }
    },
    async put(key, body) {
      try {
        await client.send(
          new sdk.PutObjectCommand({ Bucket: store.bucket, Key: key, Body: body, ContentLength: body.length }),
        );
      } catch (err) {
        fail(err, "write", key);
      }
    },
    async getRange(key, start, into) {
      try {
        const range = `bytes=${start}-${start + into.length - 1}`;
        const res = await client.send(new sdk.GetObjectCommand({ Bucket: store.bucket, Key: key, Range: range }));
        await readBody(res.Body as AsyncIterable<Uint8Array>, into.length, key, into);
        return Number(/\/(\d+)$/.exec(res.ContentRange ?? "")?.[1] ?? NaN);
      } catch (err) {
        if ((err as { name?: string }).name === "NoSuchKey") return undefined;
        return fail(err, "read", key);
      }
    },
    async putParts(key, body, partSize, concurrency) {
      let uploadId: string | undefined;
      try {
        const created = await client.send(new sdk.CreateMultipartUploadCommand({ Bucket: store.bucket, Key: key }));
        uploadId = created.UploadId!;
        const parts: { PartNumber: number; ETag: string }[] = [];
        const starts = Array.from({ length: Math.ceil(body.length / partSize) }, (_, i) => i * partSize);
        await eachLimit(starts, concurrency, async (at) => {
          const part = body.subarray(at, at + partSize);
          const PartNumber = at / partSize + 1;
          const res = await client.send(
            new sdk.UploadPartCommand({
              Bucket: store.bucket,
              Key: key,
              UploadId: uploadId,
              PartNumber,
              Body: part,
              ContentLength: part.length,
            }),
          );
          parts.push({ PartNumber, ETag: res.ETag! });
        });
        parts.sort((a, b) => a.PartNumber - b.PartNumber);
        await client.send(
          new sdk.CompleteMultipartUploadCommand({
            Bucket: store.bucket,
            Key: key,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts },
          }),
        );
      } catch (err) {
        // Invariant: a failed upload leaves no parts stored (and billed) in the bucket.
        if (uploadId) {
          await client
            .send(new sdk.AbortMultipartUploadCommand({ Bucket: store.bucket, Key: key, UploadId: uploadId }))
            .catch(() => undefined);
        }
        fail(err, "write", key);
      }
    },
    async list(prefix) {
      const out: { key: string; size: number; lastModified: Date }[] = [];
      let token: string | undefined;
      try {
        do {
          const res = await client.send(
            new sdk.ListObjectsV2Command({ Bucket: store.bucket, Prefix: prefix, ContinuationToken: token }),
          );
          for (const o of res.Contents ?? []) {
            if (o.Key) out.push({ key: o.Key, size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0) });
          }
          token = res.IsTruncated ? res.NextContinuationToken : undefined;
        } while (token);
      } catch (err) {
        fail(err, "list", prefix);
      }
      return out;
    },
    async delete(key) {
      try {
        await client.send(new sdk.DeleteObjectCommand({ Bucket: store.bucket, Key: key }));
      } catch (err) {
        fail(err, "delete", key);
      }
    },
    async folders(prefix) {
      const out: string[] = [];
      let token: string | undefined;
      try {
        do {
          const res = await client.send(
            new sdk.ListObjectsV2Command({
              Bucket: store.bucket,
              Prefix: prefix,
              Delimiter: "/",
              ContinuationToken: token,
            }),
          );
          for (const p of res.CommonPrefixes ?? [])
            if (p.Prefix) out.push(p.Prefix.slice(prefix.length).replace(/\/$/, ""));
          token = res.IsTruncated ? res.NextContinuationToken : undefined;
        } while (token);
      } catch (err) {
        fail(err, "list", prefix);
      }
      return out;
    },
  };
}

/**
 * An object's body read straight into one buffer of its announced length. The SDK's collector
 * (`transformToByteArray`) keeps the parts, then copies them into a zero-filled array: one zero-fill and one copy of
 * each 64 MiB chunk more, the largest item of a pull's CPU profile beside the hashing.
 */
export async function readBody(
  body: AsyncIterable<Uint8Array>,
  length: number | undefined,
  key: string,
  into?: Buffer,
): Promise<Buffer> {
  if (length === undefined) {
    const parts: Uint8Array[] = [];
    for await (const part of body) parts.push(part);
    return Buffer.concat(parts);
  }
  const buf = into ?? Buffer.allocUnsafe(length);
  let at = 0;
  for await (const part of body) {
    if (at + part.length > length) break;
    buf.set(part, at);
    at += part.length;
  }
  if (at !== length) {
    throw new StasisError("E_REMOTE", `the store sent ${at} bytes of ${key}, ${length} announced`, {
      hint: "run it again: the connection was cut or the object changed while it was read",
    });
  }
  return buf;
}

const AUTH = new Set([
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "AccessDenied",
  "InvalidToken",
  "ExpiredToken",
  "CredentialsProviderError",
]);

/**
 * Turns an SDK failure into a StasisError that names the endpoint (and, for a refusal, where the credentials came
 * from): E_REMOTE_AUTH, E_REMOTE_NOT_FOUND (no bucket) or E_REMOTE.
 */
export function remoteError(
  err: unknown,
  at: { endpoint: string; credentialSource: string; bucket: string; what: string; key: string },
): StasisError {
  if (err instanceof StasisError) return err;
  const e = err as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  // A HEAD's refusal has no body to name it: the SDK calls it "Unknown"; the status says more.
  const named = e.name && e.name !== "Unknown" ? e.name : undefined;
  const name = named ?? (status ? `HTTP ${status}` : (e.code ?? "Error"));
  const details = { endpoint: at.endpoint, bucket: at.bucket, key: at.key, status, error: name };
  let code: ErrorCode = "E_REMOTE";
  const object = `s3://${at.bucket}/${at.key}`;
  let message = `${at.endpoint}: could not ${at.what} ${object}: ${name}${e.message ? ` (${e.message})` : ""}`;
  let hint = "check the endpoint (--endpoint or AWS_ENDPOINT_URL) and that the store is up; then run it again";
  if (AUTH.has(name) || status === 403 || status === 401) {
    code = "E_REMOTE_AUTH";
    message = `${at.endpoint} refused the credentials from ${at.credentialSource} (${name}) to ${at.what} ${object}`;
    hint =
      "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or a profile in ~/.aws/credentials, " +
      "that this store accepts";
  } else if (name === "NoSuchBucket") {
    code = "E_REMOTE_NOT_FOUND";
    message = `${at.endpoint} has no bucket "${at.bucket}"`;
    hint = "create the bucket first, or check its name";
  } else if (/ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|ECONNRESET/.test(`${e.code ?? ""} ${e.message ?? ""}`)) {
    message = `cannot reach ${at.endpoint} to ${at.what} ${object}: ${e.code ?? e.message}`;
  }
  return new StasisError(code, message, { hint, cause: err, details });
}
