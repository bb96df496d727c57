import { test } from "node:test";
import assert from "node:assert/strict";
import { networkInterfaces } from "node:os";
import { refuseMissingAddresses } from "./placement.js";
import { expandIpv6 } from "../proc/net.js";
import type { StasisError } from "../errors.js";

test("a host-network restore is refused where the snapshot's bound addresses are not this machine's", () => {
  const here = ["127.0.0.1", "192.0.2.2", "0:0:0:0:0:0:0:1"];
  refuseMissingAddresses([], here);
  refuseMissingAddresses(["192.0.2.2"], here);
  assert.throws(
    () => refuseMissingAddresses(["192.0.2.2", "10.9.8.7"], here),
    (e: StasisError) =>
      e.code === "E_ADDRESS_MISSING" &&
      /10\.9\.8\.7/.test(e.message) &&
      !/192\.0\.2\.2/.test(e.message) &&
      /--publish/.test(e.hint ?? ""),
  );
});

test("every address of this machine's interfaces counts as here, IPv6 as /proc writes it", () => {
  const mine = Object.values(networkInterfaces())
    .flat()
    .map((i) => (i!.family === "IPv6" ? expandIpv6(i!.address.replace(/%.*$/, "")) : i!.address));
  assert.ok(mine.includes("127.0.0.1"));
  refuseMissingAddresses(mine);
});
