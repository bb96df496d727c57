import { createServer } from "node:net";
import { isIP } from "node:net";
import { StasisError } from "../errors.js";

/** A host address a namespaced instance is published at; port 0: stasis picks a free one as it claims. */
export interface Published {
  host: string;
  port: number;
}

const HINT =
  "--publish HOST:PORT (127.0.0.1:8001, 0.0.0.0:9000, [::1]:8001), HOST alone or HOST:0 (stasis picks a free port " +
  "and reports it), or PORT alone (on 127.0.0.1)";

/**
 * Parses `--publish`: "HOST:PORT", "[IPV6]:PORT", "HOST" or "HOST:0" (a free port is picked), or "PORT" (on
 * 127.0.0.1). HOST is an IP address: the forwarder binds it, so a name would bind whatever it resolves to that day.
 *
 * @example parsePublish("0.0.0.0:9000") // { host: "0.0.0.0", port: 9000 }
 */
export function parsePublish(text: string): Published {
  const s = text.trim();
  let host: string;
  let port = "0";
  const v6 = /^\[([^\]]+)\](?::(\d*))?$/.exec(s);
  if (v6) {
    host = v6[1]!;
    port = v6[2] || "0";
  } else if (/^\d+$/.test(s)) {
    host = "127.0.0.1";
    port = s;
  } else if (isIP(s) === 6) {
    host = s;
  } else {
    const i = s.lastIndexOf(":");
    host = i < 0 ? s : s.slice(0, i);
    port = i < 0 ? "0" : s.slice(i + 1) || "0";
  }
  const n = Number(port);
  if (!isIP(host)) {
    throw new StasisError("E_USAGE", `--publish "${text}": "${host}" is not an IP address`, { hint: HINT });
  }
  if (!/^\d+$/.test(port) || !Number.isInteger(n) || n < 0 || n > 65535) {
    const message = `--publish "${text}": port "${port}" is not a number from 0 to 65535`;
    throw new StasisError("E_USAGE", message, { hint: HINT });
  }
  return { host, port: n };
}

/** "host:port", brackets around an IPv6 host. */
export function formatAddress(a: Published): string {
  return `${isIP(a.host) === 6 ? `[${a.host}]` : a.host}:${a.port}`;
}

/** The URL of `a` with the captured URL's scheme and path: what the instance answers at from the host. */
export function publishedUrl(captured: string, a: Published): string {
  const u = new URL(captured);
  // A wildcard address is reached through loopback: the URL is what stasis's own canary and `ps` use.
  const host = a.host === "0.0.0.0" ? "127.0.0.1" : a.host === "::" ? "::1" : a.host;
  u.host = formatAddress({ host, port: a.port });
  return u.toString().replace(/\/$/, captured.endsWith("/") ? "/" : "");
}

/** A port free on `host` now (the kernel's pick for a bind to port 0). */
export function freePortOn(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}
