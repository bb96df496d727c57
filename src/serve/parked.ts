/**
 * The daemon's parked instances (docs/parking.md): per snapshot, how many to keep parked (`stasis park NAME --count
 * N`), the ones parked or hibernated, and the parks under way. A restore of a snapshot takes one of its parked
 * instances when there is one; the pool parks a replacement in the background once the snapshot's address is free
 * again (a parked tree holds its listening sockets, so it cannot be parked while an instance of it serves there).
 */
import type { Events } from "../events.js";
import { StasisError, asStasisError } from "../errors.js";
import type { Parked } from "../restore/park.js";
import type { TakeResult } from "../restore/take.js";
import type { HibernateOptions } from "../restore/hibernate.js";

/** What the pool does to the world; the daemon passes the real ones (restore/park.ts, take.ts, hibernate.ts). */
export interface PoolOps {
  park(name: string, signal: AbortSignal): Promise<Parked>;
  /** Ends `p` (its tree, files, record) and releases its supervisor. */
  end(p: Parked): Promise<void>;
  /** `events`: the request's own, for its timeline (the daemon's where none is given); `opts`: a swap's hand-over. */
  hibernate(id: string, events?: Events, opts?: HibernateOptions): Promise<Parked>;
  /** Why `p` must not be served any more (its snapshot removed or changed, its tree gone), or undefined. */
  stale(p: Parked): Promise<string | undefined>;
  /** Whether a park of `name` could claim its addresses now (no instance serves or is parked there). */
  addressFree(name: string): Promise<boolean>;
  log(message: string, level?: "info" | "warn"): void;
}

/** The most instances of one snapshot that may be parked at once: each holds the snapshot's address. */
export const MAX_PARKED_PER_ADDRESS = 1;

export class ParkedPool {
  private readonly targets = new Map<string, number>();
  private readonly parked = new Map<string, Parked[]>();
  private readonly parking = new Map<string, Promise<Parked | undefined>>();
  private readonly abort = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private closed = false;
  private sweeping = false;

  constructor(
    private readonly ops: PoolOps,
    retryMs = 1_000,
  ) {
    // A replacement waits for its address (the taken instance serves there until stopped): looked at again
    // every `retryMs` while a snapshot has fewer parked instances than asked for. A parked instance of a snapshot
    // removed or changed since is ended then too, rather than hold its memory until a take finds it stale.
    this.timer = setInterval(() => {
      void this.sweep();
      for (const name of this.targets.keys()) void this.replenish(name);
    }, retryMs);
    this.timer.unref();
  }

  /**
   * Keeps `count` instances of snapshot `name` parked, and waits until they are (a failed park is thrown). Fewer
   * than before: the extra ones are ended. Over MAX_PARKED_PER_ADDRESS: refused.
   */
  async setTarget(name: string, count: number): Promise<Parked[]> {
    if (!Number.isInteger(count) || count < 0) {
      throw new StasisError("E_USAGE", `--count must be a whole number >= 0, not ${count}`, {
        hint: "0 ends the snapshot's parked instances",
      });
    }
    if (count > MAX_PARKED_PER_ADDRESS) {
      throw new StasisError(
        "E_USAGE",
        `cannot park ${count} instances of "${name}": each would hold the snapshot's listening address, which only one can`,
        {
          hint: "park one per snapshot (--count 1); several need a network namespace each, which parking does not make yet",
          details: { count, max: MAX_PARKED_PER_ADDRESS },
        },
      );
    }
    this.refuseClosed();
    // A park under way (a replacement) ends before the count changes: it is then counted, or ended as one too many.
    const under = this.parking.get(name);
    if (under) await under;
    if (count === 0) this.targets.delete(name);
    else this.targets.set(name, count);
    const ours = this.list(name).filter((p) => !p.hibernated);
    for (const extra of ours.slice(count)) await this.remove(extra);
    // The first park of a snapshot is the caller's: its failure is theirs to see.
    const want = count - this.list(name).filter((p) => !p.hibernated).length;
    if (want > 0) {
      const p = await this.parkOne(name, true);
      if (!p)
        throw new StasisError("E_DAEMON", `parking "${name}" did not finish`, { hint: "the daemon's log says why" });
    }
    return this.list(name);
  }

  /** The parked (and hibernated) instances, of one snapshot or all. */
  list(name?: string): Parked[] {
    if (name !== undefined) return [...(this.parked.get(name) ?? [])];
    return [...this.parked.values()].flat();
  }

  /** How many of snapshot `name` the pool keeps parked. */
  target(name: string): number {
    return this.targets.get(name) ?? 0;
  }

  /**
   * A restore of `name` from a parked instance by `serve` (restore/take.ts's take: E_SNAPSHOT_CHANGED where the
   * instance must not be served, and then it is left for the pool to end; any other failure ends it), or by `instead`
   * where there is none to serve it (none parked, or the one parked was of a snapshot since removed or changed: that
   * one is ended first). A park of `name` under way is waited for. The replacement is parked after either: begun
   * before `instead`, it would find the address free and take it from the restore.
   */
  async take<R>(
    name: string,
    serve: (p: Parked) => Promise<TakeResult>,
    instead: () => Promise<R>,
  ): Promise<TakeResult | R> {
    if (!this.parked.get(name)?.length) await this.parking.get(name);
    const list = this.parked.get(name) ?? [];
    // A hibernated instance first: it served already, and no replacement is parked for it.
    const i = Math.max(
      0,
      list.findIndex((p) => p.hibernated),
    );
    const p = list[i];
    if (!p) return instead();
    list.splice(i, 1);
    try {
      const result = await serve(p);
      this.ops.log(`served "${name}" from parked instance ${p.record.id} in ${result.readyMs.toFixed(0)} ms`);
      return result;
    } catch (err) {
      const e = asStasisError(err);
      if (e.code !== "E_SNAPSHOT_CHANGED") throw e; // the take ended it
      this.ops.log(`${e.message}; ending it`, "warn");
      await this.ops.end(p);
      return await instead();
    } finally {
      void this.replenish(name);
    }
  }

  /** Hibernates serving instance `id` and keeps it here, under its snapshot; its phases go to `events`. */
  async hibernate(id: string, events?: Events, opts?: HibernateOptions): Promise<Parked> {
    this.refuseClosed();
    const p = await this.ops.hibernate(id, events, opts);
    this.add(p);
    return p;
  }

  /**
   * Ends parked instance `id` if the pool holds it (true), one fewer of its snapshot kept parked from then on.
   * False where it holds no such instance.
   */
  async stop(id: string): Promise<boolean> {
    const p = this.list().find((x) => x.record.id === id);
    if (!p) return false;
    if (!p.hibernated) {
      const t = this.target(p.snapshot) - 1;
      if (t > 0) this.targets.set(p.snapshot, t);
      else this.targets.delete(p.snapshot);
    }
    await this.remove(p);
    return true;
  }

  /** Ends every parked instance and waits for the parks under way to stop (the daemon's exit). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.abort.abort(new Error("the daemon is stopping"));
    await Promise.allSettled([...this.parking.values()]);
    for (const p of this.list()) await this.remove(p);
  }

  /** Ends the parked instances that must not be served any more (PoolOps.stale). */
  async sweep(): Promise<void> {
    if (this.sweeping || this.closed) return;
    this.sweeping = true;
    try {
      for (const p of this.list()) {
        const why = await this.ops.stale(p).catch(() => undefined);
        // A take may have taken it meanwhile: then it is the take's to judge.
        if (!why || !this.list(p.snapshot).includes(p)) continue;
        this.ops.log(`parked instance ${p.record.id} of "${p.snapshot}": ${why}; ending it`, "warn");
        await this.remove(p);
      }
    } finally {
      this.sweeping = false;
    }
  }

  /** Parks one more of `name` where it has fewer than its target, none is being parked and its address is free. */
  async replenish(name: string): Promise<void> {
    if (this.closed || this.parking.has(name)) return;
    if (this.list(name).length >= this.target(name)) return;
    await this.parkOne(name, false, () => this.ops.addressFree(name).catch(() => false));
  }

  /** Parks one of `name` (`first`: once it says the address is free); the park under way is registered at once, so
   *  that a take or a new count waits for it. */
  private async parkOne(name: string, rethrow: boolean, first?: () => Promise<boolean>): Promise<Parked | undefined> {
    const under = this.parking.get(name);
    if (under) return under;
    const job = (async () => {
      try {
        if (first && !(await first())) return undefined;
        const p = await this.ops.park(name, this.abort.signal);
        // The daemon may have been asked to stop, or the count lowered, while it parked.
        if (this.closed || this.list(name).filter((x) => !x.hibernated).length >= this.target(name)) {
          await this.ops.end(p);
          return undefined;
        }
        this.add(p);
        this.ops.log(`parked "${name}" as instance ${p.record.id} in ${p.parkMs.toFixed(0)} ms`);
        return p;
      } catch (err) {
        if (rethrow) throw err;
        this.ops.log(`could not park "${name}": ${asStasisError(err).message}`, "warn");
        return undefined;
      } finally {
        this.parking.delete(name);
      }
    })();
    this.parking.set(name, job);
    return job;
  }

  private add(p: Parked): void {
    const list = this.parked.get(p.snapshot) ?? [];
    list.push(p);
    this.parked.set(p.snapshot, list);
  }

  private async remove(p: Parked): Promise<void> {
    const list = this.parked.get(p.snapshot) ?? [];
    const i = list.indexOf(p);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.parked.delete(p.snapshot);
    await this.ops.end(p);
  }

  private refuseClosed(): void {
    if (this.closed)
      throw new StasisError("E_DAEMON", "the stasis daemon is stopping", { hint: "start `stasis serve` again" });
  }
}
