import { describe, expect, it } from 'vitest';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { FsAudioStore } from '../../src/storage/fs-store.js';
import { recordingKey } from '../../src/storage/audio-store.js';
import { describeStoreConformance } from './store-conformance.js';
import { tempDir } from '../support/cleanup.js';

describeStoreConformance('file system', async ({ keys, dir }) => ({ store: new FsAudioStore(dir, { keys }), close: async () => undefined }));

describe('FsAudioStore on disk', () => {
  it('keeps a recording at <storage.dir>/<key>, stages beside it on the same file system, and lists neither staged nor older temp files', async () => {
    const dir = tempDir('fs-store');
    const store = new FsAudioStore(dir);
    const key = recordingKey('01JFSSTORE0000000000000001', Date.UTC(2026, 10, 24));
    const w = store.create(key);
    w.write(Buffer.from('OggS on disk'));
    w.finish();
    const staging = join(dir, 'recordings', '.staging');
    expect(readdirSync(staging)).toHaveLength(1);
    expect(statSync(staging).dev).toBe(statSync(dir).dev);
    await w.commit();
    expect(readdirSync(staging)).toEqual([]);
    expect(readFileSync(join(dir, key), 'utf8')).toBe('OggS on disk');
    // A temp file of an earlier version, left by a crash beside the recordings.
    const old = join(dir, dirname(key), '.01JFSSTORE0000000000000002.opus.tmp');
    mkdirSync(dirname(old), { recursive: true });
    writeFileSync(old, 'OggS partial');
    expect((await store.list({ limit: 10 })).items).toEqual([{ key, storedBytes: 12 }]);
  });
});
