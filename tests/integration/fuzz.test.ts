/**
 * The fuzzer (tools/fuzz/, `npm run fuzz`) in the suite: 20,000 inputs over every target,
 * with a share of the SIP ones sent to a running daemon over UDP and TCP, must pass its rule
 * (no crash, no hang, the daemon alive, answering, holding no more ports, descriptors or
 * memory than after its warm-up). Every input the fuzzer once crashed on
 * (tests/fixtures/fuzz/) is replayed and must now be taken or refused cleanly.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkInput, inputFromJson, runFuzz } from '../../tools/fuzz/run.js';
import { TARGET_NAMES } from '../../tools/fuzz/targets.js';
import { tempDir } from '../support/cleanup.js';

const FIXTURES = new URL('../fixtures/fuzz/', import.meta.url);

describe('fuzz', () => {
  it('replays every input the fuzzer crashed on: none crashes now', async () => {
    const dir = tempDir('fuzz-replay');
    const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.json'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const saved = JSON.parse(readFileSync(new URL(f, FIXTURES), 'utf8')) as { input: Record<string, unknown> };
      const r = await checkInput(inputFromJson(saved.input), dir);
      expect(r.outcome, `${f}: ${String(r.error)}`).not.toBe('crash');
    }
  });

  it('20,000 inputs: no crash, no hang, and the daemon fed a share of them stays up and flat', { timeout: 300_000 }, async () => {
    const dir = tempDir('fuzz');
    const s = await runFuzz({ inputs: 20_000, seed: 20_000, daemonShare: 0.02, failuresDir: join(dir, 'failures') });
    expect(s.failures.map((f) => `${f.kind} ${f.target} input ${f.index}: ${f.error}`)).toEqual([]);
    expect(s.crashes).toBe(0);
    expect(s.hangs).toBe(0);
    for (const t of TARGET_NAMES) {
      const stats = s.perTarget[t]!;
      expect(stats.inputs).toBeGreaterThan(2000);
      // Mutants that still parse and mutants that are refused: both paths are exercised.
      if (t === 'sip' || t === 'sdp' || t === 'multipart' || t === 'metadata' || t === 'spool') {
        expect(stats.accepted, t).toBeGreaterThan(100);
        expect(stats.rejected, t).toBeGreaterThan(100);
      }
    }
    const d = s.daemon!;
    expect(d.sentUdp + d.sentTcp).toBeGreaterThan(50);
    expect(d.alive).toBe(true);
    expect(d.optionsStatus).toBe(200);
    expect(d.atEnd.rtpPortsInUse).toBe(0);
    expect(d.atEnd.activeCalls).toBe(0);
    expect(d.atEnd.fds).toBeLessThanOrEqual(d.bounds.fds);
    expect(d.atEnd.liveKiB).toBeLessThanOrEqual(d.bounds.liveKiB);
    expect(d.atEnd.rssKiB).toBeLessThanOrEqual(d.bounds.rssKiB);
    expect(s.pass).toBe(true);
  });
});
