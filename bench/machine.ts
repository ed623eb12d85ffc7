/**
 * A description of the machine a run happened on, for the report: CPU model and cores, memory,
 * kernel, and the filesystem/device behind the probe folder. Best effort: anything unreadable
 * is reported as `unknown` rather than failing the run.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { type MachineInfo } from './report.js';

function diskOf(folder: string): string {
  try {
    const output = execFileSync('df', ['-hT', folder], { encoding: 'utf8', timeout: 5000 }).trim().split('\n');
    const fields = (output[1] ?? '').split(/\s+/);
    const device = fields[0] ?? 'unknown';
    const base = device.replace(/^\/dev\//, '').replace(/p?\d+$/, '');
    let model = '';
    try {
      const rotational = readFileSync(`/sys/block/${base}/queue/rotational`, 'utf8').trim() === '1';
      model = `, ${rotational ? 'rotational' : 'non-rotational'}`;
    } catch {
      // not a plain block device (overlay, tmpfs, ...)
    }
    return `${folder} on ${device} (${fields[1] ?? '?'}, ${fields[2] ?? '?'}${model})`;
  } catch {
    return `${folder} (unknown)`;
  }
}

export function describeMachine(folder: string): MachineInfo {
  const list = cpus();
  return {
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryGiB: totalmem() / 1024 ** 3,
    kernel: release(),
    disk: diskOf(folder),
    node: process.version,
    loadAverage: loadavg(),
  };
}
