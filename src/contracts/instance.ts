/**
 * An instance (a server stasis started and tracks) as the CLI's `--json` documents and the daemon's answers show it,
 * defined once: src/cli/schemas/schemas.ts (`stasis ps`, `restore`, `capture`, `park`) and src/serve/protocol.ts
 * (GET /v1/instances, the restore and capture answers, /v1/parked) both use these. The fields are the ones readers
 * rely on from src/instances/instances.ts's `Instance`; the objects are loose, so the record's other fields pass.
 */
import { z } from "zod/v4";

const pid = z.number().int();
const bytes = z.number().int().nonnegative();

export const Instance = z.looseObject({
  id: z.string(),
  snapshot: z.string().describe("the snapshot's name"),
  origin: z.enum(["capture", "restore"]),
  pid,
  url: z.string(),
  createdAt: z.string(),
  dir: z.string(),
  stdout: z.string(),
  stderr: z.string(),
  listeners: z.array(z.string()).optional().describe('TCP addresses ("address:port") it listens on'),
  placement: z
    .looseObject({
      netns: z.string().describe('"own" (a namespace of its own, --publish) or the --netns file'),
      netnsId: z.string(),
      published: z.string().describe("host:port the forwarder listens at (the instance's url)"),
      innerUrl: z.string().describe("the captured URL, as the server answers inside its namespace"),
      forwarderPid: pid.optional(),
    })
    .optional()
    .describe("restore --publish / --netns: where the server runs and how it is reached"),
});

/** An instance with what `stasis ps` and GET /v1/instances find out about it now. */
export const InstanceStatus = Instance.extend({
  running: z.boolean(),
  status: z
    .enum(["serving", "exited", "capturing", "restoring", "parked", "abandoned"])
    .describe(
      "capturing/restoring: a stasis process is at work on it; parked: restored or hibernated, its tree stopped, " +
        "held by `stasis serve`; abandoned: that process died half-way",
    ),
  memory: z
    .looseObject({ rssBytes: bytes, pssBytes: bytes })
    .optional()
    .describe("host memory its process tree holds (running instances)"),
});

/** A parked instance, as `stasis serve` holds it (docs/parking.md). */
export const ParkedView = z.looseObject({
  id: z.string(),
  snapshot: z.string(),
  pid,
  url: z.string(),
  hibernated: z.boolean().describe("parked by `stasis hibernate` from a serving instance"),
  parkMs: z
    .number()
    .nonnegative()
    .describe("how long parking it took (CRIU, reads, checks; hibernated: sleep, checkpoint, stop)"),
  parkedAt: z.string(),
});
