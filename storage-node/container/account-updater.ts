/**
 * Reports a container's stats to its account servers, as Swift's container server does after a
 * container PUT/DELETE and its container-updater does after object changes: a PUT of
 * `/<device>/<partition>/<account>/<container>` with X-Put-Timestamp, X-Delete-Timestamp,
 * X-Object-Count and X-Bytes-Used, to each account server the proxy named (X-Account-Host,
 * X-Account-Device, X-Account-Partition, remembered in the container info).
 *
 * Reports of one container are serialised (never two in flight, so the newest stats arrive
 * last) and object-row changes are debounced (one report per debounceMs per container), and a
 * container's scheduled reports are at least minReportIntervalMs apart: under a steady stream of
 * object writes each report costs one PUT per account replica, each an account row write, which
 * was as much work as the object writes themselves (Swift's container-updater reports a changed
 * container once per pass, every few minutes). A report that fails leaves a pending record in
 * the device's database (keys.ts 'u' space); retryPending() replays them, reading the
 * container's stats at that time. Every call has a connect and a
 * response timeout; the scheduled set and each retry pass are bounded.
 */
import { request } from 'node:http';
import type { Logger } from '../../common/log.js';
import { decodeKey, lockName, pendingKey, SPACE_PENDING, spaceRange } from '../db/keys.js';
import { KeyedMutex } from '../db/keyed-mutex.js';
import type { DatabaseRegistry, DeviceDatabase } from '../db/registry.js';
import { ContainerBroker, type AccountUpdateTarget, type ContainerInfo } from './broker.js';

export interface AccountUpdaterOptions {
  logger: Logger;
  databases: DatabaseRegistry;
  connTimeoutMs?: number;
  nodeTimeoutMs?: number;
  /** Delay that gathers a burst of object-row changes into one report. */
  debounceMs?: number;
  /** Least time between two scheduled reports of one container (default: ten debounce delays). */
  minReportIntervalMs?: number;
  /** At most this many containers wait for a debounced report; beyond, they go to pending records. */
  scheduledMax?: number;
}

export type AccountReportOutcome = 'ok' | 'account-missing' | 'failed' | 'no-target';

interface ContainerRef {
  devicePath: string;
  partition: number;
  account: string;
  container: string;
}

export interface PutResult {
  status: number;
}

/** A PUT with no body, with a connect timeout and a response timeout. */
export async function putWithTimeouts(
  host: string,
  port: number,
  path: string,
  headers: Record<string, string>,
  connTimeoutMs: number,
  nodeTimeoutMs: number,
): Promise<PutResult> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, method: 'PUT', headers: { ...headers, 'Content-Length': '0' } });
    let timer = setTimeout(() => req.destroy(new Error(`connect timeout after ${connTimeoutMs} ms`)), connTimeoutMs);
    const connected = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => req.destroy(new Error(`response timeout after ${nodeTimeoutMs} ms`)), nodeTimeoutMs);
    };
    req.on('socket', (socket) => {
      // A kept-alive socket (the global agent keeps them) is connected already and never says
      // 'connect': without this its whole answer had to come within the connect timeout.
      if (socket.connecting) socket.once('connect', connected);
      else connected();
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0 });
      });
      res.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.end();
  });
}

function splitHost(host: string): { ip: string; port: number } | undefined {
  const colon = host.lastIndexOf(':');
  if (colon <= 0) return undefined;
  const port = Number(host.slice(colon + 1));
  if (!Number.isInteger(port) || port <= 0 || port > 65535) return undefined;
  return { ip: host.slice(0, colon).replace(/^\[|\]$/g, ''), port };
}

function encodePath(parts: string[]): string {
  return `/${parts.map((part) => encodeURIComponent(part)).join('/')}`;
}

export class AccountUpdater {
  private readonly connTimeoutMs: number;
  private readonly nodeTimeoutMs: number;
  private readonly debounceMs: number;
  private readonly minReportIntervalMs: number;
  private readonly scheduledMax: number;
  private readonly reporting = new KeyedMutex();
  private readonly scheduled = new Map<string, { ref: ContainerRef; timer: NodeJS.Timeout }>();
  /** When each recently reported container's last scheduled report started (ms, monotonic). */
  private readonly lastReportMs = new Map<string, number>();
  /** Containers this process left a pending record for: only their reports need to clear one. */
  private readonly pendingWritten = new Set<string>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private closed = false;

  constructor(private readonly options: AccountUpdaterOptions) {
    this.connTimeoutMs = options.connTimeoutMs ?? 500;
    this.nodeTimeoutMs = options.nodeTimeoutMs ?? 3000;
    this.debounceMs = options.debounceMs ?? 100;
    this.minReportIntervalMs = options.minReportIntervalMs ?? 10 * this.debounceMs;
    this.scheduledMax = options.scheduledMax ?? 10_000;
  }

  private static keyOf(ref: ContainerRef): string {
    return `${ref.devicePath}\u0000${ref.partition}\u0000${ref.account}\u0000${ref.container}`;
  }

  /**
   * Reports the container's current stats now (after a container PUT or DELETE). 'account-missing'
   * when an account server answered 404 (Swift's container server then answers 202).
   */
  async reportNow(ref: ContainerRef, txId: string | undefined): Promise<AccountReportOutcome> {
    const key = AccountUpdater.keyOf(ref);
    return this.reporting.run(key, async () => this.report(ref, txId));
  }

  /** Reports the container's stats soon (after object-row changes), once per burst. */
  schedule(ref: ContainerRef): void {
    const key = AccountUpdater.keyOf(ref);
    if (this.closed || this.scheduled.has(key)) return;
    if (this.scheduled.size >= this.scheduledMax) {
      this.track(this.markPending(ref));
      return;
    }
    const nowMs = performance.now();
    const sinceLastMs = nowMs - (this.lastReportMs.get(key) ?? Number.NEGATIVE_INFINITY);
    const delayMs = Math.max(this.debounceMs, this.minReportIntervalMs - sinceLastMs);
    const timer = setTimeout(() => {
      this.scheduled.delete(key);
      this.rememberReport(key);
      this.track(this.reporting.run(key, async () => this.report(ref, undefined)));
    }, delayMs);
    this.scheduled.set(key, { ref, timer });
  }

  /** Notes a report's start; forgets containers that have not reported for a full interval. */
  private rememberReport(key: string): void {
    const nowMs = performance.now();
    if (this.lastReportMs.size >= this.scheduledMax) {
      // Bounded: one pass over at most scheduledMax entries, then the map is below the bound.
      for (const [other, atMs] of this.lastReportMs) {
        if (nowMs - atMs >= this.minReportIntervalMs) this.lastReportMs.delete(other);
      }
      if (this.lastReportMs.size >= this.scheduledMax) this.lastReportMs.clear();
    }
    this.lastReportMs.set(key, nowMs);
  }

  private track(work: Promise<unknown>): void {
    const settled = work.then(
      () => undefined,
      (error: unknown) => this.options.logger.error({ err: error }, 'account update failed'),
    );
    this.inFlight.add(settled);
    void settled.finally(() => this.inFlight.delete(settled));
  }

  private async report(
    ref: ContainerRef,
    txId: string | undefined,
    mayHavePending = false,
  ): Promise<AccountReportOutcome> {
    const database = await this.options.databases.get(ref.devicePath);
    const broker = new ContainerBroker(database, ref.partition, ref.account, ref.container);
    const info = await broker.getInfo();
    const target = info?.account_update;
    if (info === undefined || target === undefined || target.hosts.length === 0) {
      await this.clearPending(database, ref, mayHavePending);
      return 'no-target';
    }
    const outcome = await this.send(info, target, txId);
    if (outcome === 'failed') await this.writePending(database, ref);
    else await this.clearPending(database, ref, mayHavePending);
    return outcome;
  }

  private async send(
    info: ContainerInfo,
    target: AccountUpdateTarget,
    txId: string | undefined,
  ): Promise<AccountReportOutcome> {
    const headers: Record<string, string> = {
      'X-Put-Timestamp': info.put_timestamp,
      'X-Delete-Timestamp': info.delete_timestamp,
      'X-Object-Count': String(info.object_count),
      'X-Bytes-Used': String(info.bytes_used),
      'X-Trans-Id': txId ?? '-',
      'X-Backend-Storage-Policy-Index': String(info.storage_policy_index),
      'X-Backend-Server-Type': 'account',
      'User-Agent': `container-server ${process.pid}`,
    };
    let missing = false;
    let failed = false;
    const sends = target.hosts.map(async (host, index) => {
      const device = target.devices[index];
      const address = splitHost(host);
      if (address === undefined || device === undefined) {
        this.options.logger.error({ host, device }, 'bad account update target');
        failed = true;
        return;
      }
      const path = encodePath([device, target.partition, info.account, info.container]);
      try {
        const { status } = await putWithTimeouts(
          address.ip,
          address.port,
          path,
          headers,
          this.connTimeoutMs,
          this.nodeTimeoutMs,
        );
        if (status === 404) missing = true;
        else if (status < 200 || status >= 300) {
          failed = true;
          this.options.logger.error({ host, device, path, status, txId }, 'account update refused');
        }
      } catch (error) {
        failed = true;
        this.options.logger.error({ host, device, path, txId, err: error }, 'account update unreachable; will retry');
      }
    });
    await Promise.all(sends);
    if (failed) return 'failed';
    return missing ? 'account-missing' : 'ok';
  }

  private async markPending(ref: ContainerRef): Promise<void> {
    const database = await this.options.databases.get(ref.devicePath);
    await this.writePending(database, ref);
  }

  private async writePending(database: DeviceDatabase, ref: ContainerRef): Promise<void> {
    const key = pendingKey(ref.partition, ref.account, ref.container);
    this.pendingWritten.add(AccountUpdater.keyOf(ref));
    await database.locks.run(lockName(key), async () => {
      await database.db.put(key, JSON.stringify({ since: Date.now() }));
    });
  }

  /**
   * Deletes the container's pending record, when there may be one: one this process wrote, or
   * (`mayHavePending`, the retry pass) one found in the database. A record an earlier process
   * left is cleared by the next retry pass, which reports once more.
   */
  private async clearPending(database: DeviceDatabase, ref: ContainerRef, mayHavePending: boolean): Promise<void> {
    if (!this.pendingWritten.delete(AccountUpdater.keyOf(ref)) && !mayHavePending) return;
    const key = pendingKey(ref.partition, ref.account, ref.container);
    await database.locks.run(lockName(key), async () => {
      await database.db.del(key);
    });
  }

  /** Replays up to `maxReports` pending reports of one device; returns how many were sent and failed. */
  async retryPending(devicePath: string, maxReports = 1000): Promise<{ sent: number; failed: number }> {
    const database = await this.options.databases.get(devicePath);
    const keys = await database.db.keys({ ...spaceRange(SPACE_PENDING), limit: maxReports }).all();
    let sent = 0;
    let failed = 0;
    for (const key of keys) {
      const decoded = decodeKey(key);
      const ref: ContainerRef = {
        devicePath,
        partition: decoded.partition,
        account: decoded.account,
        container: decoded.container ?? '',
      };
      const outcome = await this.reporting.run(AccountUpdater.keyOf(ref), async () =>
        this.report(ref, undefined, true),
      );
      if (outcome === 'failed') failed += 1;
      else sent += 1;
    }
    return { sent, failed };
  }

  /** Stops scheduling; reports still waiting become pending records; waits for reports in flight. */
  async close(): Promise<void> {
    this.closed = true;
    const waiting = [...this.scheduled.values()];
    this.scheduled.clear();
    for (const { timer } of waiting) clearTimeout(timer);
    await Promise.allSettled(waiting.map(async ({ ref }) => this.markPending(ref)));
    await Promise.allSettled([...this.inFlight]);
  }
}
