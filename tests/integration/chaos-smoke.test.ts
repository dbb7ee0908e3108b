/**
 * The bench's chaos mode runs end to end: 4 SIGKILLs of the real daemon (one per phase:
 * mid-call, finalisation, purge, master key rotation) under 3 call slots, a restart on the same data after each,
 * and the register's checks. Asserts on counts and on the result's shape, never on timings.
 */
import { describe, expect, it } from 'vitest';
import { execFile, type ExecFileOptions } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO } from '../support/daemon.js';
import { tempDir, trackProcessGroup } from '../support/cleanup.js';

const run = promisify(execFile);

describe('bench chaos smoke', () => {
  it('kills the daemon 4 times under load and finds every answered call recorded once', async () => {
    const dir = tempDir('chaos-smoke');
    try {
      const out = join(dir, 'chaos.json');
      // The bench's temp folders go inside ours; its process group (bench, daemons, CLI runs)
      // is killed at the end of the file if it is still there.
      const bench = run(process.execPath, [
        join(REPO, 'bench', 'run.mjs'), '--chaos', '4', '--calls', '3', '--seconds', '2', '--out', out,
      ], { cwd: REPO, timeout: 420_000, detached: true, env: { ...process.env, TMPDIR: dir } } as ExecFileOptions);
      trackProcessGroup(bench.child);
      const { stdout } = await bench;
      expect(stdout).toMatch(/chaos: 4 SIGKILLs/);
      expect(existsSync(out.replace(/\.json$/, '.md'))).toBe(true);
      const c = JSON.parse(readFileSync(out, 'utf8')).chaos;
      expect(c.kills).toBe(4);
      expect(c.violations).toEqual({ total: 0, byKind: {}, first: [] });
      // Four kills, one in each phase of the schedule, key rotation among them.
      expect(c.perKill.map((k: { phase: string }) => k.phase).sort()).toEqual(['finalisation', 'mid-call', 'purge', 'rotation']);
      expect(c.answeredCalls).toBeGreaterThan(0);
      // Every kill had calls up, so every restart found spools and finalised them all.
      expect(c.recovery.spoolsRecovered).toBeGreaterThanOrEqual(3);
      expect(c.recovery.failed).toBe(0);
      expect(c.recovery.truncated).toBeGreaterThan(0);
      // Every answered call has its entry; seeded back-dated recordings were given to the purge.
      expect(c.final.entries).toBeGreaterThanOrEqual(c.answeredCalls);
      expect(c.byPhase.purge.seeded).toBeGreaterThan(0);
      expect(c.final.pendingIntents).toBe(0);
      // No clear number in the result; the bench removed its data folder.
      expect(JSON.stringify(c)).not.toMatch(/\+35840\d{7}/);
      expect(readdirSync(dir).filter((n) => n.startsWith('tallenne-bench-'))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 480_000);
});
