import { describe, it, expect } from 'vitest';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openIndex } from '../../../src/index/index.js';
import { makeEntry } from './entry.js';
import { tempDir, trackChild } from '../../support/cleanup.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CHILD = fileURLToPath(new URL('./writer-child.ts', import.meta.url));

function writer(dir: string, prefix: string, n: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const p = trackChild(spawn(process.execPath, [join(ROOT, 'node_modules/vite-node/vite-node.mjs'), CHILD, dir, prefix, String(n)], { cwd: ROOT, stdio: 'ignore' }));
    p.on('error', reject);
    p.on('close', resolve);
  });
}

describe('one index, several processes', () => {
  it('keeps every write and an intact audit chain when a CLI process writes while the daemon does', async () => {
    const dir = tempDir('mp');
    const daemon = await openIndex(dir);
    let running = 2;
    const children = [writer(dir, 'cliA', 200), writer(dir, 'cliB', 200)].map((p) => p.finally(() => running--));
    // The "daemon" keeps writing for as long as the other processes do, so their writes interleave.
    let n = 0;
    while (running > 0 || n < 40) {
      await daemon.put(makeEntry(`daemon${n}`, 1_700_000_000_000 + n, { agentId: 'daemon' }), { audit: { actor: 'daemon', action: 'put' } });
      n++;
    }
    expect(await Promise.all(children)).toEqual([0, 0]);
    expect(await daemon.count()).toBe(400 + n);
    expect((await daemon.list({ agentId: 'daemon' }, { limit: 10_000 })).items).toHaveLength(n);
    for (const who of ['cliA', 'cliB']) expect((await daemon.list({ agentId: who }, { limit: 1000 })).items).toHaveLength(200);
    const actors = (await daemon.audit.list({ limit: 10_000 })).map((a) => a.actor);
    // Interleaved: the daemon's entries are not all before or all after the children's.
    const firstChild = actors.findIndex((a) => a !== 'daemon');
    expect(actors.lastIndexOf('daemon')).toBeGreaterThan(firstChild);
    expect(await daemon.audit.verify()).toEqual({ ok: true, entries: 400 + n });
    await daemon.close();
  }, 30_000);
});
