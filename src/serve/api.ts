/**
 * The daemon's routes, described once: method, path, schemas and what each says. The server registers exactly these
 * (routes.ts gives each its handler, and the compiler refuses a route without one) and the OpenAPI document is
 * generated from them (openapi.ts), so neither can drift from the other. A new endpoint is one entry here and one
 * handler there.
 */
import type { z } from "zod/v4";
import * as p from "./protocol.js";

export interface RouteSpec {
  method: "GET" | "POST" | "DELETE";
  /** OpenAPI style: `{id}` is a path parameter. */
  path: string;
  summary: string;
  description?: string;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodType;
  /** The answer: JSON, NDJSON lines (one JSON value a line, each valid against the schema) or Prometheus text. */
  answer: { json: z.ZodType } | { ndjson: z.ZodType } | { text: string };
}

export const API = {
  health: {
    method: "GET",
    path: "/v1/health",
    summary: "The daemon answers: its pid and stasis version",
    answer: { json: p.HealthAnswer },
  },
  listInstances: {
    method: "GET",
    path: "/v1/instances",
    summary: "The instances stasis started (as `stasis ps`)",
    description: "Serving ones, and those a capture or restore is at work on; with all=true also those that ended.",
    query: p.ListQuerySchema,
    answer: { json: p.InstancesAnswer },
  },
  stopInstance: {
    method: "DELETE",
    path: "/v1/instances/{id}",
    summary: "Stops an instance: its whole process tree, then its files and record (as `stasis stop`)",
    description: "SIGTERM, then SIGKILL after graceMs. The id may be a unique prefix. 404 E_INSTANCE_NOT_FOUND.",
    params: p.InstanceIdSchema,
    query: p.StopQuerySchema,
    answer: { json: p.StopAnswer },
  },
  capture: {
    method: "POST",
    path: "/v1/captures",
    summary:
      "Captures a snapshot: starts the server, warms it up, checks its canary, snapshots it (as `stasis capture`)",
    description:
      "Streams the capture's events as they happen, then its result or its error. A client that disconnects " +
      "aborts the capture, which then unwinds as on Ctrl-C.",
    body: p.CaptureRequestSchema,
    answer: { ndjson: p.CaptureLine },
  },
  restore: {
    method: "POST",
    path: "/v1/restore",
    summary: "Restores a snapshot serving (as `stasis restore`)",
    description:
      "Streams the restore's events as they happen, then its result (the instance, its timeline) or its error. " +
      "A client that disconnects aborts the restore, which then unwinds as on Ctrl-C.",
    body: p.RestoreRequestSchema,
    answer: { ndjson: p.RestoreLine },
  },
  releaseWeights: {
    method: "POST",
    path: "/v1/weights/release",
    summary: "The weights keepers (--pin-weights) free their pinned weights and stay up, holding none",
    answer: { json: p.ReleasedAnswer },
  },
  pinWeights: {
    method: "POST",
    path: "/v1/weights/pin",
    summary: "The keeper of a snapshot's engine pins its weights now, before any restore of it",
    description: "400 E_USAGE from a daemon without --pin-weights or for a snapshot with nothing to stage.",
    body: p.PinRequestSchema,
    answer: { json: p.PinnedAnswer },
  },
  park: {
    method: "POST",
    path: "/v1/park",
    summary: "Keeps `count` instances of a snapshot parked: restored up to the GPU, their trees stopped",
    description:
      "Answers once they are parked. A restore of the snapshot then takes one and does only the GPU's part; a " +
      "replacement is parked once the address is free again (docs/parking.md).",
    body: p.ParkRequestSchema,
    answer: { json: p.ParkedAnswer },
  },
  hibernate: {
    method: "POST",
    path: "/v1/hibernate",
    summary: "Takes a serving instance off the GPU (sleep, CUDA checkpoint, tree stopped) and keeps it parked",
    body: p.InstanceRequestSchema,
    answer: { json: p.HibernatedAnswer },
  },
  swap: {
    method: "POST",
    path: "/v1/swap",
    summary: "Hands the GPU from a serving instance to another snapshot: hibernates the one, restores the other",
    description:
      "The restore (a take of the snapshot's parked or hibernated instance where there is one) starts once the " +
      "instance going off sleeps, beside the rest of its hibernate. Streams the restore's events, then the result " +
      "(both sides, the hibernate's phases) or the error (docs/parking.md).",
    body: p.SwapRequestSchema,
    answer: { ndjson: p.SwapLine },
  },
  stopParked: {
    method: "POST",
    path: "/v1/parked/stop",
    summary: "Ends a parked instance the daemon holds; one fewer of its snapshot is kept parked",
    description: "stopped: false where the daemon holds no parked instance of that id.",
    body: p.InstanceRequestSchema,
    answer: { json: p.ParkedStopAnswer },
  },
  openapi: {
    method: "GET",
    path: "/v1/openapi.json",
    summary: "This document: the daemon's OpenAPI 3.1 description, as published in schemas/openapi.json",
    answer: { json: p.OpenApiAnswer },
  },
  metrics: {
    method: "GET",
    path: "/metrics",
    summary: "Prometheus metrics: restore and capture phases, failures by code, instances, pinned bytes",
    answer: { text: "text/plain; version=0.0.4; charset=utf-8" },
  },
} as const satisfies Record<string, RouteSpec>;

export type RouteName = keyof typeof API;
