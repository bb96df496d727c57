import { test } from "node:test";
import assert from "node:assert/strict";
import { StasisError, asStasisError, exitStatus, httpStatus, fsError } from "./errors.js";

test("codes map to exit and HTTP statuses by group", () => {
  assert.equal(exitStatus("E_USAGE"), 2);
  assert.equal(exitStatus("E_SNAPSHOT_NOT_FOUND"), 3);
  assert.equal(exitStatus("E_DIGEST_MISMATCH"), 4);
  assert.equal(exitStatus("E_CRIU_MISSING"), 5);
  assert.equal(exitStatus("E_CRIU_DUMP"), 6);
  assert.equal(httpStatus("E_SNAPSHOT_NOT_FOUND"), 404);
  assert.equal(httpStatus("E_READY_TIMEOUT"), 504);
});

test("asStasisError keeps a StasisError and wraps anything else as E_INTERNAL with its cause", () => {
  const e = new StasisError("E_IO", "x", { hint: "h" });
  assert.equal(asStasisError(e), e);
  const wrapped = asStasisError(new TypeError("boom"));
  assert.equal(wrapped.code, "E_INTERNAL");
  assert.equal(wrapped.message, "boom");
  assert.ok(wrapped.cause instanceof TypeError);
  assert.deepEqual(Object.keys(e.toJSON()), ["code", "message", "hint", "details", "cause"]);
});

test("fsError turns errno codes into our codes with hints", () => {
  const mk = (code: string) => Object.assign(new Error(code), { code });
  assert.equal(fsError(mk("ENOENT"), "/x", "read").code, "E_FILE_NOT_FOUND");
  assert.equal(fsError(mk("EACCES"), "/x", "read").code, "E_PERMISSION");
  assert.equal(fsError(mk("ENOSPC"), "/x", "write").code, "E_NO_SPACE");
  assert.ok(fsError(mk("ENOSPC"), "/x", "write").hint);
  assert.equal(fsError(mk("EIO"), "/x", "read").code, "E_IO");
});

test("a full disk met anywhere (ENOSPC, EDQUOT) is E_NO_SPACE with a hint, never a bug in stasis", async () => {
  for (const code of ["ENOSPC", "EDQUOT"]) {
    const err = Object.assign(new Error(`${code}: no space left on device, write`), {
      code,
      path: "/var/lib/stasis/snapshots/x",
      syscall: "write",
    });
    const e = asStasisError(err);
    assert.equal(e.code, "E_NO_SPACE", code);
    assert.match(e.message, /\/var\/lib\/stasis\/snapshots\/x/);
    assert.match(e.hint ?? "", /STASIS_HOME/);
    assert.doesNotMatch(e.hint ?? "", /bug/);
  }
});
