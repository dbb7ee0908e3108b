/**
 * Exports and waveform peaks decode our Ogg Opus files with libopus (src/storage/opus-decode.ts).
 *
 * The fixture is a recording the encoder made under test load: a 440 Hz customer on the left
 * and a 1000 Hz agent on the right, about 3 s, narrowband SILK. libopus decodes its right
 * channel as a steady tone; ffmpeg's built-in Opus decoder drifts to 990 Hz and rises to near
 * full scale from about 1 s on. Every exported or drawn form must therefore keep the agent's
 * level steady from start to end.
 */
import { describe, expect, it } from 'vitest';
import { copyFileSync, mkdirSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { FsAudioStore } from '../../../src/storage/fs-store.js';
import { exportAudioToFile } from '../../../src/storage/audio-export.js';
import { computePeaks } from '../../../src/api/peaks.js';
import { makeEntry } from '../index/entry.js';
import { tempDir } from '../../support/cleanup.js';
import { decodeWithFfmpeg, rms, tonePower } from '../../support/audio.js';

const FIXTURE = join(import.meta.dirname, '..', '..', 'fixtures', 'opus', 'silk-nb-tones.opus');
const RATE = 8000;

/** The fixture in a store, as the API and the CLI reach it. */
function storeWithFixture(): { store: FsAudioStore; dir: string; file: string } {
  const dir = tempDir('opus-decode');
  const file = 'recordings/2026/11/24/fixture.opus';
  mkdirSync(join(dir, 'recordings/2026/11/24'), { recursive: true });
  copyFileSync(FIXTURE, join(dir, file));
  return { store: new FsAudioStore(dir), dir, file };
}

describe('decoding our Opus files', () => {
  it.each(['wav', 'mp3'] as const)('a %s export keeps both tones at a steady level for the whole call', async (format) => {
    const { store, dir, file } = storeWithFixture();
    const entry = makeEntry('01FIXTURE', Date.now(), { file, sampleRate: RATE, channels: 2 });
    const out = join(dir, `export.${format}`);
    closeSync(openSync(out, 'w', 0o600));
    await exportAudioToFile(store, entry, format, out);
    const pcm = decodeWithFfmpeg(out, RATE, 2);
    const second = RATE;
    for (const [ch, hz] of [[0, 440], [1, 1000]] as const) {
      const samples = pcm.channels[ch]!;
      expect(samples.length).toBeGreaterThan(2.9 * RATE);
      const levels: number[] = [];
      for (let from = 0.2 * second; from + 0.2 * second <= samples.length - 0.1 * second; from += 0.2 * second) {
        expect(tonePower(samples, RATE, hz, from, from + 0.2 * second), `channel ${ch} at ${from / RATE} s`).toBeGreaterThan(0.9);
        levels.push(rms(samples, from, from + 0.2 * second));
      }
      // A tone of amplitude 8000 has an RMS of about 5,700; the built-in decoder reached 28,000.
      expect(Math.max(...levels) / Math.min(...levels), `channel ${ch} level spread`).toBeLessThan(1.3);
      expect(Math.max(...levels)).toBeLessThan(7000);
    }
  });

  it('waveform peaks of the agent channel stay at the tone amplitude', async () => {
    const peaks = await computePeaks(FIXTURE);
    const agent = peaks.channels[1]!;
    expect(agent.role).toBe('agent');
    // Skip the first and last 100 ms (encoder start-up and the end granule).
    const inner = agent.max.slice(5, -5);
    expect(inner.length).toBeGreaterThan(140);
    expect(Math.max(...inner)).toBeLessThan(0.35);
    expect(Math.min(...inner)).toBeGreaterThan(0.15);
  });
});
