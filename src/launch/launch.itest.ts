import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { launch } from "./launch.js";
import { killTree } from "../instances/instances.js";

test("the server leads its own session, gets stasis's environment settings, and logs to files", async () => {
  const dir = mkdtempSync(join(tmpdir(), "stasis-launch-"));
  try {
    const server = await launch({
      argv: ["sh", "-c", "echo out; echo err >&2; exec sleep 30"],
      cwd: dir,
      env: { FOO: "bar" },
      ioUringFilter: true,
      stdout: join(dir, "o"),
      stderr: join(dir, "e"),
    });
    try {
      // The python3 shim that filters io_uring runs before the command: on a busy machine it can take longer than
      // any fixed pause, so wait (bounded) for the command's output instead.
      for (let i = 0; i < 100 && readFileSync(join(dir, "e"), "utf8") === ""; i++)
        await new Promise((r) => setTimeout(r, 50));
      const stat = readFileSync(`/proc/${server.pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      assert.equal(Number(stat[3]), server.pid, "session id is its own pid");
      const environ = readFileSync(`/proc/${server.pid}/environ`, "utf8").split("\0");
      assert.ok(environ.includes("FOO=bar") && environ.includes("UV_USE_IO_URING=0"));
      assert.equal(readFileSync(join(dir, "o"), "utf8"), "out\n");
      assert.equal(readFileSync(join(dir, "e"), "utf8"), "err\n");
    } finally {
      await killTree(server.pid, 1000);
      await server.exited;
    }
    assert.equal(server.hasExited(), true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("regression: waiting for the server to end keeps stasis alive (it exited 0 silently when the child was unref'd)", () => {
  const launchJs = fileURLToPath(new URL("./launch.js", import.meta.url));
  const script = `
    import { launch } from ${JSON.stringify(launchJs)};
    const s = await launch({ argv: ["sleep", "0.5"], cwd: "/", env: {}, stdout: "/dev/null", stderr: "/dev/null" });
    await s.exited;
    console.log("waited");
  `;
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  assert.equal(out.trim(), "waited");
});
