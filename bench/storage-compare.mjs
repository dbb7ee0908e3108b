/**
 * Finalisation into the local file system against S3, on the same recordings: for each, the
 * part of a finalisation after the encoder is done (the staged file written and fsynced):
 * the store's publish (a rename into place, or an upload checked against the staged file)
 * and the index entry's write, timed until both are durable. The S3 store is the daemon's
 * own (dist/storage/s3-audio-store.js, outbox and all) against a throwaway Swift with s3api
 * on loopback (bench/swift-server.mjs); both stores index into one LMDB register each, so
 * only the store differs. Recordings alternate which store goes first.
 *
 * Sizes are those of the index bench's entries (30 s to 10.5 min at 24 kbit/s, 90 KB to
 * 1.9 MB), the bytes random (encoded Opus does not compress). Reports p50/p99 in ms per
 * store and their ratio S3/fs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { prng } from './audio.mjs';
import { entry, quantiles } from './index-load.mjs';
import { startBenchSwift, swiftInstalled } from './swift-server.mjs';

/** Opus at 24 kbit/s: bytes per second of audio. */
const BYTES_PER_SECOND = 3000;

async function finaliseOne(store, index, e, bytes) {
  const w = store.create(e.file);
  w.write(bytes);
  w.finish();
  // The encoder is done here: what follows is what the finaliser waits for.
  const a = performance.now();
  const stored = await w.commit();
  await index.put({ ...e, fileBytes: stored.bytes });
  return performance.now() - a;
}

export async function measureStorageCompare(repo, recordings) {
  if (!swiftInstalled()) throw new Error('--storage-compare needs OpenStack Swift with s3api and memcached (Debian: swift-proxy swift-account swift-container swift-object memcached)');
  const dist = (...p) => join(repo, 'dist', ...p);
  const { FsAudioStore } = await import(dist('storage', 'fs-store.js'));
  const { S3AudioStore } = await import(dist('storage', 's3-audio-store.js'));
  const { makeS3Client } = await import(dist('storage', 's3-client.js'));
  const { openIndex } = await import(dist('index', 'index.js'));
  const swift = await startBenchSwift();
  const dir = mkdtempSync(join(tmpdir(), 'tallenne-bench-storage-'));
  const open = [];
  try {
    const credentials = { accessKeyId: swift.accessKeyId, secretAccessKey: swift.secretAccessKey };
    const location = { bucket: 'bench-recordings', prefix: 'bench/', endpoint: swift.endpoint, region: swift.region, forcePathStyle: true };
    const admin = makeS3Client(location, credentials);
    await admin.send(new CreateBucketCommand({ Bucket: location.bucket }));
    admin.destroy();
    const stores = {
      fs: { store: new FsAudioStore(join(dir, 'fs')), index: await openIndex(join(dir, 'fs')) },
      s3: { store: new S3AudioStore({ location, credentials, outboxDir: join(dir, 's3', 'outbox') }), index: await openIndex(join(dir, 's3')) },
    };
    for (const s of Object.values(stores)) open.push(s);
    // One unmeasured recording each: connections, JIT, the first LMDB pages.
    const rnd = prng(21);
    const t0 = Date.UTC(2025, 0, 1);
    for (const s of Object.values(stores)) await finaliseOne(s.store, s.index, entry(recordings, t0, rnd), randomBytes(60 * BYTES_PER_SECOND));
    const times = { fs: [], s3: [] };
    let bytes = 0;
    for (let i = 0; i < recordings; i++) {
      const e = entry(i, t0, rnd);
      const audio = randomBytes(Math.round((e.durationMs / 1000) * BYTES_PER_SECOND));
      bytes += audio.length;
      for (const name of i % 2 === 0 ? ['fs', 's3'] : ['s3', 'fs']) times[name].push(await finaliseOne(stores[name].store, stores[name].index, e, audio));
    }
    const fs = quantiles(times.fs);
    const s3 = quantiles(times.s3);
    const ratio = (a, b) => Math.round((a / b) * 10) / 10;
    return { recordings, meanKb: Math.round(bytes / recordings / 1024), fs, s3, ratio: { p50: ratio(s3.p50, fs.p50), p99: ratio(s3.p99, fs.p99) } };
  } finally {
    for (const s of open) {
      s.store.close?.();
      await s.index.close();
    }
    rmSync(dir, { recursive: true, force: true });
    swift.stop();
  }
}
