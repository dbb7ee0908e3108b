/**
 * The capacity bench runs end to end: 3 SIPREC calls of 3 s against the real daemon, the
 * bare-libopus floor, and a one-call ffmpeg baseline; then tone calls against a daemon with
 * the stage clock and one without. Asserts on counts and on the report's
 * shape only; timings belong to bench output, never to a test.
 */
import { describe, expect, it } from 'vitest';
import { execFile, execFileSync, type ExecFileOptions } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO } from '../support/daemon.js';
import { tempDir, trackProcessGroup } from '../support/cleanup.js';

const run = promisify(execFile);

describe('bench smoke', () => {
  it('places 3 calls, records 3, and reports floor and baseline figures', async () => {
    const dir = tempDir('bench-smoke');
    try {
      const out = join(dir, 'result.json');
      // The bench's own temp folders go inside ours, and its process group (the bench and the
      // daemons it starts) is killed at the end of the file if it is still there. (execFile
      // hands `detached` on to spawn; its option type leaves it out.)
      const bench = run(process.execPath, [
        join(REPO, 'bench', 'run.mjs'), '--calls', '3', '--seconds', '3', '--audio', 'conversational', '--baseline-calls', '1', '--out', out,
      ], { cwd: REPO, timeout: 270_000, detached: true, env: { ...process.env, TMPDIR: dir } } as ExecFileOptions);
      trackProcessGroup(bench.child);
      const { stdout } = await bench;
      expect(stdout).toMatch(/tallenne bench/);
      expect(existsSync(out.replace(/\.json$/, '.md'))).toBe(true);
      const res = JSON.parse(readFileSync(out, 'utf8'));
      expect(res.phases).toHaveLength(1);
      const p = res.phases[0];
      expect(p.audio).toBe('conversational');
      expect(p.offered).toBe(3);
      expect(p.answered).toBe(3);
      expect(p.recorded).toBe(3);
      expect(p.truncated).toBe(0);
      // 3 calls × 2 legs × 3 s at 50 packets/s, give or take the packet at either edge.
      expect(p.packetsSent).toBeGreaterThanOrEqual(6 * 148);
      expect(p.packetsSent).toBeLessThanOrEqual(6 * 152);
      expect(p.packetsReceived).toBeLessThanOrEqual(p.packetsSent);
      expect(p.packetsReceived).toBeGreaterThanOrEqual(p.packetsSent - 6);
      // Batched receive (the default) took them in reads of several packets each.
      expect(p.rtpBatches).toBeGreaterThan(0);
      expect(p.packetsPerBatch).toBeCloseTo(p.packetsReceived / p.rtpBatches, 1);
      expect(p.packetsPerBatch).toBeGreaterThan(1);
      expect(p.byeToIndexMs.n).toBe(3);
      expect(p.recordedCallSeconds).toBeGreaterThan(8);
      expect(p.daemonCpuSeconds).toBeGreaterThan(0);
      expect(p.peakRssMb).toBeGreaterThan(0);
      expect(res.floor.conversational.cpuUsPerCallSecond).toBeGreaterThan(0);
      expect(res.baseline.conversational.processes).toBe(2);
      expect(res.baseline.conversational.cpuUsPerCallSecond).toBeGreaterThan(0);
      expect(res.baseline.conversational.rssPerCallMb).toBeGreaterThan(0);
      expect(p.vsFloor).toBeGreaterThan(0);
      expect(p.vsFfmpegCpu).toBeGreaterThan(0);
      expect(res.daemonErrors).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);

  it('replays a capped schedule from one generator thread and reports lateness, CPU per packet, the cap and peak RSS', async () => {
    const dir = tempDir('bench-smoke-replay');
    try {
      const out = join(dir, 'result.json');
      // 2 calls = 4 legs = 200 packets/s nominal; a cap of 100 leaves each leg about half.
      const bench = run(process.execPath, [
        join(REPO, 'bench', 'run.mjs'), '--calls', '2', '--seconds', '2', '--audio', 'continuous', '--gen-mode', 'replay', '--gen-pps', '100',
        '--baseline-calls', '0', '--no-floor', '--out', out,
      ], { cwd: REPO, timeout: 150_000, detached: true, env: { ...process.env, TMPDIR: dir } } as ExecFileOptions);
      trackProcessGroup(bench.child);
      const { stdout } = await bench;
      expect(stdout).toMatch(/generator and daemon/);
      const res = JSON.parse(readFileSync(out, 'utf8'));
      expect(res.daemonErrors).toEqual([]);
      const p = res.phases[0];
      expect(p.recorded).toBe(2);
      const g = p.generator;
      expect(g).toMatchObject({ mode: 'replay', threads: 1, sockets: 'shared', ppsCap: 100, capLimited: true });
      // The cap held back packets, and what it let through is what the daemon was sent.
      expect(g.capSkipped).toBeGreaterThan(0);
      expect(g.legPps).toBeGreaterThan(0);
      expect(g.legPps).toBeLessThan(50);
      expect(p.packetsSent).toBeLessThan(4 * 50 * 2);
      expect(p.packetsReceived).toBeLessThanOrEqual(p.packetsSent);
      expect(p.limit).toMatch(/generator cap/);
      expect(g.lateMs.p50).toBeLessThanOrEqual(g.lateMs.p99);
      expect(g.lateMs.p99).toBeLessThanOrEqual(g.lateMs.max);
      expect(Object.values(g.lateHistMs).reduce((a: number, b) => a + (b as number), 0)).toBe(p.packetsSent);
      expect(g.threadCpuSeconds).toBeGreaterThanOrEqual(0);
      expect(g.cpuUsPerPacket).toBeGreaterThanOrEqual(0);
      expect(p.daemonCpuUsPerPacket).toBeGreaterThan(0);
      expect(p.rssHighWaterMb).toBeGreaterThanOrEqual(p.peakRssMb);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);

  // perf needs the linux-perf package and the right to profile (root, or perf_event_paranoid ≤ 1).
  const perfWorks = (() => {
    try {
      execFileSync('perf', ['stat', '-e', 'task-clock', '--', 'true'], { stdio: 'ignore', timeout: 20_000 });
      return true;
    } catch {
      return false;
    }
  })();

  it.runIf(perfWorks)('profiles the daemon with perf through the steady window and splits its CPU by thread and object', async () => {
    const dir = tempDir('bench-smoke-perf');
    try {
      const out = join(dir, 'result.json');
      const bench = run(process.execPath, [
        join(REPO, 'bench', 'run.mjs'), '--calls', '2', '--seconds', '4', '--audio', 'tone', '--gen-mode', 'replay', '--perf',
        '--baseline-calls', '0', '--no-floor', '--out', out,
      ], { cwd: REPO, timeout: 150_000, detached: true, env: { ...process.env, TMPDIR: dir } } as ExecFileOptions);
      trackProcessGroup(bench.child);
      const { stdout } = await bench;
      expect(stdout).toMatch(/where the daemon's CPU went in the steady window by perf/);
      const res = JSON.parse(readFileSync(out, 'utf8'));
      const perf = res.phases[0].perf;
      expect(perf.error).toBeUndefined();
      expect(perf.samples).toBeGreaterThan(0);
      // Every sample lands in one cell: the threads' shares add up to 100 %.
      const threads = Object.values(perf.threads) as number[];
      expect(threads.reduce((a, b) => a + b, 0)).toBeCloseTo(100, 0);
      expect(perf.threads.main).toBeGreaterThan(0);
      expect(Object.keys(perf.objects)).toEqual(['libopus', 'js', 'node', 'kernel', 'libc', 'other']);
      // libopus is recognised in the binding the daemon runs, and its threads as encoder threads.
      expect(perf.objects.libopus).toBeGreaterThan(0);
      expect(perf.encoderThreads).toBeGreaterThanOrEqual(1);
      expect(perf.threads.encoder).toBeGreaterThan(0);
      expect(perf.usPerCallSecond.main.kernel).toBeGreaterThanOrEqual(0);
      // The profile was written in the run's temp folder and removed.
      expect(readdirSync(dir).filter((f) => f.startsWith('tallenne-bench-perf-'))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it('sends from the C generator with sendmmsg: every packet it counts reaches the daemon, with its lateness and CPU', async () => {
    const dir = tempDir('bench-smoke-sendmmsg');
    try {
      const out = join(dir, 'result.json');
      const bench = run(process.execPath, [
        join(REPO, 'bench', 'run.mjs'), '--calls', '2', '--seconds', '2', '--audio', 'continuous', '--gen-mode', 'sendmmsg',
        '--baseline-calls', '0', '--no-floor', '--out', out,
      ], { cwd: REPO, timeout: 150_000, detached: true, env: { ...process.env, TMPDIR: dir } } as ExecFileOptions);
      trackProcessGroup(bench.child);
      await bench;
      const res = JSON.parse(readFileSync(out, 'utf8'));
      expect(res.daemonErrors).toEqual([]);
      const p = res.phases[0];
      expect(p.recorded).toBe(2);
      expect(p.generator).toMatchObject({ mode: 'sendmmsg', threads: 1, sockets: 'shared', ppsCap: null, capSkipped: 0 });
      // 4 legs of about 2 s at 50 packets a second, all sent over loopback and all received.
      expect(p.packetsSent).toBeGreaterThan(4 * 50 * 1.5);
      expect(p.packetsReceived).toBe(p.packetsSent);
      expect(Object.values(p.generator.lateHistMs).reduce((a: number, b) => a + (b as number), 0)).toBe(p.packetsSent);
      expect(p.generator.threadCpuSeconds).toBeGreaterThanOrEqual(0);
      // The C sender compiled into the run's temp folder and removed it when it closed.
      expect(readdirSync(dir).filter((f) => f.startsWith('tallenne-bench-gen-'))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it('runs tone calls with and without the stage clock and itemises the daemon\'s CPU by stage', async () => {
    const dir = tempDir('bench-smoke-stages');
    try {
      const out = join(dir, 'result.json');
      const bench = run(process.execPath, [
        join(REPO, 'bench', 'run.mjs'), '--calls', '2', '--seconds', '3', '--audio', 'tone', '--stages', '--baseline-calls', '0', '--out', out,
      ], { cwd: REPO, timeout: 280_000, detached: true, env: { ...process.env, TMPDIR: dir } } as ExecFileOptions);
      trackProcessGroup(bench.child);
      const { stdout } = await bench;
      expect(stdout).toMatch(/CPU per recorded call-second by stage/);
      const res = JSON.parse(readFileSync(out, 'utf8'));
      expect(res.daemonErrors).toEqual([]);
      expect(res.runs).toHaveLength(1);
      const r = res.runs[0];
      // The floor before and after the engine, and what else the box ran meanwhile.
      expect(r.floor.tone.before).toBeGreaterThan(0);
      expect(r.floor.tone.after).toBeGreaterThan(0);
      expect(r.floor.tone.monoPairUsPerCallSecond).toBeGreaterThan(0);
      expect(r.system.loadStart).toHaveLength(3);
      expect(r.system.othersCpuSeconds).toBeGreaterThanOrEqual(0);
      // Both daemons recorded both calls; only one of them had the clock on.
      for (const v of ['stages', 'plain']) {
        const p = r.engine[v].phases[0];
        expect(p.audio).toBe('tone');
        expect(p.recorded).toBe(2);
        expect(p.stageClock).toBe(v === 'stages' ? 16 : 0);
      }
      expect(r.engine.plain.phases[0].stages).toBeNull();
      const st = r.engine.stages.phases[0].stages;
      const rows = ['receive', 'parse', 'spoolAppend', 'otherThreads', 'spoolReadScan', 'decode', 'timeline', 'mix', 'silence', 'libopus', 'ogg', 'mainRest', 'total'];
      expect(Object.keys(st.usPerCallSecond).sort()).toEqual([...rows].sort());
      for (const k of rows) {
        expect(Number.isFinite(st.usPerCallSecond[k])).toBe(true);
        expect(st.usPerCallSecond[k]).toBeGreaterThanOrEqual(0);
      }
      // A tone is never quiet: every frame of both legs went through libopus and was decoded.
      expect(st.usPerCallSecond.libopus).toBeGreaterThan(0);
      expect(st.usPerCallSecond.decode).toBeGreaterThan(0);
      expect(st.stageCalls.libopus).toBeGreaterThan(2 * 2 * 100);
      expect(st.stageCalls.captureRtp).toBeGreaterThanOrEqual(r.engine.stages.phases[0].packetsReceived);
      expect(st.encoderThreadCpuSeconds).toBeGreaterThan(0);
      const s = res.summary.tone;
      expect(s.runs).toBe(1);
      expect(typeof s.stageClockOverheadPct.median).toBe('number');
      expect(s.stages.libopus.median).toBeGreaterThan(0);
      expect(res.indexPut.cpuUsPerPut).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
