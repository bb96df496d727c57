import { StasisError } from "../errors.js";
import { checkName } from "../store/store.js";

/** Where snapshots live in a bucket: `s3://BUCKET/PREFIX`, PREFIX without slashes at either end ("" for none). */
export interface RemoteStore {
  bucket: string;
  prefix: string;
}

/** A bucket's name as S3 allows it (3-63 lower-case letters, digits, '.', '-'). */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export const isRemoteUrl = (s: string): boolean => s.startsWith("s3://");

/**
 * Parses `s3://bucket/prefix` (a store). E_USAGE names what was expected.
 *
 * @example parseRemoteStore("s3://models/fleet") // { bucket: "models", prefix: "fleet" }
 */
export function parseRemoteStore(url: string): RemoteStore {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
  if (!m || !BUCKET.test(m[1]!)) {
    throw new StasisError("E_USAGE", `"${url}" is not an S3 location`, {
      hint: "write s3://BUCKET or s3://BUCKET/PREFIX (a bucket: 3-63 lower-case letters, digits, '.', '-')",
    });
  }
  const prefix = m[2]!.replace(/\/+$/, "");
  if (prefix.split("/").some((part) => part === "" || part === "." || part === "..") && prefix !== "") {
    throw new StasisError("E_USAGE", `"${url}": the prefix "${prefix}" has an empty, '.' or '..' part`, {
      hint: "write s3://BUCKET/PREFIX with plain folder names",
    });
  }
  return { bucket: m[1]!, prefix };
}

/** Parses `s3://bucket/prefix/NAME` (one snapshot in a store): the store and the snapshot's name. */
export function parseRemoteSnapshot(url: string): RemoteStore & { name: string } {
  const store = parseRemoteStore(url);
  const cut = store.prefix.lastIndexOf("/");
  const name = store.prefix.slice(cut + 1);
  if (name === "") {
    throw new StasisError("E_USAGE", `"${url}" names no snapshot`, {
      hint: "write s3://BUCKET/PREFIX/NAME, NAME a snapshot pushed with `stasis push NAME s3://BUCKET/PREFIX`",
    });
  }
  return { bucket: store.bucket, prefix: cut < 0 ? "" : store.prefix.slice(0, cut), name: checkName(name) };
}

const join = (prefix: string, rest: string) => (prefix ? `${prefix}/${rest}` : rest);

/** The keys of a store: content-addressed chunks shared by every snapshot, and each snapshot's own folder. */
export const keys = {
  chunk: (s: RemoteStore, sha256: string) => join(s.prefix, `chunks/${sha256}`),
  snapshots: (s: RemoteStore) => join(s.prefix, "snapshots/"),
  snapshot: (s: RemoteStore, name: string) => join(s.prefix, `snapshots/${name}/`),
  manifest: (s: RemoteStore, name: string) => join(s.prefix, `snapshots/${name}/manifest.json`),
  index: (s: RemoteStore, name: string) => join(s.prefix, `snapshots/${name}/index.json`),
};

export const formatRemote = (s: RemoteStore, name?: string): string =>
  `s3://${s.bucket}${s.prefix ? `/${s.prefix}` : ""}${name ? `/${name}` : ""}`;
