/**
 * `tallenne recover --spool-dir DIR` end to end: spools a dead node left on a shared spool
 * volume are finalised by two recover runs started at the same moment (real processes, the
 * real encoder, one LMDB register). Each spool is stored exactly once: one recording and
 * one entry per spool, none twice; a spool of a call never answered is left to its node.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ulid } from 'ulid';
import { BIN, makeConfig, randomRtpRange } from '../support/daemon.js';
import { tempDir, trackChild } from '../support/cleanup.js';
import { storedEntries } from '../support/index-reader.js';
import { writeSpoolFixture } from '../support/spool-fixture.js';

function recover(configFile: string, spoolDir: string): Promise<{ code: number | null; out: string; err: string }> {
  const p = trackChild(spawn(process.execPath, [BIN, 'recover', '--spool-dir', spoolDir, '--json', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  let err = '';
  p.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  p.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  return new Promise((resolve) => p.on('close', (code) => resolve({ code, out, err })));
}

describe('tallenne recover', () => {
  it('two recover runs racing on one shared spool folder store every spool exactly once', async () => {
    const dir = tempDir('recover');
    mkdirSync(join(dir, 'data'), { recursive: true });
    const configFile = join(dir, 'tallenne.toml');
    writeFileSync(configFile, makeConfig(dir, randomRtpRange(), '[cluster]\nnode_id = "node-b"\n[encoder]\nworkers = 1\n'));
    const shared = join(dir, 'shared-spool');
    mkdirSync(shared);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const id = ulid();
      ids.push(id);
      // Cut off mid-call (no END record): the node died.
      await writeSpoolFixture({ path: join(shared, `${id}.spool`), id, answeredAt: Date.now() - 60_000 + i * 1000, durationMs: 1500, end: false, legs: [{ index: 0, channel: 0, codec: 'PCMU', toneHz: 440 + 100 * i }] });
    }
    const ringing = ulid();
    writeFileSync(join(shared, `${ringing}.spool`), Buffer.alloc(0));

    const runs = await Promise.all([recover(configFile, shared), recover(configFile, shared)]);
    const reports = runs.map((r) => {
      expect(r.code, r.err).toBe(0);
      return JSON.parse(r.out) as { stored: string[]; failed: unknown[]; unanswered: number };
    });
    const stored = reports.flatMap((r) => r.stored);
    expect(stored.sort()).toEqual([...ids].sort());
    expect(reports.every((r) => r.failed.length === 0)).toBe(true);
    expect(readdirSync(shared)).toEqual([`${ringing}.spool`]);

    const entries = await storedEntries(join(dir, 'data'));
    expect(entries.map((e) => e.id).sort()).toEqual([...ids].sort());
    for (const e of entries) {
      expect(e.status).toBe('truncated');
      expect(existsSync(join(dir, 'data', e.file)) && statSync(join(dir, 'data', e.file)).size > 0).toBe(true);
    }
  }, 120_000);
});
