/**
 * Scenario files: a JSON suite of phases run in order against each endpoint (and, in compare
 * mode, interleaved A, B, A, B per phase). Loading validates every field and turns sizes and mixes
 * into `Distribution`s, so a typo fails before anything is sent. The format is documented in
 * bench/README.md; bench/scenarios/default.json is the reference suite.
 */
import { readFileSync } from 'node:fs';
import {
  BenchUsageError,
  parseDurationS,
  parseMix,
  parseOperation,
  parseSizeDistribution,
  type Distribution,
  type Operation,
} from './units.js';

export type PhaseOp = Operation | 'MIXED';

export interface Phase {
  readonly name: string;
  readonly op: PhaseOp;
  readonly sizes: Distribution<number>;
  readonly sizeText: string;
  /** Only for MIXED. */
  readonly mix: Distribution<Operation> | undefined;
  readonly mixText: string | undefined;
  readonly concurrency: number;
  /** Time limit per endpoint (split across rounds); at least one of durationS / count is set. */
  readonly durationS: number | undefined;
  /** Operation limit per endpoint (split across rounds). */
  readonly count: number | undefined;
  /**
   * GET/HEAD/DELETE/MIXED: objects of `sizes` that must exist before timing (written untimed
   * if missing). LIST: objects in the listed container.
   */
  readonly objects: number;
  /** LIST page size (Swift's limit, at most 10,000; S3 pages are capped at 1,000). */
  readonly listLimit: number;
  /**
   * Seconds of the same workload run on each endpoint, unmeasured, just before its first slice of
   * this phase (0: none): a server that has just started runs its first load in cold code (V8
   * not yet optimizing, Python's caches empty), which a store in service has long left behind.
   */
  readonly warmupS: number;
}

export interface Scenario {
  readonly name: string;
  readonly description: string;
  /** Containers (buckets) the objects are spread over. */
  readonly containers: number;
  /** Compare mode: slices per phase per endpoint (A, B, A, B, ...). */
  readonly rounds: number;
  readonly cleanup: boolean;
  readonly phases: readonly Phase[];
}

type Json = Record<string, unknown>;

function optionalNumber(object: Json, key: string, where: string): number | undefined {
  const value = object[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new BenchUsageError(`${where}: "${key}" must be a positive number`);
  }
  return value;
}

function optionalInt(object: Json, key: string, where: string): number | undefined {
  const value = optionalNumber(object, key, where);
  if (value !== undefined && !Number.isSafeInteger(value)) {
    throw new BenchUsageError(`${where}: "${key}" must be an integer`);
  }
  return value;
}

function optionalString(object: Json, key: string, where: string): string | undefined {
  const value = object[key];
  if (value === undefined) return undefined;
  if (typeof value === 'number') return String(value);
  if (typeof value !== 'string') throw new BenchUsageError(`${where}: "${key}" must be a string`);
  return value;
}

const PHASE_KEYS = new Set([
  'name',
  'op',
  'size',
  'mix',
  'concurrency',
  'duration',
  'count',
  'objects',
  'listLimit',
  'warmup',
]);

export interface PhaseInput {
  readonly name?: string;
  readonly op: string;
  readonly size?: string;
  readonly mix?: string;
  readonly concurrency?: number;
  /** `30s`, `1m` or a number of seconds. */
  readonly duration?: string | number;
  readonly count?: number;
  readonly objects?: number;
  readonly listLimit?: number;
  /** `5s`, or a number of seconds; 0 for none. */
  readonly warmup?: string | number;
}

export function parsePhase(raw: unknown, where: string): Phase {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new BenchUsageError(`${where}: not an object`);
  const object = raw as Json;
  for (const key of Object.keys(object)) {
    if (!PHASE_KEYS.has(key)) throw new BenchUsageError(`${where}: unknown key "${key}"`);
  }
  const opText = optionalString(object, 'op', where);
  if (opText === undefined) throw new BenchUsageError(`${where}: "op" is required`);
  const op: PhaseOp = opText.toUpperCase() === 'MIXED' ? 'MIXED' : parseOperation(opText);
  const sizeText = optionalString(object, 'size', where) ?? '4KiB';
  const mixText = optionalString(object, 'mix', where);
  if (op === 'MIXED' && mixText === undefined) throw new BenchUsageError(`${where}: MIXED needs "mix"`);
  if (op !== 'MIXED' && mixText !== undefined) throw new BenchUsageError(`${where}: "mix" is only for MIXED`);
  const durationText = optionalString(object, 'duration', where);
  const durationS = durationText === undefined ? undefined : parseDurationS(durationText);
  const count = optionalInt(object, 'count', where);
  if (durationS === undefined && count === undefined) {
    throw new BenchUsageError(`${where}: give "duration" or "count" (or both: whichever comes first)`);
  }
  const concurrency = optionalInt(object, 'concurrency', where) ?? 16;
  const sizes = parseSizeDistribution(sizeText);
  const listLimit = optionalInt(object, 'listLimit', where) ?? 10_000;
  const objects = optionalInt(object, 'objects', where) ?? (op === 'LIST' ? 10_000 : 0);
  const warmupText = optionalString(object, 'warmup', where);
  return {
    name: optionalString(object, 'name', where) ?? `${op} ${sizeText} c${concurrency}`,
    op,
    sizes,
    sizeText,
    mix: mixText === undefined ? undefined : parseMix(mixText),
    mixText,
    concurrency,
    durationS,
    count,
    objects,
    listLimit,
    warmupS: warmupText === undefined ? 0 : parseDurationS(warmupText),
  };
}

const SCENARIO_KEYS = new Set(['name', 'description', 'containers', 'rounds', 'cleanup', 'phases']);

export function parseScenario(raw: unknown, source: string): Scenario {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new BenchUsageError(`${source}: not an object`);
  const object = raw as Json;
  for (const key of Object.keys(object)) {
    if (!SCENARIO_KEYS.has(key)) throw new BenchUsageError(`${source}: unknown key "${key}"`);
  }
  const phases = object.phases;
  if (!Array.isArray(phases) || phases.length === 0)
    throw new BenchUsageError(`${source}: "phases" must be a non-empty array`);
  const cleanup = object.cleanup ?? true;
  if (typeof cleanup !== 'boolean') throw new BenchUsageError(`${source}: "cleanup" must be true or false`);
  return {
    name: optionalString(object, 'name', source) ?? source,
    description: optionalString(object, 'description', source) ?? '',
    containers: optionalInt(object, 'containers', source) ?? 4,
    rounds: optionalInt(object, 'rounds', source) ?? 2,
    cleanup,
    phases: phases.map((phase, index) => parsePhase(phase, `${source}: phases[${index}]`)),
  };
}

export function loadScenario(path: string): Scenario {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new BenchUsageError(
      `cannot read scenario ${path}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  return parseScenario(raw, path);
}
