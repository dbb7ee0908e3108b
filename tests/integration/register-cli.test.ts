import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { open } from 'lmdb';
import { parseConfigText } from '../../src/config/load.js';
import type { CliContext } from '../../src/cli/context.js';
import { run as recordings } from '../../src/cli/recordings.js';
import { run as retention } from '../../src/cli/retention.js';
import { run as audit } from '../../src/cli/audit.js';
import { openIndex } from '../../src/index/index.js';
import { NumberHasher, protectNumber } from '../../src/privacy/numbers.js';
import { withRetention } from '../../src/retention/policy.js';
import { FsAudioStore } from '../../src/storage/fs-store.js';
import { makeEntry, ulidAt } from '../unit/index/entry.js';
import { tempDir } from '../support/cleanup.js';
import { storeFile } from '../support/store.js';
import { recordingKey } from '../../src/storage/audio-store.js';

const NOW = Date.now();
const START = NOW - 3_600_000;

function cliContext(configText: string, dir: string) {
  const loaded = parseConfigText(configText, join(dir, 'tallenne.toml'));
  let out = '';
  let err = '';
  const ctx: CliContext = { loaded, out: (t) => (out += t), err: (t) => (err += t) };
  return { ctx, take: () => { const r = { out, err }; out = ''; err = ''; return r; } };
}

function ffprobe(file: string): { codec: string; channels: number; sampleRate: number; duration: number; format: string } {
  const j = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_streams', '-show_format', file], { encoding: 'utf8' }));
  const s = j.streams[0];
  return { codec: s.codec_name, channels: s.channels, sampleRate: Number(s.sample_rate), duration: Number(j.format.duration), format: j.format.format_name };
}

describe('register CLI', () => {
  const dir = tempDir('register-cli');
  const config = `
[storage]
dir = "${dir}/data"
[privacy]
hash_key_file = "${dir}/data/number-hash.key"
[[agents]]
id = "aino"
name = "Aino Agentti"
team = "helpdesk"
[retention]
audio = "1s"
metadata = "2h"
[[retention.policy]]
name = "statutory"
match = { service_number = "0295 50 2000" }
audio = "12 months"
metadata = "12 months"
erasure = "refused"
erasure_refused_reason = "statutory task (notice clause 16)"
`;
  const { ctx, take } = cliContext(config, dir);
  const ids: string[] = [];

  beforeAll(async () => {
    const c = ctx.loaded.config;
    const store = new FsAudioStore(c.storage.dir);
    const hasher = NumberHasher.open(c.privacy.hash_key_file);
    const ix = await openIndex(c.storage.dir);
    const rows = [
      { number: '040 123 4567', service: '+358295502000', agent: 'aino' },
      { number: '+358 40 123 4567', service: '+358100100', agent: 'aino' },
      { number: '050 765 4321', service: '+358100100', agent: 'eero' },
    ];
    for (let i = 0; i < rows.length; i++) {
      const id = ulidAt(START + i * 60_000, i);
      ids.push(id);
      const key = recordingKey(id, START);
      const tmp = join(dir, `source-${i}.opus`);
      execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `sine=frequency=${440 + i * 100}:duration=2:sample_rate=48000`, '-ac', '2', '-c:a', 'libopus', '-f', 'ogg', '-y', tmp]);
      const size = (await storeFile(store, key, tmp)).storedBytes;
      const p = protectNumber(rows[i]!.number, c.privacy, hasher);
      const agent = c.agents.find((a) => a.id === rows[i]!.agent);
      await ix.put(
        withRetention(
          makeEntry(id, START + i * 60_000, {
            file: key,
            fileBytes: size,
            durationMs: 2000,
            endedAt: new Date(START + i * 60_000 + 2000).toISOString(),
            customerNumber: p.masked,
            customerNumberHash: p.hash,
            serviceNumber: rows[i]!.service,
            agentId: rows[i]!.agent,
            ...(agent ? { agentName: agent.name, team: agent.team } : {}),
          }),
          c.retention,
        ),
      );
    }
    await ix.close();
  }, 60_000);

  it('lists recordings as one JSON array with masked numbers', async () => {
    expect(await recordings(['list', '--json', '--actor', 'maija'], ctx)).toBe(0);
    const list = JSON.parse(take().out);
    expect(list.map((r: { id: string }) => r.id)).toEqual([...ids].reverse());
    expect(list[2]).toMatchObject({
      id: ids[0],
      customerNumber: '+358401234***',
      serviceNumber: '+358295502000',
      agent: 'Aino Agentti',
      durationMs: 2000,
      status: 'complete',
      file: expect.stringMatching(/^recordings\/.*\.opus$/),
    });
    expect(list[0].agent).toBe('eero');
    expect(await recordings(['list', '--json', '--agent', 'Aino Agentti', '--service', '0100 100', '--actor', 'maija'], ctx)).toBe(0);
    expect(JSON.parse(take().out).map((r: { id: string }) => r.id)).toEqual([ids[1]]);
    expect(await recordings(['list', '--status', 'bogus'], ctx)).toBe(2);
    take();
  });

  it('shows one recording as a JSON object', async () => {
    expect(await recordings(['show', ids[2]!, '--json', '--actor', 'maija'], ctx)).toBe(0);
    expect(JSON.parse(take().out)).toMatchObject({ id: ids[2], customerNumber: '+358507654***', agent: 'eero', file: expect.any(String) });
    expect(await recordings(['show', 'nope', '--actor', 'maija'], ctx)).toBe(1);
    expect(take().err).toMatch(/no recording nope/);
  });

  it('finds a person\'s recordings from any spelling of the number, audited without the number', async () => {
    for (const form of ['0401234567', '+358 40 123 4567', 'tel:+358-40-1234567', '00358401234567']) {
      expect(await recordings(['find-by-number', form, '--json', '--actor', 'dpo'], ctx)).toBe(0);
      expect(JSON.parse(take().out).map((r: { id: string }) => r.id).sort()).toEqual([ids[0], ids[1]].sort());
    }
    expect(await recordings(['find-by-number', '1001', '--actor', 'dpo'], ctx)).toBe(2);
    take();
    expect(await audit(['list', '--json'], ctx)).toBe(0);
    const log = JSON.parse(take().out);
    const finds = log.filter((e: { action: string }) => e.action === 'find-by-number');
    expect(finds).toHaveLength(4);
    expect(finds[0]).toMatchObject({ actor: 'dpo', details: { matches: 2 } });
    // Hashes, timestamps and ids may hold "4567" by chance: leave them out.
    const readable = JSON.stringify(log, (key, value) => (['hash', 'prevHash', 'at', 'recordingId'].includes(key) ? undefined : value));
    expect(readable).not.toMatch(/40\s?123|4567/);
  });

  it('exports Opus, WAV and MP3 that ffprobe reads', async () => {
    const opus = join(dir, 'out.opus');
    expect(await recordings(['export', ids[0]!, '--out', opus, '--actor', 'maija'], ctx)).toBe(0);
    expect(ffprobe(opus)).toMatchObject({ codec: 'opus', channels: 2 });
    const wav = join(dir, 'out.wav');
    expect(await recordings(['export', ids[0]!, '--out', wav, '--format', 'wav', '--actor', 'maija'], ctx)).toBe(0);
    const w = ffprobe(wav);
    expect(w).toMatchObject({ codec: 'pcm_s16le', channels: 2, sampleRate: 8000 });
    expect(w.duration).toBeGreaterThan(1.9);
    expect(w.duration).toBeLessThan(2.1);
    expect(statSync(wav).mode & 0o777).toBe(0o600);
    const mp3 = join(dir, 'out.mp3');
    expect(await recordings(['export', ids[0]!, '--out', mp3, '--actor', 'maija'], ctx)).toBe(0);
    expect(ffprobe(mp3)).toMatchObject({ codec: 'mp3', format: 'mp3' });
    expect(await recordings(['export', ids[0]!, '--out', wav, '--format', 'wav', '--actor', 'maija'], ctx)).toBe(2);
    expect(take().err).toMatch(/already exists/);
    expect(ffprobe(wav).codec).toBe('pcm_s16le');
    take();
  }, 30_000);

  it('holds, releases, erases where allowed and refuses where the policy says so', async () => {
    expect(await recordings(['erase', ids[0]!, '--reason', 'subject request', '--actor', 'dpo'], ctx)).toBe(1);
    expect(take().err).toMatch(/statutory task \(notice clause 16\).*TALLENNE_ERASURE_REFUSED/);
    expect(await recordings(['hold', ids[1]!, '--actor', 'dpo'], ctx)).toBe(2);
    expect(await recordings(['hold', ids[1]!, '--reason', 'complaint', '--until', '2099-01-01', '--actor', 'dpo'], ctx)).toBe(0);
    expect(await recordings(['erase', ids[1]!, '--reason', 'subject request', '--actor', 'dpo'], ctx)).toBe(1);
    expect(await recordings(['release', ids[1]!, '--actor', 'dpo'], ctx)).toBe(0);
    expect(await recordings(['erase', ids[1]!, '--reason', 'subject request', '--actor', 'dpo'], ctx)).toBe(0);
    take();
    expect(await recordings(['show', ids[1]!, '--actor', 'dpo'], ctx)).toBe(1);
    take();
  });

  it('rectifies fields, storing a corrected number only masked and hashed', async () => {
    expect(await recordings(['rectify', ids[2]!, '--field', 'agentId=aino', '--field', 'customerNumber=050 111 2222', '--actor', 'dpo'], ctx)).toBe(0);
    take();
    expect(await recordings(['show', ids[2]!, '--json', '--actor', 'dpo'], ctx)).toBe(0);
    expect(JSON.parse(take().out)).toMatchObject({ agent: 'Aino Agentti', team: 'helpdesk', customerNumber: '+358501112***' });
    expect(await recordings(['find-by-number', '0501112222', '--json', '--actor', 'dpo'], ctx)).toBe(0);
    expect(JSON.parse(take().out).map((r: { id: string }) => r.id)).toEqual([ids[2]]);
    expect(await recordings(['rectify', ids[2]!, '--field', 'file=x', '--actor', 'dpo'], ctx)).toBe(2);
    take();
  });

  it('purges expired audio with retention run, dry run first', async () => {
    expect(await retention(['run', '--dry-run', '--json'], ctx)).toBe(0);
    const dry = JSON.parse(take().out);
    expect(dry).toMatchObject({ dryRun: true, metadata: [], audio: [ids[2]] });
    expect(await retention(['run', '--json', '--actor', 'ops'], ctx)).toBe(0);
    expect(JSON.parse(take().out)).toMatchObject({ audio: [ids[2]], metadata: [] });
    expect(await recordings(['show', ids[2]!, '--json', '--actor', 'dpo'], ctx)).toBe(0);
    expect(JSON.parse(take().out)).toMatchObject({ file: null, audioPurgedAt: expect.any(String) });
    expect(await retention(['sweep-orphans', '--json'], ctx)).toBe(0);
    expect(JSON.parse(take().out)).toMatchObject({ orphanFiles: [], missingFiles: [] });
  });

  it('never stores a clear number in LMDB', () => {
    const raw = readFileSync(join(dir, 'data', 'index', 'data.mdb'));
    expect(raw.includes(Buffer.from('+358401234***'))).toBe(true);
    for (const n of ['401234567', '507654321', '501112222']) expect(raw.includes(Buffer.from(n)), n).toBe(false);
  });

  it('verifies the audit log, then pinpoints a tampered entry', async () => {
    expect(await audit(['verify'], ctx)).toBe(0);
    expect(take().out).toMatch(/intact: \d+ entries/);
    expect(await audit(['list'], ctx)).toBe(0);
    expect(take().out).toMatch(/dpo {2}erase-refused/);
    const env = open({ path: join(dir, 'data', 'index') });
    const db = env.openDB('audit', {});
    const e = db.get(3) as { actor: string };
    await db.put(3, { ...e, actor: 'nobody' });
    await env.close();
    expect(await audit(['verify'], ctx)).toBe(1);
    expect(take().out).toMatch(/BROKEN at entry 3: entry 3 was altered/);
  });
});
