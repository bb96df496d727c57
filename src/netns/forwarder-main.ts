/**
 * The forwarder of a namespaced instance, a process of its own: listens at the published host address (in the
 * host's network namespace), then moves its own thread into the instance's network namespace, so that every
 * connection it accepts is relayed to the server's captured address inside the namespace, 127.0.0.1 included.
 *
 *   node forwarder-main.js LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT INSTANCE_DIR
 *
 * It starts before CRIU (Node's start-up, ~0.1-0.3 s, then overlaps the restore) and waits for one line on its
 * stdin: the pid of the namespace's init, once CRIU has restored. Then it listens, joins that pid's network
 * namespace, prints "listening PORT", and exits once that pid is gone (or at once, should stdin end without a
 * line: the restore failed). The instance's folder is in its arguments so that `stasis stop` and a restore's
 * supervisor find it by that name.
 */
import { createServer, connect, type Socket } from "node:net";
import { openSync, readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { setns, CLONE_NEWNET } from "../native/libc-proc.js";

const [listenHost, listenPort, targetHost, targetPort] = process.argv.slice(2);

function relay(client: Socket): void {
  // Created after setns: this socket lives in the instance's network namespace.
  const upstream = connect({ host: targetHost!, port: Number(targetPort), allowHalfOpen: true });
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  const end = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on("error", end).on("close", end);
  upstream.on("error", end).on("close", end);
  client.pipe(upstream);
  upstream.pipe(client);
}

/** Listens at the published address, then joins the network namespace of `nsInit` and relays into it. */
function serve(nsInit: string): void {
  const netnsFile = `/proc/${nsInit}/ns/net`;
  const nsFd = openSync(netnsFile, "r");
  const server = createServer({ allowHalfOpen: true }, relay);
  server.once("error", (err) => {
    process.stderr.write(`forwarder: cannot listen at ${listenHost}:${listenPort}: ${err.message}\n`);
    process.exit(2);
  });
  server.listen({ host: listenHost, port: Number(listenPort), exclusive: true }, () => {
    // The listener stays in the host's namespace (a socket belongs to the namespace it was made in); from here on
    // this thread's new sockets are made in the instance's. Node makes sockets on the main thread only.
    setns(nsFd, CLONE_NEWNET, netnsFile);
    process.stdout.write(`listening ${(server.address() as { port: number }).port}\n`);
  });
  // Gone with the instance: its namespace's init ended (a stopped server, a killed restore). Unref'd: the listener
  // keeps the process alive; this keeps it from outliving the instance.
  const startTime = (pid: string) => readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ")[19];
  const watched = startTime(nsInit);
  setInterval(() => {
    let now: string | undefined;
    try {
      now = startTime(nsInit);
    } catch {
      now = undefined;
    }
    if (now !== watched) process.exit(0);
  }, 500).unref();
}

// The line comes once CRIU has restored; stdin's end without one means the restore failed: nothing to serve.
let told = false;
const lines = createInterface({ input: process.stdin });
lines.once("line", (pid) => {
  told = true;
  lines.close();
  serve(pid.trim());
});
lines.once("close", () => {
  if (!told) process.exit(0);
});
