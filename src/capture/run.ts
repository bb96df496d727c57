import { join } from "node:path";
import { Staging } from "../store/store.js";
import { instanceDir, newInstanceId } from "../instances/instances.js";
import { supervise, type Supervisor } from "../instances/supervisor.js";
import type { Launched } from "../launch/launch.js";
import type { Deferred, Pipeline } from "../pipeline/pipeline.js";

/** One capture's own things: its id, its supervisor, its staging folder and its instance folder (the logs). */
export interface CaptureRun {
  id: string;
  supervisor: Supervisor;
  staging: Staging;
  /** The staging folder on the cleanup stack: removed should the capture fail, kept once committed. */
  stagingHeld: Deferred;
  inst: { dir: string; stdout: string; stderr: string };
  /** The dump's CRIU log, in the instance folder: it names the network-lock table the dump made. */
  dumpLog: string;
  /** Set by the launch step: the server whose tree a failure's report looks at, and whose logs it names. */
  server?: Launched;
}

/**
 * Begins a capture: its supervisor first, so that a capture killed from here on leaves no server; then the staging
 * folder (one capture per name at a time) and the instance folder. The instance folder stays after a failure, as
 * after any failed capture: its logs, and the dump log that names the network-lock table a dead capture's reaper
 * removes (leftovers.ts).
 */
export async function beginCapture(p: Pipeline, name: string): Promise<CaptureRun> {
  const id = newInstanceId();
  const supervisor = supervise(id, "");
  p.defer("the capture's supervisor", () => supervisor.release());
  const staging = await Staging.begin(name);
  const stagingHeld = p.defer("the staging folder", () => staging.abort());
  const inst = await instanceDir(id);
  return { id, supervisor, staging, stagingHeld, inst, dumpLog: join(inst.dir, "criu-dump.log") };
}
