/**
 * For a tool that needs the audio as a file on disk (ffmpeg): the recording's plaintext is
 * streamed from its store into a private temporary file, the tool runs on it, and the file
 * and its folder are removed afterwards, whatever happened. The only local path to audio
 * that leaves src/storage, and only for the tool's run.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { AudioRef, AudioStore } from './audio-store.js';

export async function withLocalCopy<T>(store: Pick<AudioStore, 'open'>, ref: AudioRef, use: (path: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'tallenne-audio-'));
  try {
    const path = join(dir, 'audio.opus');
    await pipeline(await store.open(ref), createWriteStream(path, { flags: 'wx', mode: 0o600 }));
    return await use(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
