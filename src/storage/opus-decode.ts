/**
 * How the recorder's own Ogg Opus files are decoded by the system ffmpeg (WAV and MP3
 * export, waveform peaks): always with libopus, the reference decoder that browsers and
 * players use, never ffmpeg's built-in Opus decoder.
 *
 * Why: ffmpeg's built-in decoder (the `opus` decoder, its default) can go unstable on a
 * narrowband SILK stream of a steady tone. On a recording of a 1000 Hz test tone it drifted
 * to 990 Hz and rose to near full scale within a second, while libopus decoded the same file
 * cleanly (tests/fixtures/opus/silk-nb-tones.opus, tests/unit/storage/opus-decode.test.ts).
 * An export must sound like the recording, so the decoder is chosen, not left to ffmpeg.
 */

/** ffmpeg input options for one of our files: Ogg container, libopus decoder. */
export const OPUS_INPUT_OPTIONS: readonly string[] = ['-f', 'ogg', '-c:a', 'libopus'];

/** ffmpeg arguments that read Ogg Opus from `input` (a file, or stdin) and write raw 16-bit PCM at `rate` with `channels` on stdout. */
export function opusToPcmArgs(rate: number, channels: number, input = 'pipe:0'): string[] {
  return ['-hide_banner', '-loglevel', 'error', ...OPUS_INPUT_OPTIONS, '-i', input, '-f', 's16le', '-acodec', 'pcm_s16le', '-ar', String(rate), '-ac', String(channels), 'pipe:1'];
}
