/**
 * Encryption at rest through the real daemon, the CLI and the API: a recorded call is stored
 * encrypted (no Ogg signature, no long runs), exports as plain Ogg/WAV and plays with Range
 * through the API, before and after `keys rotate`; the old master key is retired; a tampered
 * file is refused and counted; erasure leaves nothing that opens a copy of the file; and a
 * loose master key file stops the daemon at start-up.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon, removeDir, BIN, type DaemonHandle } from '../support/daemon.js';
import { recordCall } from '../support/recorded-call.js';
import { decodeWithFfmpeg, tonePower } from '../support/audio.js';
import { tempDir } from '../support/cleanup.js';

const execFileAsync = promisify(execFile);
const CUSTOMER = '+358401112223';
const AGENTS = `
[[agents]]
id = "aino"
name = "Aino Agentti"
extensions = ["1001"]
team = "helpdesk"
`;

let d: DaemonHandle;
let base: string;
let token = '';

async function cli(...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(process.execPath, [BIN, ...args, '--config', d.configFile, '--actor', 'test-admin'], { encoding: 'utf8' });
  return stdout;
}

async function audio(id: string, range?: string): Promise<{ status: number; body: Buffer; contentRange: string | null }> {
  const r = await fetch(`${base}/api/v1/recordings/${id}/audio`, { headers: { authorization: `Bearer ${token}`, ...(range ? { range } : {}) } });
  return { status: r.status, body: Buffer.from(await r.arrayBuffer()), contentRange: r.headers.get('content-range') };
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

function longestRun(b: Buffer, from: number): number {
  let longest = 0;
  let run = 0;
  for (let i = from; i < b.length; i++) longest = Math.max(longest, (run = i > from && b[i] === b[i - 1] ? run + 1 : 1));
  return longest;
}

describe('encryption at rest, end to end', () => {
  let id = '';
  let file = '';
  let fileBytes = 0;
  let exported: Buffer;

  beforeAll(async () => {
    d = await startDaemon({ extraToml: AGENTS, set: { encryption: 'enabled = true' } });
    base = `http://127.0.0.1:${d.httpPort}`;
    await cli('users', 'add', 'listener', '--role', 'quality');
    token = (await cli('tokens', 'create', 'listener')).trim();
    id = await recordCall(d, CUSTOMER, '1001', 3000);
    const show = JSON.parse(await cli('recordings', 'show', id, '--json')) as { file: string; fileBytes: number };
    file = join(d.dir, 'data', show.file);
    fileBytes = show.fileBytes;
  }, 120_000);
  afterAll(async () => {
    await d?.kill();
    if (d) removeDir(d.dir);
  });

  it('creates the master key file 0600 and stores the audio with no Ogg signature and no long run of one byte', () => {
    const keyFile = join(d.dir, 'data', 'master.key');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(d.logs.some((l) => l.msg.startsWith('created the master key file'))).toBe(true);
    const stored = readFileSync(file);
    expect(stored.subarray(0, 4).toString('latin1')).toBe('TLNE');
    expect(stored.includes(Buffer.from('OggS'))).toBe(false);
    expect(stored.includes(Buffer.from('OpusHead'))).toBe(false);
    expect(longestRun(stored, 12)).toBeLessThan(12);
    // Sizes given out are the plaintext's: the stored file is larger by the header and the chunks' nonces and tags.
    expect(stored.length).toBeGreaterThan(fileBytes);
    // The key material is nowhere in the daemon's output.
    const keys = readFileSync(keyFile, 'utf8').split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(' ')[1]!);
    for (const k of keys) expect(d.output()).not.toContain(k);
  });

  it('exports plain Ogg Opus and WAV that decode to the tones sent', { timeout: 120_000 }, async () => {
    const dir = tempDir('enc-export');
    const opus = join(dir, 'call.opus');
    await cli('recordings', 'export', id, '--out', opus);
    exported = readFileSync(opus);
    expect(exported.subarray(0, 4).toString('latin1')).toBe('OggS');
    expect(exported.length).toBe(fileBytes);
    const [left, right] = decodeWithFfmpeg(opus).channels;
    expect(tonePower(left!, 8000, 440, 4000, 16000)).toBeGreaterThan(0.5);
    expect(tonePower(right!, 8000, 1000, 4000, 16000)).toBeGreaterThan(0.5);
    const wav = join(dir, 'call.wav');
    await cli('recordings', 'export', id, '--out', wav);
    expect(readFileSync(wav).subarray(0, 4).toString('latin1')).toBe('RIFF');
  });

  it('plays through the API with Range (206) over the decrypted bytes', async () => {
    const whole = await audio(id);
    expect(whole.status).toBe(200);
    expect(whole.body.equals(exported)).toBe(true);
    const mid = Math.floor(fileBytes / 2);
    const part = await audio(id, `bytes=${mid}-${mid + 999}`);
    expect(part.status).toBe(206);
    expect(part.contentRange).toBe(`bytes ${mid}-${mid + 999}/${fileBytes}`);
    expect(part.body.equals(exported.subarray(mid, mid + 1000))).toBe(true);
  });

  // Eight CLI runs: generous on a loaded machine.
  it('rotates the master key without touching the audio, still plays and exports, and retires the old key', { timeout: 180_000 }, async () => {
    const before = readFileSync(file);
    const [old] = JSON.parse(await cli('keys', 'list', '--json')) as Array<{ keyId: string; recordings: number; current: boolean }>;
    expect(old).toMatchObject({ recordings: 1, current: true });
    await expect(cli('keys', 'retire', old!.keyId)).rejects.toMatchObject({ stderr: expect.stringContaining('TALLENNE_KEY_IN_USE') });

    const out = await cli('keys', 'rotate');
    expect(out).toContain('1 data key(s) re-wrapped');
    expect(out).toContain(`master key ${old!.keyId} is no longer used`);
    expect(readFileSync(file).equals(before)).toBe(true);
    const after = JSON.parse(await cli('keys', 'list', '--json')) as Array<{ keyId: string; recordings: number; current: boolean }>;
    expect(after.map((u) => [u.recordings, u.current])).toEqual([[0, false], [1, true]]);

    await cli('keys', 'retire', old!.keyId);
    expect(readFileSync(join(d.dir, 'data', 'master.key'), 'utf8')).not.toContain(old!.keyId);
    // The running daemon follows the key file: it plays with the new key only.
    const part = await audio(id, 'bytes=100-4099');
    expect(part.status).toBe(206);
    expect(part.body.equals(exported.subarray(100, 4100))).toBe(true);
    const opus = join(tempDir('enc-export'), 'after.opus');
    await cli('recordings', 'export', id, '--out', opus);
    expect(readFileSync(opus).equals(exported)).toBe(true);
    const actions = (await cli('audit', 'list')).split('\n').filter((l) => l.includes(' keys-'));
    expect(actions.map((l) => l.split(/\s+/)[5])).toEqual(['keys-rotate-start', 'keys-rotate-done', 'keys-retire']);
  });

  it('refuses a tampered file, counts it, and serves nothing from it', async () => {
    const good = readFileSync(file);
    const bad = Buffer.from(good);
    bad[12 + 40]! ^= 0x01; // a 3-second call is one chunk: its final one
    writeFileSync(file, bad);
    expect(await metric('tallenne_audio_decrypt_failures_total')).toBe(0);
    const r = await audio(id, 'bytes=0-99');
    expect(r.status).toBe(500);
    expect(JSON.parse(r.body.toString())).toEqual({ error: { code: 'API_EXPORT_FAILED', message: 'the audio could not be read' } });
    expect(await metric('tallenne_audio_decrypt_failures_total')).toBeGreaterThanOrEqual(1);
    writeFileSync(file, good);
    expect((await audio(id, 'bytes=0-99')).status).toBe(206);
  });

  it('erasure destroys the wrapped key: a copy of the file taken before cannot be opened with anything left', { timeout: 120_000 }, async () => {
    const copy = join(tempDir('enc-copy'), 'copy.bin');
    copyFileSync(file, copy);
    await cli('recordings', 'erase', id, '--reason', 'subject request');
    const usage = JSON.parse(await cli('keys', 'list', '--json')) as Array<{ recordings: number }>;
    expect(usage.every((u) => u.recordings === 0)).toBe(true);
    // Put the copy back where the audio was: no entry, no key, nothing is served or exported.
    copyFileSync(copy, file);
    expect((await audio(id)).status).toBe(404);
    await expect(cli('recordings', 'export', id, '--out', join(tempDir('enc-export'), 'gone.opus'))).rejects.toMatchObject({ stderr: expect.stringContaining('TALLENNE_NOT_FOUND') });
  });

  it('refuses to start on a master key file group or others may read', async () => {
    const keyFile = join(d.dir, 'data', 'master.key');
    chmodSync(keyFile, 0o640);
    try {
      await expect(startDaemon({ dir: tempDir('enc-loose'), set: { encryption: `enabled = true\nmaster_key_file = "${keyFile}"` } })).rejects.toThrow(/TALLENNE_KEY_FILE_INSECURE|mode 0640/);
    } finally {
      chmodSync(keyFile, 0o600);
    }
  });
});
