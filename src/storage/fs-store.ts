/**
 * The AudioStore on the local file system: recording `key` is the file `<storage.dir>/<key>`.
 * New recordings are staged in `recordings/.staging/` (the same file system, so publishing is
 * an atomic rename followed by an fsync of both folders). Free and volume bytes are the
 * volume's; used bytes are counted by a walk at most once a minute and kept up to date in
 * between by this process's own publishes and removals.
 */
import { mkdir, open as openFile, readdir, rename, stat, statfs, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import type { KeyWrapper } from '../crypto/keyring.js';
import { checkKey, everyStored, type AudioInfo, type AudioListing, type AudioPage, type AudioRef, type AudioStore, type AudioWriter, type ByteRange, type StagedAudio, type StagingArea, type StoreUsage, type StoredAudio } from './audio-store.js';
import { localStaging, stagedPath, storeWriter } from './staging.js';
import { PlaintextReader, type StoredObject } from './sealed-read.js';

export interface FsAudioStoreOptions {
  /** Unwraps the data keys of encrypted recordings; without it only plain files can be read. */
  readonly keys?: KeyWrapper | null;
}

/** Used bytes are walked again after this long (another process may have removed files). */
const USED_REFRESH_MS = 60_000;

export class FsAudioStore implements AudioStore {
  readonly staging: StagingArea;
  private readonly root: string;
  private readonly reader: PlaintextReader;
  private used: { at: number; bytes: number } | null = null;
  private walking: Promise<number> | null = null;

  constructor(storageDir: string, opts: FsAudioStoreOptions = {}) {
    this.root = storageDir;
    this.reader = new PlaintextReader(opts.keys ?? null);
    this.staging = localStaging(join(storageDir, 'recordings', '.staging'));
  }

  get decryptFailures(): number {
    return this.reader.decryptFailures;
  }

  create(key: string, dataKey?: Uint8Array): AudioWriter {
    return storeWriter(this, key, dataKey);
  }

  async publish(staged: StagedAudio): Promise<StoredAudio> {
    if (staged.area.kind !== 'local' || staged.area.dir !== this.staging.dir) throw new Error(`recording ${staged.key} was staged for another store`);
    const from = stagedPath(staged.area, staged.key);
    const size = (await stat(from)).size;
    if (size !== staged.storedBytes) throw new Error(`the staged file of ${staged.key} has ${size} bytes, not the ${staged.storedBytes} written`);
    const to = this.path(staged.key);
    await mkdir(dirname(to), { recursive: true, mode: 0o750 });
    const replaced = await fileSize(to);
    await rename(from, to);
    // On the thread pool: a folder's fsync waits for the disk, and this runs on the capture thread.
    await Promise.all([fsyncDir(dirname(to)), fsyncDir(this.staging.dir)]);
    if (this.used) this.used.bytes += size - (replaced ?? 0);
    return { key: staged.key, bytes: staged.bytes, storedBytes: size, sha256: staged.sha256 };
  }

  async open(ref: AudioRef, range?: ByteRange): Promise<Readable> {
    return this.reader.open(ref, await this.object(ref.file), range);
  }

  async stat(ref: AudioRef): Promise<AudioInfo | null> {
    return this.reader.stat(ref, await this.object(ref.file));
  }

  async remove(key: string): Promise<boolean> {
    const p = this.path(key);
    const size = await fileSize(p);
    try {
      await unlink(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
    if (this.used && size !== null) this.used.bytes = Math.max(0, this.used.bytes - size);
    return true;
  }

  async list(page: { readonly cursor?: string; readonly limit: number }): Promise<AudioPage> {
    const limit = Math.max(1, Math.floor(page.limit));
    const items: AudioListing[] = [];
    await this.walk('recordings', page.cursor, items, limit);
    return items.length === limit ? { items, cursor: items[limit - 1]!.key } : { items };
  }

  async usage(opts: { readonly used?: boolean } = {}): Promise<StoreUsage> {
    const s = await statfs(this.root);
    const volume = { freeBytes: s.bavail * s.bsize, volumeBytes: s.blocks * s.bsize };
    return opts.used ? { ...volume, usedBytes: await this.usedBytes() } : volume;
  }

  private async usedBytes(): Promise<number> {
    if (this.used && Date.now() - this.used.at < USED_REFRESH_MS) return this.used.bytes;
    this.walking ??= (async () => {
      try {
        let total = 0;
        for await (const i of everyStored(this)) total += i.storedBytes;
        this.used = { at: Date.now(), bytes: total };
        return total;
      } finally {
        this.walking = null;
      }
    })();
    return this.walking;
  }

  /** Appends the keys after `cursor` under folder `rel`, in ascending order, until `out` holds `limit`. */
  private async walk(rel: string, cursor: string | undefined, out: AudioListing[], limit: number): Promise<void> {
    let entries;
    try {
      entries = await readdir(join(this.root, rel), { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    // Staged and temporary files start with a dot: never listed.
    const named = entries
      .filter((e) => !e.name.startsWith('.') && (e.isDirectory() || (e.isFile() && e.name.endsWith('.opus'))))
      .map((e) => ({ dir: e.isDirectory(), key: `${rel}/${e.name}${e.isDirectory() ? '/' : ''}` }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (const n of named) {
      if (out.length >= limit) return;
      if (n.dir) {
        // A folder whose every key sorts before the cursor is skipped without reading it.
        if (cursor !== undefined && n.key < cursor && !cursor.startsWith(n.key)) continue;
        await this.walk(n.key.slice(0, -1), cursor, out, limit);
      } else if (cursor === undefined || n.key > cursor) {
        const size = await fileSize(join(this.root, n.key));
        if (size !== null) out.push({ key: n.key, storedBytes: size });
      }
    }
  }

  private path(key: string): string {
    return join(this.root, checkKey(key));
  }

  /** Random access to the stored file of `key`; null when it is gone. */
  private async object(key: string): Promise<StoredObject | null> {
    let fh: FileHandle;
    try {
      fh = await openFile(this.path(key), 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    let closed: Promise<void> | null = null;
    try {
      const storedBytes = (await fh.stat()).size;
      return {
        storedBytes,
        read: (position, length) => readAt(fh, position, length),
        stream: (start, end) => fh.createReadStream({ start, ...(end !== undefined ? { end } : {}), autoClose: false }),
        close: () => (closed ??= fh.close().catch(() => undefined)),
      };
    } catch (e) {
      await fh.close();
      throw e;
    }
  }
}

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const b = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(b, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return b.subarray(0, got);
}

async function fileSize(p: string): Promise<number | null> {
  try {
    return (await stat(p)).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await openFile(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
