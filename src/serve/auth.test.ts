import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkBearer, parseListen, readToken } from "./auth.js";
import { StasisError } from "../errors.js";

const refused = (code: string, message: RegExp) => (e: unknown) =>
  e instanceof StasisError && e.code === code && message.test(e.message) && !!e.hint;

test("--listen takes HOST:PORT and [IPv6]:PORT, and names what it expected otherwise", () => {
  assert.deepEqual(parseListen("127.0.0.1:7070"), { host: "127.0.0.1", port: 7070 });
  assert.deepEqual(parseListen("[::1]:0"), { host: "::1", port: 0 });
  assert.deepEqual(parseListen("localhost:80"), { host: "localhost", port: 80 });
  for (const bad of ["7070", "127.0.0.1", "127.0.0.1:70000", "::1:7070", ":7070", "host:port"]) {
    assert.throws(() => parseListen(bad), refused("E_USAGE", /expected HOST:PORT/), bad);
  }
});

test("a token file is refused when others can read it, when it is short, or missing", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "stasis-token-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "token");
  await assert.rejects(readToken(file), refused("E_USAGE", /no such file/));
  writeFileSync(file, "0123456789abcdef0123\nsecond line ignored\n", { mode: 0o644 });
  chmodSync(file, 0o644);
  await assert.rejects(readToken(file), refused("E_PERMISSION", /open to others \(mode 644\)/));
  chmodSync(file, 0o600);
  assert.equal(await readToken(file), "0123456789abcdef0123");
  writeFileSync(file, "  short \n");
  await assert.rejects(readToken(file), refused("E_USAGE", /5 characters; at least 16/));
});

test("a bearer token must match exactly; a missing or malformed header is refused", () => {
  const token = "0123456789abcdef0123";
  assert.equal(checkBearer(`Bearer ${token}`, token), undefined);
  assert.equal(checkBearer(`bearer ${token}`, token), undefined, "the scheme is case-insensitive (RFC 7235)");
  assert.equal(checkBearer(undefined, token)?.code, "E_UNAUTHORIZED");
  assert.match(checkBearer(undefined, token)!.message, /no bearer token/);
  assert.match(checkBearer(`Basic ${token}`, token)!.message, /no bearer token/);
  assert.match(checkBearer(`Bearer ${token}x`, token)!.message, /wrong bearer token/);
  assert.match(checkBearer(`Bearer ${token.slice(1)}`, token)!.message, /wrong bearer token/);
});
