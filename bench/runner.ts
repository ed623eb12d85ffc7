/**
 * Runs phases against one endpoint: N workers each looping (bounded by the phase's duration and
 * operation count) over operations drawn from the phase, timing each from first byte sent to
 * last byte received and verified. Objects written stay in the endpoint's pool for later GET,
 * HEAD and DELETE phases; objects a phase needs but the pool lacks are written first, untimed.
 * A slice's figures (ops, bytes, errors by kind, latency histograms, client and server CPU,
 * a per-second timeline) are merged into the phase's `PhaseMeasure` across rounds.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { OperationError } from './http.js';
import { variantsFor, type PayloadPool } from './payload.js';
import { type ObjectRef, type StoreClient } from './clients.js';
import { cpuBetween, type ServerCpuMeter } from './cpu.js';
import { type Phase } from './scenario.js';
import { LatencyHistogram, Timeline, type TimelinePoint } from './stats.js';
import { type Operation } from './units.js';

/** Errors kept verbatim per phase for the report (the rest are only counted). */
const ERROR_SAMPLES_MAX = 5;

export interface PhaseMeasure {
  ops: number;
  bytes: number;
  rows: number;
  errors: Map<string, number>;
  errorSamples: string[];
  elapsedS: number;
  latency: LatencyHistogram;
  byOp: Map<Operation, LatencyHistogram>;
  clientCpuS: number;
  serverCpuS: number | undefined;
  /**
   * Compare mode without --isolate: CPU these servers used while the other endpoint's slices ran
   * (their updaters and replicators catching up on this endpoint's writes, plus idle), and how long
   * those slices took. It lands on the other endpoint's figures unless it is reported.
   */
  otherSlicesCpuS: number | undefined;
  otherSlicesElapsedS: number;
  /** One list of per-second points per slice (slices are not contiguous in compare mode). */
  timelines: TimelinePoint[][];
  roundOpsPerS: number[];
  roundMBPerS: number[];
}

export function emptyMeasure(): PhaseMeasure {
  return {
    ops: 0,
    bytes: 0,
    rows: 0,
    errors: new Map(),
    errorSamples: [],
    elapsedS: 0,
    latency: new LatencyHistogram(),
    byOp: new Map(),
    clientCpuS: 0,
    serverCpuS: undefined,
    otherSlicesCpuS: undefined,
    otherSlicesElapsedS: 0,
    timelines: [],
    roundOpsPerS: [],
    roundMBPerS: [],
  };
}

export interface Progress {
  phase: string;
  endpoint: string;
  startMs: number;
  ops: number;
  bytes: number;
  errors: number;
  recent: LatencyHistogram;
}

/**
 * The container a LIST phase of `objects` lists. Per API, because a bucket made through S3 and a
 * container made through Swift carry different ACL metadata (s3api with s3_acl refuses one for
 * the other) when both endpoints of a comparison are one cluster.
 */
export function listContainerName(api: string, objects: number): string {
  return `nebula-bench-list-${api}-${objects}`;
}

export type ProgressSink = (progress: Progress | undefined) => void;

/** Uniform numbers for choices; Math.random is plenty for picking sizes and objects. */
const uniform = (): number => Math.random();

export class EndpointRunner {
  private readonly pool = new Map<number, ObjectRef[]>();
  private readonly listContainers = new Map<number, { container: string; objects: ObjectRef[] }>();
  private readonly containerNames: string[];
  private readonly createdContainers = new Set<string>();
  private sequence = 0;
  /** Set on SIGINT: workers finish their current operation and the phase ends. */
  stopped = false;
  readonly prefix: string;

  constructor(
    readonly label: string,
    readonly client: StoreClient,
    readonly payload: PayloadPool,
    readonly meter: ServerCpuMeter,
    containers: number,
    prefix?: string,
  ) {
    this.prefix = prefix ?? `nbench-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
    this.containerNames = Array.from({ length: containers }, (_, index) => `${this.prefix}-${index}`);
  }

  async setup(): Promise<void> {
    await this.client.connect();
    for (const container of this.containerNames) await this.ensureContainer(container);
  }

  private async ensureContainer(container: string): Promise<void> {
    if (this.createdContainers.has(container)) return;
    await this.client.createContainer(container);
    this.createdContainers.add(container);
  }

  get pooledObjects(): number {
    let total = 0;
    for (const list of this.pool.values()) total += list.length;
    return total;
  }

  private newRef(size: number, container?: string): ObjectRef {
    const sequence = this.sequence++;
    return {
      container: container ?? (this.containerNames[sequence % this.containerNames.length] as string),
      name: `obj-${sequence.toString(36).padStart(8, '0')}`,
      size,
      variant: sequence % variantsFor(size),
    };
  }

  private addToPool(ref: ObjectRef): void {
    const list = this.pool.get(ref.size) ?? [];
    list.push(ref);
    this.pool.set(ref.size, list);
  }

  /** A pooled object, preferably of a size the phase asks for; `take` removes it (DELETE). */
  private pickFromPool(phase: Phase, take: boolean): ObjectRef | undefined {
    let list = this.pool.get(phase.sizes.pick(uniform()));
    if (list === undefined || list.length === 0) {
      list = phase.sizes.entries
        .map((entry) => this.pool.get(entry.value))
        .find((l) => l !== undefined && l.length > 0);
    }
    if (list === undefined || list.length === 0) list = [...this.pool.values()].find((l) => l.length > 0);
    if (list === undefined || list.length === 0) return undefined;
    const index = Math.floor(uniform() * list.length);
    const ref = list[index] as ObjectRef;
    if (take) {
      list[index] = list[list.length - 1] as ObjectRef;
      list.pop();
    }
    return ref;
  }

  private poolCountFor(phase: Phase): number {
    let total = 0;
    for (const entry of phase.sizes.entries) total += this.pool.get(entry.value)?.length ?? 0;
    return total;
  }

  /** Digests for every size the phase may write, computed before timing starts. */
  private prepareDigests(phase: Phase): void {
    for (const entry of phase.sizes.entries) {
      for (let variant = 0; variant < variantsFor(entry.value); variant += 1)
        this.payload.prepare(entry.value, variant);
    }
  }

  /** Untimed writes so a read phase has what it reads; returns errors seen (the phase reports them). */
  private async prefill(phase: Phase, progress: ProgressSink): Promise<number> {
    let missing: number;
    if (phase.op === 'LIST') {
      if (this.listContainers.has(phase.objects)) return 0;
      // Listing containers outlive the run (cleanup leaves them unless told otherwise): filling
      // 10,000 objects costs minutes on a small cluster, and the next run can list them as they are.
      const container = listContainerName(this.client.api, phase.objects);
      await this.ensureContainer(container);
      const present = await this.client.countObjects(container, phase.objects);
      const objects: ObjectRef[] = [];
      this.listContainers.set(phase.objects, { container, objects });
      if (present >= phase.objects) return 0;
      const size = phase.sizes.pick(0);
      this.prepareDigests(phase);
      let index = present;
      return this.writeMany(
        phase.objects - present,
        Math.max(phase.concurrency, 16),
        `${phase.name} (filling ${container}: ${phase.objects - present} objects)`,
        progress,
        () => ({ container, name: `obj-${String(index++).padStart(8, '0')}`, size, variant: 0 }),
        (ref) => objects.push(ref),
      );
    }
    if (phase.op === 'PUT') return 0;
    const wanted = phase.objects > 0 ? phase.objects : Math.max(phase.concurrency * 2, 8);
    missing = wanted - this.poolCountFor(phase);
    if (phase.op === 'DELETE' && phase.objects === 0) missing = 0;
    if (missing <= 0) return 0;
    this.prepareDigests(phase);
    return this.writeMany(
      missing,
      phase.concurrency,
      `${phase.name} (prefill)`,
      progress,
      () => this.newRef(phase.sizes.pick(uniform())),
      (ref) => this.addToPool(ref),
    );
  }

  private async writeMany(
    total: number,
    concurrency: number,
    what: string,
    progress: ProgressSink,
    make: () => ObjectRef,
    done: (ref: ObjectRef) => void,
  ): Promise<number> {
    let issued = 0;
    let errors = 0;
    const state: Progress = {
      phase: what,
      endpoint: this.label,
      startMs: performance.now(),
      ops: 0,
      bytes: 0,
      errors: 0,
      recent: new LatencyHistogram(),
    };
    const worker = async (): Promise<void> => {
      while (issued < total && !this.stopped) {
        issued += 1;
        const ref = make();
        const begun = performance.now();
        try {
          state.bytes += await this.client.put(ref);
          state.ops += 1;
          state.recent.record((performance.now() - begun) * 1000);
          done(ref);
        } catch {
          errors += 1;
          state.errors += 1;
        }
        progress(state);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, total) }, () => worker()));
    progress(undefined);
    return errors;
  }

  /** One timed slice of a phase; merges its figures into `measure`. */
  async runSlice(
    phase: Phase,
    limits: { durationS: number | undefined; count: number | undefined },
    measure: PhaseMeasure,
    runStartMs: number,
    progress: ProgressSink,
  ): Promise<void> {
    for (const container of this.containerNames) await this.ensureContainer(container);
    const prefillErrors = await this.prefill(phase, progress);
    if (prefillErrors > 0) {
      measure.errors.set('prefill', (measure.errors.get('prefill') ?? 0) + prefillErrors);
    }
    this.prepareDigests(phase);

    const state: Progress = {
      phase: phase.name,
      endpoint: this.label,
      startMs: performance.now(),
      ops: 0,
      bytes: 0,
      errors: 0,
      recent: new LatencyHistogram(),
    };
    const listTarget = this.listContainers.get(phase.objects);
    let issued = 0;
    let exhausted = false;
    const serverBefore = this.meter.sample();
    const cpuBefore = process.cpuUsage();
    const startMs = performance.now();
    const timeline = new Timeline(runStartMs, Date.now());
    const deadlineMs = limits.durationS === undefined ? Number.POSITIVE_INFINITY : startMs + limits.durationS * 1000;

    const record = (op: Operation, begunMs: number, bytes: number, rows: number, error: unknown): void => {
      const endMs = performance.now();
      const micros = (endMs - begunMs) * 1000;
      const ok = error === undefined;
      timeline.record(Date.now(), micros, bytes, ok);
      if (ok) {
        measure.ops += 1;
        measure.bytes += bytes;
        measure.rows += rows;
        measure.latency.record(micros);
        let histogram = measure.byOp.get(op);
        if (histogram === undefined) {
          histogram = new LatencyHistogram();
          measure.byOp.set(op, histogram);
        }
        histogram.record(micros);
        state.ops += 1;
        state.bytes += bytes;
        state.recent.record(micros);
      } else {
        const kind = error instanceof OperationError ? error.kind : 'client_error';
        measure.errors.set(kind, (measure.errors.get(kind) ?? 0) + 1);
        if (measure.errorSamples.length < ERROR_SAMPLES_MAX) {
          measure.errorSamples.push(`${op}: ${error instanceof Error ? error.message : JSON.stringify(error)}`);
        }
        state.errors += 1;
      }
      progress(state);
    };

    const chooseOp = (): Operation => {
      if (phase.op !== 'MIXED') return phase.op;
      return (phase.mix as NonNullable<Phase['mix']>).pick(uniform());
    };

    const runOne = async (op: Operation): Promise<void> => {
      if (op === 'LIST') {
        if (listTarget === undefined) throw new Error('LIST phase without its container');
        // One op per page; a walk restarts at the top after the last page.
        let marker: string | undefined;
        for (let page = 0; page < 1_000_000; page += 1) {
          if (performance.now() >= deadlineMs || (limits.count !== undefined && issued > limits.count)) return;
          const begun = performance.now();
          try {
            const result = await this.client.list(listTarget.container, marker, phase.listLimit);
            record('LIST', begun, 0, result.rows, undefined);
            if (!result.truncated || result.lastName === undefined) return;
            marker = result.lastName;
          } catch (error) {
            record('LIST', begun, 0, 0, error);
            return;
          }
          issued += 1;
        }
        return;
      }
      let ref: ObjectRef | undefined;
      let effective = op;
      if (op === 'PUT') ref = this.newRef(phase.sizes.pick(uniform()));
      else {
        ref = this.pickFromPool(phase, op === 'DELETE');
        if (ref === undefined) {
          if (phase.op === 'MIXED') {
            effective = 'PUT';
            ref = this.newRef(phase.sizes.pick(uniform()));
          } else {
            exhausted = true; // nothing left to read or delete: the phase ends early
            return;
          }
        }
      }
      const begun = performance.now();
      try {
        let bytes = 0;
        if (effective === 'PUT') {
          bytes = await this.client.put(ref);
          this.addToPool(ref);
        } else if (effective === 'GET') bytes = await this.client.get(ref);
        else if (effective === 'HEAD') bytes = await this.client.head(ref);
        else bytes = await this.client.delete(ref);
        record(effective, begun, bytes, 0, undefined);
      } catch (error) {
        // A failed DELETE may or may not have happened: the object leaves the pool either way.
        record(effective, begun, 0, 0, error);
      }
    };

    const worker = async (): Promise<void> => {
      // Bounded by the deadline and the count (at least one is set for every phase).
      while (
        !exhausted &&
        !this.stopped &&
        performance.now() < deadlineMs &&
        (limits.count === undefined || issued < limits.count)
      ) {
        issued += 1;
        await runOne(chooseOp());
      }
    };
    await Promise.all(Array.from({ length: phase.concurrency }, () => worker()));
    progress(undefined);

    const elapsedS = (performance.now() - startMs) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const serverAfter = this.meter.sample();
    measure.elapsedS += elapsedS;
    measure.clientCpuS += (cpu.user + cpu.system) / 1e6;
    if (serverBefore !== undefined && serverAfter !== undefined) {
      measure.serverCpuS = (measure.serverCpuS ?? 0) + cpuBetween(serverBefore, serverAfter);
    }
    measure.timelines.push(timeline.points(Date.now()));
    measure.roundOpsPerS.push(state.ops / elapsedS);
    measure.roundMBPerS.push(state.bytes / 1e6 / elapsedS);
  }

  /** Deletes everything this run wrote (untimed), then its containers. Returns failures. */
  async cleanup(concurrency: number, progress: ProgressSink, listContainersToo: boolean): Promise<number> {
    const refs: ObjectRef[] = [];
    for (const list of this.pool.values()) refs.push(...list);
    const kept = new Set<string>();
    for (const [objects, entry] of this.listContainers) {
      if (!listContainersToo) {
        kept.add(entry.container);
        continue;
      }
      // Names in a listing container are obj-00000000.. by index, whichever run wrote them.
      for (let index = 0; index < objects; index += 1) {
        refs.push({ container: entry.container, name: `obj-${String(index).padStart(8, '0')}`, size: 0, variant: 0 });
      }
    }
    this.pool.clear();
    let next = 0;
    let failures = 0;
    const state: Progress = {
      phase: 'cleanup',
      endpoint: this.label,
      startMs: performance.now(),
      ops: 0,
      bytes: 0,
      errors: 0,
      recent: new LatencyHistogram(),
    };
    const worker = async (): Promise<void> => {
      while (next < refs.length) {
        const ref = refs[next++] as ObjectRef;
        const begun = performance.now();
        try {
          await this.client.delete(ref);
          state.ops += 1;
          state.recent.record((performance.now() - begun) * 1000);
        } catch (error) {
          // Already gone is fine; anything else is a leftover worth reporting.
          if (!(error instanceof OperationError && error.kind === 'http_404')) {
            failures += 1;
            state.errors += 1;
          }
        }
        progress(state);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, refs.length)) }, () => worker()));
    progress(undefined);
    for (const container of this.createdContainers) {
      if (kept.has(container)) continue;
      try {
        await this.client.deleteContainer(container);
      } catch {
        failures += 1;
      }
    }
    return failures;
  }
}
