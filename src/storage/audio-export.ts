/**
 * Exporting a recording's audio to a file as Ogg Opus (a copy), WAV or MP3: used by
 * `tallenne recordings export` and by the API (single exports and the bulk ZIP). The file
 * must already exist, created by the caller with the permissions it wants; it is
 * overwritten here. A copy is streamed from the store; decoding uses the system ffmpeg with
 * libopus (opus-decode.ts) on a private local copy of the plaintext (local-copy.ts).
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createRequire } from 'node:module';
import { pipeline } from 'node:stream/promises';
import ffmpeg from 'fluent-ffmpeg';
import type { RecordingEntry } from '../types.js';
import type { AudioStore } from './audio-store.js';
import { OPUS_INPUT_OPTIONS, opusToPcmArgs } from './opus-decode.js';
import { withLocalCopy } from './local-copy.js';

export const EXPORT_FORMATS = ['opus', 'wav', 'mp3'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const EXPORT_CONTENT_TYPES: Record<ExportFormat, string> = {
  opus: 'audio/ogg; codecs=opus',
  wav: 'audio/wav',
  mp3: 'audio/mpeg',
};

export async function exportAudioToFile(store: AudioStore, e: RecordingEntry, format: ExportFormat, out: string): Promise<void> {
  if (format === 'opus') await pipeline(await store.open(e), createWriteStream(out, { flags: 'w' }));
  else await withLocalCopy(store, e, (audio) => (format === 'wav' ? exportWav(audio, e, out) : exportMp3(audio, out)));
}

interface WavFileWriter extends NodeJS.WritableStream {
  /** The underlying file stream (its errors are not forwarded by the package). */
  readonly file: NodeJS.WritableStream;
  on(event: 'done', cb: () => void): this;
  on(event: 'error', cb: (e: Error) => void): this;
}
interface WavModule {
  FileWriter: new (path: string, opts: { sampleRate: number; channels: number; bitDepth: number; flags: string }) => WavFileWriter;
}
const wav = createRequire(import.meta.url)('wav') as WavModule;

/** Opus → PCM with the system ffmpeg, PCM → WAV container with `wav`. */
async function exportWav(audio: string, e: RecordingEntry, out: string): Promise<void> {
  const rate = e.sampleRate > 0 ? e.sampleRate : 48_000;
  const channels = e.channels > 0 ? e.channels : 1;
  const dec = spawn('ffmpeg', opusToPcmArgs(rate, channels, audio), {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  dec.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const exited = new Promise<void>((resolve, reject) => {
    dec.on('error', reject);
    dec.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg could not decode the recording: ${stderr.trim() || `exit ${code}`}`))));
  });
  const writer = new wav.FileWriter(out, { sampleRate: rate, channels, bitDepth: 16, flags: 'w' });
  const done = new Promise<void>((resolve, reject) => {
    writer.on('done', resolve);
    writer.on('error', reject);
    writer.file.on('error', reject);
  });
  await Promise.all([pipeline(dec.stdout, writer), exited]);
  await done; // the header with the final sizes is written after the data
}

/** Opus → MP3 through fluent-ffmpeg. */
async function exportMp3(audio: string, out: string): Promise<void> {
  const file = createWriteStream(out, { flags: 'w' });
  await new Promise<void>((resolve, reject) => {
    file.on('error', reject);
    file.on('open', () => {
      ffmpeg(audio)
        .inputOptions([...OPUS_INPUT_OPTIONS])
        .noVideo()
        .audioCodec('libmp3lame')
        .audioBitrate(64)
        .format('mp3')
        .on('error', (err: Error) => reject(new Error(`ffmpeg could not make an MP3: ${err.message}`)))
        .pipe(file, { end: true });
    });
    file.on('finish', resolve);
  });
}
