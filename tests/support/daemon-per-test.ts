/**
 * Daemons that live for one test: each one started through `daemonsPerTest()`'s function is
 * killed, and its folder removed, after the test. A test file calls it once at its top.
 * (Apart from daemon.ts, which the fuzzer uses outside vitest.)
 */
import { afterEach } from 'vitest';
import { execFileSync } from 'node:child_process';
import { BIN, removeDir, startDaemon, type DaemonHandle } from './daemon.js';

export function daemonsPerTest(): (opts?: Parameters<typeof startDaemon>[0]) => Promise<DaemonHandle> {
  const daemons: DaemonHandle[] = [];
  afterEach(async () => {
    for (const d of daemons.splice(0)) {
      await d.kill();
      removeDir(d.dir);
    }
  });
  return async (opts) => {
    const d = await startDaemon(opts);
    daemons.push(d);
    return d;
  };
}

/** `tallenne recordings show ID --json` against the daemon's config. */
export function showRecording(d: DaemonHandle, id: string): Record<string, unknown> {
  return JSON.parse(execFileSync(process.execPath, [BIN, 'recordings', 'show', id, '--json', '--config', d.configFile], { encoding: 'utf8' })) as Record<string, unknown>;
}
