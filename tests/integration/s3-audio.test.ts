/**
 * Audio in S3, end to end: a daemon with `[storage] backend = "s3"` (encryption at rest on)
 * against the run's Swift records a call; the recording is listed, its audio is played whole
 * and by range from the bucket, and nothing of it stays on local disk. Then the daemon's path
 * to S3 (a TCP relay of this file's own, so the shared Swift is untouched) is cut under a few
 * calls: none is lost, the outbox gauge and the failure counter rise and /readyz says why; the
 * daemon is restarted with S3 still away and counts its outbox at once; the staged recordings
 * are uploaded as they are, without a new encode, except one damaged meanwhile, which is
 * encoded again from its spool; when S3 is back the outbox drains and every call is stored
 * exactly once. Erasure deletes the object.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { makeS3Client } from '../../src/storage/s3-client.js';
import { startDaemon, removeDir, BIN, type DaemonHandle } from '../support/daemon.js';
import { recordCall, startCall } from '../support/recorded-call.js';
import { decodeWithFfmpeg, tonePower } from '../support/audio.js';
import { sleep } from '../support/legs.js';
import { tempDir } from '../support/cleanup.js';
import { startRelay, swiftInstalled, useSwift, type CuttableRelay, type S3Endpoint } from '../support/swift.js';

const execFileAsync = promisify(execFile);
const AGENTS = `
[[agents]]
id = "aino"
name = "Aino Agentti"
extensions = ["1001"]
team = "helpdesk"
`;

describe.skipIf(!swiftInstalled())('audio in S3 through the daemon', () => {
  let s3: S3Endpoint;
  let relay: CuttableRelay;
  let client: S3Client;
  let d: DaemonHandle;
  let dir: string;
  let configText: string;
  let token = '';
  const bucket = `rec-${randomBytes(5).toString('hex')}`;
  const prefix = 'node-a/';

  const base = () => `http://127.0.0.1:${d.httpPort}`;
  async function cli(...args: string[]): Promise<string> {
    const { stdout } = await execFileAsync(process.execPath, [BIN, ...args, '--config', d.configFile, '--actor', 'test-admin'], { encoding: 'utf8' });
    return stdout;
  }
  async function listed(): Promise<Array<{ id: string; file: string | null; fileBytes: number }>> {
    return JSON.parse(await cli('recordings', 'list', '--json')) as Array<{ id: string; file: string | null; fileBytes: number }>;
  }
  async function metric(name: string): Promise<number> {
    const text = await (await fetch(`${base()}/metrics`)).text();
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : NaN;
  }
  async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}; daemon output:\n${d.output().slice(-3000)}`);
      await sleep(200);
    }
  }
  async function audio(id: string, range?: string): Promise<{ status: number; body: Buffer; contentRange: string | null }> {
    const r = await fetch(`${base()}/api/v1/recordings/${id}/audio`, { headers: { authorization: `Bearer ${token}`, ...(range ? { range } : {}) } });
    return { status: r.status, body: Buffer.from(await r.arrayBuffer()), contentRange: r.headers.get('content-range') };
  }
  function stored(): string[] {
    return d.logs.filter((l) => l.msg === 'recording stored').map((l) => l.recording as string);
  }

  beforeAll(async () => {
    s3 = await useSwift();
    client = makeS3Client({ bucket, prefix, endpoint: s3.endpoint, region: s3.region, forcePathStyle: true }, s3);
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    relay = await startRelay(s3.endpoint);
    dir = tempDir('s3daemon');
    const credentials = join(dir, 's3.credentials');
    writeFileSync(credentials, `[default]\naws_access_key_id = ${s3.accessKeyId}\naws_secret_access_key = ${s3.secretAccessKey}\n`, { mode: 0o600 });
    d = await startDaemon({
      dir,
      extraToml: AGENTS,
      set: {
        storage: `backend = "s3"\nbucket = "${bucket}"\nprefix = "${prefix}"\nendpoint = "${relay.endpoint}"\nregion = "${s3.region}"\nforce_path_style = true\ncredentials_file = "${credentials}"`,
        encryption: 'enabled = true',
      },
    });
    configText = readFileSync(d.configFile, 'utf8');
    await cli('users', 'add', 'listener', '--role', 'quality');
    token = (await cli('tokens', 'create', 'listener')).trim();
  }, 180_000);
  afterAll(async () => {
    await d?.kill();
    await relay?.close();
    client?.destroy();
    if (dir) removeDir(dir);
  });

  it('stores a call in the bucket, lists it and plays it whole and by range from there', async () => {
    const id = await recordCall(d, '+358401112223', '1001', 3000);
    const entry = (await listed()).find((r) => r.id === id)!;
    expect(entry.file).toMatch(new RegExp(`^recordings/\\d{4}/\\d\\d/\\d\\d/${id}\\.opus$`));
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}${entry.file}` }));
    expect(head.ContentLength).toBeGreaterThan(entry.fileBytes); // encrypted: chunk overhead
    expect(head.Metadata?.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(existsSync(join(dir, 'data', 'recordings')) ? readdirSync(join(dir, 'data', 'recordings'), { recursive: true }).filter((f) => String(f).endsWith('.opus')) : []).toEqual([]);
    expect(readdirSync(join(dir, 'data', 'spool'))).toEqual([]);

    const whole = await audio(id);
    expect(whole.status).toBe(200);
    expect(whole.body.subarray(0, 4).toString('latin1')).toBe('OggS');
    expect(whole.body.length).toBe(entry.fileBytes);
    const ogg = join(dir, 'played.opus');
    writeFileSync(ogg, whole.body);
    const [left, right] = decodeWithFfmpeg(ogg).channels;
    expect(tonePower(left!, 8000, 440, 4000, 16000)).toBeGreaterThan(0.5);
    expect(tonePower(right!, 8000, 1000, 4000, 16000)).toBeGreaterThan(0.5);
    const from = Math.floor(entry.fileBytes / 2);
    const part = await audio(id, `bytes=${from}-${from + 99}`);
    expect(part.status).toBe(206);
    expect(part.contentRange).toBe(`bytes ${from}-${from + 99}/${entry.fileBytes}`);
    expect(part.body.equals(whole.body.subarray(from, from + 100))).toBe(true);
    const stored = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}${entry.file}`, Range: 'bytes=0-3' }));
    expect(Buffer.from(await stored.Body!.transformToByteArray()).toString('latin1')).toBe('TLNE');
  });

  it('keeps recording while S3 is away, shows the backlog, keeps it across a restart, and drains it when S3 is back', async () => {
    const before = stored().length;
    const failuresBefore = await metric('tallenne_storage_upload_failures_total');
    relay.cut();
    const ended: Array<Promise<unknown>> = [];
    for (const customer of ['+358401110001', '+358401110002', '+358401110003']) {
      const call = await startCall(d, customer, '1001');
      await sleep(1500);
      // hangUp waits for the stored recording, which comes only once S3 is back.
      ended.push(call.hangUp().catch(() => undefined));
    }
    await until('three recordings wait in the outbox', async () => (await metric('tallenne_storage_outbox_recordings')) === 3);
    expect(await metric('tallenne_storage_upload_failures_total')).toBeGreaterThan(failuresBefore);
    const ready = await fetch(`${base()}/readyz`);
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as { checks: Record<string, string> }).checks.outbox).toMatch(/^3 recordings wait for upload: /);
    expect(stored().length).toBe(before);
    expect(readdirSync(join(dir, 'data', 'spool')).filter((f) => f.endsWith('.spool'))).toHaveLength(3);
    await Promise.all(ended);

    // A graceful stop with S3 away leaves the outbox and the spools; the next start counts them.
    expect(await d.stop()).toBe(0);
    expect(readdirSync(join(dir, 'data', 'spool')).filter((f) => f.endsWith('.spool'))).toHaveLength(3);
    // One staged recording is damaged meanwhile (one byte, same size): it must be encoded
    // again from its spool, not uploaded; the two intact ones are uploaded as they are.
    const outbox = join(dir, 'data', 'outbox');
    const staged = readdirSync(outbox).filter((f) => f.endsWith('.staged')).sort();
    expect(staged).toHaveLength(3);
    const damaged = readFileSync(join(outbox, staged[0]!));
    damaged[Math.floor(damaged.length / 2)] ^= 0xff;
    writeFileSync(join(outbox, staged[0]!), damaged);
    d = await startDaemon({ dir, configText });
    await until('the restarted daemon counts its outbox', async () => (await metric('tallenne_storage_outbox_recordings')) === 3);

    relay.restore();
    await until('the outbox drains', async () => (await metric('tallenne_storage_outbox_recordings')) === 0, 120_000);
    await until('the spools are gone', async () => readdirSync(join(dir, 'data', 'spool')).filter((f) => f.endsWith('.spool')).length === 0);
    const all = await listed();
    expect(all).toHaveLength(4);
    expect(new Set(all.map((r) => r.id)).size).toBe(4);
    const objects = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    expect(objects.Contents?.map((o) => o.Key).sort()).toEqual(all.map((r) => `${prefix}${r.file}`).sort());
    for (const r of all) {
      const a = await audio(r.id);
      expect(a.status).toBe(200);
      expect(a.body.length).toBe(r.fileBytes);
    }
    // The restart took the intact staged recordings as they were, and encoded the damaged one again.
    expect(await metric('tallenne_staged_recordings_total{outcome="reused"}')).toBe(2);
    expect(await metric('tallenne_staged_recordings_total{outcome="reencoded"}')).toBe(1);
    expect(d.logs.filter((l) => String(l.msg).startsWith('reusing the recording an earlier attempt staged'))).toHaveLength(2);
    expect(d.logs.filter((l) => String(l.msg).startsWith('the recording an earlier attempt staged failed its check'))).toHaveLength(1);
  }, 300_000);

  it('erasing a recording deletes its object from the bucket', async () => {
    const [victim] = await listed();
    await cli('recordings', 'erase', victim!.id, '--reason', 'subject request');
    const gone = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}${victim!.file}` })).then(() => null, (e: { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode);
    expect(gone).toBe(404);
    expect((await audio(victim!.id)).status).toBe(404);
  }, 120_000);
});
