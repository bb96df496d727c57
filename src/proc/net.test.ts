import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { connect } from "node:net";
import { networkInterfaces } from "node:os";
import { until } from "../testing/wait.js";
import { expandIpv6, isLoopbackOrAny, listenersOn, parseListeners, socketOwner, tcpOf, unmapped } from "./net.js";

const TCP = [
  "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
  "   0: 0100007F:46E5 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 123456 1 0000000000000000 100 0 0 10 0",
  "   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2222 1 0000000000000000 100 0 0 10 0",
  "   2: 0100007F:46E5 0100007F:D2C4 01 00000000:00000000 00:00000000 00000000     0        0 3333 1 0000000000000000 20 4 30 10 -1",
].join("\n");
const TCP6 = [
  "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
  "   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1 0000000000000000 100 0 0 10 0",
].join("\n");

test("listening sockets come from /proc/net/tcp and tcp6 with their address, port and inode; connections are not listeners", () => {
  assert.deepEqual(parseListeners(TCP, false), [
    { address: "127.0.0.1", port: 18149, inode: 123456 },
    { address: "0.0.0.0", port: 22, inode: 2222 },
  ]);
  assert.deepEqual(parseListeners(TCP6, true), [{ address: "0:0:0:0:0:0:0:1", port: 8080, inode: 4444 }]);
});

test("a port this process listens on is found, with this process as its owner", async (t) => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => server.close());
  const port = (server.address() as { port: number }).port;
  const found = await listenersOn(port);
  assert.equal(found.length, 1);
  assert.deepEqual([found[0]!.address, found[0]!.port], ["127.0.0.1", port]);
  assert.equal(await socketOwner(found[0]!.inode), process.pid);
  server.close();
  await until("the listener to go once closed", async () => (await listenersOn(port)).length === 0);
});

test("addresses in /proc's form: IPv4-mapped IPv6 as IPv4, '::' expanded, loopback and the wildcard told apart", () => {
  assert.equal(unmapped("0:0:0:0:0:ffff:a00:5"), "10.0.0.5");
  assert.equal(unmapped("2001:db8:0:0:0:0:0:7"), "2001:db8:0:0:0:0:0:7");
  assert.equal(expandIpv6("::1"), "0:0:0:0:0:0:0:1");
  assert.equal(expandIpv6("fe80::a:0b"), "fe80:0:0:0:0:0:a:b");
  assert.equal(expandIpv6("2001:db8:0:0:0:0:0:7"), "2001:db8:0:0:0:0:0:7");
  for (const a of ["127.0.0.1", "127.1.2.3", "0.0.0.0", "0:0:0:0:0:0:0:0", "0:0:0:0:0:0:0:1"])
    assert.ok(isLoopbackOrAny(a), a);
  for (const a of ["10.0.0.5", "192.0.2.2", "2001:db8:0:0:0:0:0:1"]) assert.ok(!isLoopbackOrAny(a), a);
});

test("a process's TCP: its listeners, and the non-loopback address a connection of its is bound to", async (t) => {
  const own = Object.values(networkInterfaces())
    .flat()
    .find((i) => i && i.family === "IPv4" && !i.internal)?.address;
  if (!own) return t.skip("this machine has no IPv4 address but loopback");
  const server = createServer((s) => s.on("error", () => {}));
  await new Promise<void>((resolve) => server.listen(0, "0.0.0.0", resolve));
  const port = (server.address() as { port: number }).port;
  const client = connect(port, own);
  await new Promise<void>((resolve, reject) => client.once("connect", resolve).once("error", reject));
  t.after(() => {
    client.destroy();
    server.close();
  });
  const held = await tcpOf([process.pid]);
  assert.ok(held.listeners.includes(`0.0.0.0:${port}`), JSON.stringify(held));
  assert.deepEqual(
    held.addresses,
    [own],
    "the connection's two ends are on this address; loopback and 0.0.0.0 are not",
  );
});
