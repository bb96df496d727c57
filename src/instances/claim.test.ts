import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer, type AddressInfo } from "node:net";
import { once } from "node:events";
import { join } from "node:path";
import { addressesOf, claimRestore, holdsPartOf, portsOf, type Claim } from "./claim.js";
import { instanceDir, listInstances, recordInstance, selfAsOwner } from "./instances.js";
import { Events } from "../events.js";
import { StasisError } from "../errors.js";
import { listeners } from "../proc/net.js";

const claimFor = async (
  home: string,
  id: string,
  port: number,
  owner: { pid: number; startTime: number },
): Promise<Claim> => ({
  id,
  snapshot: "s",
  origin: "restore",
  pid: 0,
  url: `http://127.0.0.1:${port}`,
  createdAt: new Date().toISOString(),
  ...(await instanceDir(id, home)),
  state: "restoring",
  owner,
  listeners: [`127.0.0.1:${port}`, `127.0.0.1:${port + 1}`],
  criuFiles: [`/tmp/x-${id}.cr.1.ghost`],
});

test("an instance's ports are its listeners' and its URL's", () => {
  assert.deepEqual(
    [...portsOf({ url: "http://127.0.0.1:8000/v1", listeners: ["127.0.0.1:8000", "::1:9000"] })].sort(),
    [8000, 9000],
  );
  assert.deepEqual([...portsOf({ url: "https://example" })], [443]);
});

test("a claim overlaps another on any shared port or ghost file", async () => {
  const c = { url: "http://127.0.0.1:8000", listeners: ["127.0.0.1:8001"], criuFiles: ["/tmp/a.cr.1.ghost"] } as Claim;
  assert.equal(holdsPartOf({ url: "http://127.0.0.1:8001" }, c), true);
  assert.equal(holdsPartOf({ url: "http://127.0.0.1:9000", criuFiles: ["/tmp/a.cr.1.ghost"] }, c), true);
  assert.equal(holdsPartOf({ url: "http://127.0.0.1:9000", listeners: ["0.0.0.0:9001"] }, c), false);
});

test("a restore on a claimed address is refused, naming the one at work; a dead one's claim is reaped", async (t) => {
  const home = mkdtempSync(join(tmpdir(), "stasis-claim-"));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  const events = new Events();
  const logs: string[] = [];
  events.on((e) => void (e.type === "log" && logs.push(e.message)));
  // The record's owner is this process: a live restore.
  await recordInstance(await claimFor(home, "first", 41000, await selfAsOwner()));
  await assert.rejects(
    claimRestore(await claimFor(home, "second", 41001, await selfAsOwner()), events, home),
    (e: unknown) => {
      assert.ok(e instanceof StasisError && e.code === "E_ADDRESS_IN_USE");
      assert.match(e.message, /port 41001 is taken: instance first is restoring snapshot "s"/);
      assert.match(e.hint ?? "", /stasis stop first/);
      return true;
    },
  );
  // Its owner "dies" (a pid that is not there): the next claim removes its record and folder and goes ahead.
  await recordInstance(await claimFor(home, "first", 41000, { pid: 2 ** 22 + 7, startTime: 1 }));
  assert.equal((await listInstances(home))[0]?.status, "abandoned");
  await claimRestore(await claimFor(home, "third", 41000, await selfAsOwner()), events, home);
  assert.equal(existsSync(join(home, "instances", "first")), false);
  assert.deepEqual(
    (await listInstances(home)).map((i) => [i.id, i.status]),
    [["third", "restoring"]],
  );
  assert.ok(
    logs.some((l) => /removed what an unfinished restore \(instance first/.test(l)),
    logs.join("\n"),
  );
});

test("a restore on a parked instance's address is refused, saying it is parked by stasis serve", async (t) => {
  const home = mkdtempSync(join(tmpdir(), "stasis-claim-"));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  // Its owner (the daemon) is this process.
  const parked = { ...(await claimFor(home, "parked1", 41100, await selfAsOwner())), state: "parked" as const };
  await recordInstance({ ...parked, parked: { manifestDigest: "d", parkedAt: new Date().toISOString() } });
  assert.equal((await listInstances(home))[0]?.status, "parked");
  await assert.rejects(
    claimRestore(await claimFor(home, "next", 41100, await selfAsOwner()), new Events(), home),
    (e: unknown) => {
      assert.ok(e instanceof StasisError && e.code === "E_ADDRESS_IN_USE");
      assert.match(e.message, /instance parked1 \(snapshot "s"\) is parked there by stasis serve/);
      return true;
    },
  );
});

test("a replica in a namespace of its own holds its published port; one in a given namespace, its ports there", () => {
  const own = { url: "http://127.0.0.1:9001", listeners: ["127.0.0.1:8000"] };
  const placement = { netns: "own", netnsId: "own", published: "127.0.0.1:9001", innerUrl: "http://127.0.0.1:8000" };
  assert.deepEqual([...addressesOf({ ...own, placement })], ["host:9001"]);
  const given = { ...placement, netns: "/run/netns/a", netnsId: "net:[7]" };
  assert.deepEqual([...addressesOf({ ...own, placement: given })].sort(), ["host:9001", "net:[7]:8000"]);
  // Host-network instances on the captured port do not collide with a replica in a namespace of its own.
  assert.deepEqual([...addressesOf({ url: "http://127.0.0.1:8000" })], ["host:8000"]);
});

test("--publish at a port something listens on is refused, naming it; none given, a free one is picked", async (t) => {
  const home = mkdtempSync(join(tmpdir(), "stasis-claim-"));
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  t.after(() => (server.close(), rmSync(home, { recursive: true, force: true })));
  const taken = (server.address() as AddressInfo).port;
  const placed = async (id: string, published: string): Promise<Claim> => ({
    ...(await claimFor(home, id, 41000, await selfAsOwner())),
    placement: { netns: "own", netnsId: "own", published, innerUrl: "http://127.0.0.1:41000" },
  });
  await assert.rejects(claimRestore(await placed("a", `127.0.0.1:${taken}`), new Events(), home), (e: unknown) => {
    assert.ok(e instanceof StasisError && e.code === "E_ADDRESS_IN_USE");
    assert.match(e.message, new RegExp(`port ${taken} is taken`));
    assert.match(e.hint ?? "", /--publish HOST:PORT/);
    return true;
  });
  const picked = await claimRestore(await placed("b", "127.0.0.1:0"), new Events(), home);
  assert.match(picked.placement!.published, /^127\.0\.0\.1:[1-9]\d*$/);
  // A second restore at once picks another port: the first one's claim holds its port.
  const other = await claimRestore(await placed("c", "127.0.0.1:0"), new Events(), home);
  assert.notEqual(other.placement!.published, picked.placement!.published);
});

test("the ports are checked once for the URL and every listener; read again once a dead restore was reaped", async (t) => {
  const home = mkdtempSync(join(tmpdir(), "stasis-claim-"));
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  t.after(() => (server.close(), rmSync(home, { recursive: true, force: true })));
  const port = (server.address() as AddressInfo).port;
  // A listener's port (the URL's + 1 in claimFor) is checked too, from the same read.
  await assert.rejects(
    claimRestore(await claimFor(home, "a", port - 1, await selfAsOwner()), new Events(), home, listeners()),
    (e: unknown) => e instanceof StasisError && e.code === "E_ADDRESS_IN_USE" && e.message.includes(`port ${port}`),
  );
  // Read while a server listened there, which has gone since, as a dead restore's server goes when it is reaped.
  const before = listeners();
  await before;
  server.close();
  await once(server, "close");
  await recordInstance(await claimFor(home, "dead", port, { pid: 2 ** 22 + 7, startTime: 1 }));
  await claimRestore(await claimFor(home, "b", port, await selfAsOwner()), new Events(), home, before);
  assert.deepEqual(
    (await listInstances(home)).map((i) => [i.id, i.status]),
    [["b", "restoring"]],
  );
});
