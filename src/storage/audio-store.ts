/**
 * The one seam for audio files. Everything that writes, reads, lists or deletes a
 * recording's audio goes through an AudioStore, so a later object-storage backend can stand
 * in for the local file system. Paths given out are relative keys ("recordings/2026/11/22/ID.opus").
 */
import { mkdirSync, openSync, fsyncSync, closeSync, renameSync, unlinkSync, statSync, createReadStream, readdirSync, statfsSync, existsSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';

export interface AudioStore {
  /** Key under which the recording `id` answered at `answeredAt` is stored. */
  keyFor(id: string, answeredAt: number): string;
  /** A local path to write a new file to before commit (same file system as the final place). */
  tempPathFor(key: string): string;
  /** fsyncs the temp file, renames it atomically to its key, fsyncs the folder. Returns the size. */
  commit(tempPath: string, key: string): number;
  exists(key: string): boolean;
  size(key: string): number | null;
  open(key: string): Readable;
  /** Local path of a key (for tools such as ffmpeg that want a file). */
  localPath(key: string): string;
  /** Deletes the file; true when it existed. */
  remove(key: string): boolean;
  /** Every stored key, for the orphan sweep. */
  keys(): Iterable<string>;
  /** Bytes free on the volume holding the audio. */
  freeBytes(): number;
  /** Size in bytes of the volume holding the audio. */
  volumeBytes(): number;
  /** Bytes used by stored audio (walks the tree; call rarely). */
  usedBytes(): number;
}

export class LocalAudioStore implements AudioStore {
  readonly root: string;
  private readonly recordingsDir: string;

  constructor(storageDir: string) {
    this.root = storageDir;
    this.recordingsDir = join(storageDir, 'recordings');
    mkdirSync(this.recordingsDir, { recursive: true, mode: 0o750 });
  }

  keyFor(id: string, answeredAt: number): string {
    const d = new Date(answeredAt);
    const yyyy = String(d.getUTCFullYear());
    const mm = String(d.getUTCMonth() + 1).padStart(2, '0');
    const dd = String(d.getUTCDate()).padStart(2, '0');
    return `recordings/${yyyy}/${mm}/${dd}/${id}.opus`;
  }

  localPath(key: string): string {
    if (key.includes('..') || key.startsWith('/')) throw new Error(`bad audio key ${key}`);
    return join(this.root, key);
  }

  tempPathFor(key: string): string {
    const p = this.localPath(key);
    mkdirSync(dirname(p), { recursive: true, mode: 0o750 });
    return join(dirname(p), `.${p.slice(dirname(p).length + 1)}.tmp`);
  }

  commit(tempPath: string, key: string): number {
    const fd = openSync(tempPath, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    const finalPath = this.localPath(key);
    renameSync(tempPath, finalPath);
    fsyncDir(dirname(finalPath));
    return statSync(finalPath).size;
  }

  exists(key: string): boolean {
    return existsSync(this.localPath(key));
  }

  size(key: string): number | null {
    try {
      return statSync(this.localPath(key)).size;
    } catch {
      return null;
    }
  }

  open(key: string): Readable {
    return createReadStream(this.localPath(key));
  }

  remove(key: string): boolean {
    try {
      unlinkSync(this.localPath(key));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  }

  *keys(): Iterable<string> {
    const stack = [this.recordingsDir];
    while (stack.length > 0) {
      const dir = stack.pop()!;
      let entries;
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        continue;
      }
      for (const e of entries) {
        const p = join(dir, e.name);
        if (e.isDirectory()) stack.push(p);
        else if (e.isFile() && e.name.endsWith('.opus') && !e.name.startsWith('.')) yield relative(this.root, p).split(sep).join('/');
      }
    }
  }

  freeBytes(): number {
    const s = statfsSync(this.root);
    return s.bavail * s.bsize;
  }

  volumeBytes(): number {
    const s = statfsSync(this.root);
    return s.blocks * s.bsize;
  }

  usedBytes(): number {
    let total = 0;
    for (const k of this.keys()) total += this.size(k) ?? 0;
    return total;
  }
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
