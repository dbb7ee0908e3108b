/**
 * The baseline: how a naive recorder does it — one ffmpeg process per leg, receiving RTP
 * described by an SDP file and encoding Opus (driven through fluent-ffmpeg, as tallenne's
 * own exports are). Same audio, same pace, same codec; Opus at the same complexity, 20 ms
 * frames, VOIP application, and per leg half the call's bitrate (tallenne's file carries
 * both legs in the configured bitrate).
 *
 * CPU and peak memory are read from /proc/PID of each ffmpeg just before it is told to stop
 * (SIGINT: it then writes its trailer and exits). fluent-ffmpeg probes ffmpeg's codecs before
 * it starts the real process, which takes seconds on a loaded box: `started` resolves only
 * when the encoding process runs, and a leg that fails before it is stopped keeps the reason
 * in `error`, so a run never reports a leg that did not encode as costing nothing.
 */
import ffmpeg from 'fluent-ffmpeg';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { procCpuSeconds, procMemory } from './daemon.mjs';

export class FfmpegLeg {
  constructor({ dir, port, codec, complexity, bitrate, index }) {
    this.port = port;
    const sdp = join(dir, `leg-${index}.sdp`);
    writeFileSync(sdp, [
      'v=0', 'o=- 0 0 IN IP4 127.0.0.1', 's=leg', 'c=IN IP4 127.0.0.1', 't=0 0',
      `m=audio ${port} RTP/AVP ${codec.pt}`, `a=rtpmap:${codec.pt} ${codec.rtpmap}`, 'a=recvonly', '',
    ].join('\r\n'));
    this.peakRss = 0;
    this.cpu = 0;
    this.error = null;
    this.stopping = false;
    let started;
    this.started = new Promise((resolve) => (started = resolve));
    this.done = new Promise((resolve) => {
      this.cmd = ffmpeg(sdp)
        .inputOptions(['-protocol_whitelist', 'file,udp,rtp', '-reorder_queue_size', '0'])
        .audioCodec('libopus')
        .audioBitrate(`${Math.round(bitrate / 1000)}k`)
        .audioChannels(1)
        .outputOptions(['-compression_level', String(complexity), '-application', 'voip', '-frame_duration', '20', '-vbr', 'on'])
        .output(join(dir, `leg-${index}.opus`))
        .on('start', () => {
          this.pid = this.cmd.ffmpegProc?.pid;
          started(true);
        })
        .on('error', (e, _stdout, stderr) => {
          if (!this.stopping) this.error = `${e.message.split('\n')[0]}${stderr ? `: ${String(stderr).trim().split('\n').slice(-2).join(' | ')}` : ''}`;
          started(false);
          resolve();
        })
        .on('end', () => resolve());
      this.cmd.run();
    });
  }

  sample() {
    if (!this.pid) return;
    const m = procMemory(this.pid);
    if (m) this.peakRss = Math.max(this.peakRss, m.hwm, m.rss);
    const c = procCpuSeconds(this.pid);
    if (c !== null) this.cpu = c;
  }

  async stop() {
    this.sample();
    this.stopping = true;
    this.cmd.kill('SIGINT');
    const t = setTimeout(() => this.cmd.kill('SIGKILL'), 10_000);
    await this.done;
    clearTimeout(t);
  }
}

export function baselineDir() {
  return mkdtempSync(join(tmpdir(), 'tallenne-bench-ffmpeg-'));
}

export function removeBaselineDir(dir) {
  rmSync(dir, { recursive: true, force: true });
}
