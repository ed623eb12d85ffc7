/**
 * CPU time of the servers under test, read from /proc/<pid>/stat (utime + stime, plus cutime +
 * cstime: the children that exited and were reaped). A server set is given as pids or as a
 * pgrep pattern; each sample also takes in the live descendants of those pids (forked workers),
 * found by walking /proc's parent links. A process present at both ends of a phase counts its
 * delta; one that appeared during it counts all its time (it began after the start); one that
 * vanished is assumed reaped by its parent in the set (see `cpuBetween`). In compare mode a set can
 * also be paused (SIGSTOP) while the other endpoint runs (`--isolate`).
 * Linux only: elsewhere samples are empty and the report shows `-`.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second (`getconf CLK_TCK`); 100 on every Linux this runs on. */
const TICKS_PER_SECOND = 100;

export interface ProcessTimes {
  readonly pid: number;
  readonly ppid: number;
  /** Own user+system time plus reaped children's, in seconds. */
  readonly cpuS: number;
  /** Start time (clock ticks after boot): tells a reused pid from the same process. */
  readonly startTicks: number;
}

/** Parses one /proc/<pid>/stat line (the command may hold spaces and parentheses). */
export function parseProcStat(text: string): ProcessTimes | undefined {
  const close = text.lastIndexOf(')');
  const open = text.indexOf('(');
  if (close < 0 || open < 0) return undefined;
  const pid = Number(text.slice(0, open).trim());
  // Fields after the command: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17) ... starttime(22)
  const fields = text
    .slice(close + 2)
    .trim()
    .split(/\s+/);
  const field = (n: number): number => Number(fields[n - 3]);
  const ticks = field(14) + field(15) + field(16) + field(17);
  if (!Number.isFinite(ticks) || !Number.isFinite(pid)) return undefined;
  return { pid, ppid: field(4), cpuS: ticks / TICKS_PER_SECOND, startTicks: field(22) };
}

function readStat(pid: number): ProcessTimes | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined; // exited, or not Linux
  }
}

function allProcesses(): ProcessTimes[] {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return [];
  }
  const out: ProcessTimes[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (stat !== undefined) out.push(stat);
  }
  return out;
}

export interface ServerSet {
  readonly pids: readonly number[];
  readonly pgrep: string | undefined;
}

/** The root pids of a server set now: the given pids, plus pgrep's matches (never ourselves). */
export function resolveRoots(set: ServerSet): number[] {
  const roots = new Set(set.pids);
  if (set.pgrep !== undefined) {
    try {
      const output = execFileSync('pgrep', ['-f', set.pgrep], { encoding: 'utf8', timeout: 5000 });
      for (const line of output.split('\n')) if (/^\d+$/.test(line.trim())) roots.add(Number(line.trim()));
    } catch {
      // pgrep exits 1 when nothing matches: an empty set.
    }
  }
  // Never ourselves nor our ancestors: a shell whose command line holds the pattern matches it too.
  for (const pid of ancestorsOf(process.pid)) roots.delete(pid);
  return [...roots];
}

/** This process and its parents up to init (bounded by /proc's depth: at most 64 steps). */
function ancestorsOf(pid: number): number[] {
  const out = [pid];
  let current = readStat(pid);
  for (let step = 0; step < 64 && current !== undefined && current.ppid > 1; step += 1) {
    out.push(current.ppid);
    current = readStat(current.ppid);
  }
  return out;
}

/** The roots and all their live descendants, each once (never this process). */
export function processTree(roots: readonly number[]): ProcessTimes[] {
  const processes = allProcesses();
  const children = new Map<number, ProcessTimes[]>();
  const byPid = new Map<number, ProcessTimes>();
  for (const proc of processes) {
    byPid.set(proc.pid, proc);
    const list = children.get(proc.ppid) ?? [];
    list.push(proc);
    children.set(proc.ppid, list);
  }
  const seen = new Set<string>();
  const tree: ProcessTimes[] = [];
  const queue = roots.map((pid) => byPid.get(pid)).filter((proc): proc is ProcessTimes => proc !== undefined);
  // Bounded: each process is visited once (the set check), and /proc holds finitely many.
  for (let index = 0; index < queue.length; index += 1) {
    const proc = queue[index] as ProcessTimes;
    const key = `${proc.pid}@${proc.startTicks}`;
    if (seen.has(key) || proc.pid === process.pid) continue;
    seen.add(key);
    tree.push(proc);
    for (const child of children.get(proc.pid) ?? []) queue.push(child);
  }
  return tree;
}

/** Total times of the roots and all their live descendants, keyed by pid+start. */
export function sampleTree(roots: readonly number[]): Map<string, number> {
  return new Map(processTree(roots).map((proc) => [`${proc.pid}@${proc.startTicks}`, proc.cpuS]));
}

/**
 * CPU seconds the set used between two samples. A process seen before but gone after was most
 * likely reaped by a parent in the set, whose cutime now holds its whole life: its time before
 * the first sample is taken back out so it is not counted twice.
 */
export function cpuBetween(before: ReadonlyMap<string, number>, after: ReadonlyMap<string, number>): number {
  let total = 0;
  for (const [key, cpuS] of after) total += cpuS - (before.get(key) ?? 0);
  for (const [key, cpuS] of before) if (!after.has(key)) total -= cpuS;
  return Math.max(0, total);
}

/** Samples a server set (undefined when no pids were given: the figure is then omitted). */
export class ServerCpuMeter {
  private roots: number[] = [];

  constructor(private readonly set: ServerSet) {}

  get enabled(): boolean {
    return this.set.pids.length > 0 || this.set.pgrep !== undefined;
  }

  /** Re-resolves the pgrep pattern (servers may have restarted) and samples. */
  sample(): Map<string, number> | undefined {
    if (!this.enabled) return undefined;
    this.roots = resolveRoots(this.set);
    return sampleTree(this.roots);
  }

  get rootCount(): number {
    return this.roots.length;
  }

  /**
   * Stops the whole set (SIGSTOP) while another endpoint is measured, so its deferred work
   * (updaters, replicators, writeback it starts) neither steals that endpoint's CPU nor escapes its
   * own slices: it runs when the set is resumed, inside the set's own measurement.
   */
  pause(): PausedServers {
    if (!this.enabled) return new PausedServers([]);
    const stopped: number[] = [];
    for (const proc of processTree(resolveRoots(this.set))) {
      try {
        process.kill(proc.pid, 'SIGSTOP');
        stopped.push(proc.pid);
      } catch {
        // Exited meanwhile: nothing to stop.
      }
    }
    return new PausedServers(stopped);
  }
}

/** Processes stopped by `ServerCpuMeter.pause`; `resume` is idempotent. */
export class PausedServers {
  constructor(private pids: readonly number[]) {}

  resume(): void {
    for (const pid of this.pids) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // Gone: nothing to resume.
      }
    }
    this.pids = [];
  }
}
