import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { StasisError } from "../errors.js";
import { refuseTakenAddress } from "./address.js";

test("a server address whose port something listens on is refused, naming the process", async (t) => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => server.close());
  const port = (server.address() as { port: number }).port;
  await assert.rejects(refuseTakenAddress(`http://127.0.0.1:${port}/health`), (e: unknown) => {
    assert.ok(e instanceof StasisError && e.code === "E_ADDRESS_IN_USE");
    assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${port} is listening \\(pid ${process.pid}, node\\)`));
    return true;
  });
  await new Promise((r) => server.close(r));
  await refuseTakenAddress(`http://127.0.0.1:${port}/health`);
});
