/**
 * The player for one two-channel recording: both waveforms with the timeline marks, a
 * position slider (click or keyboard), play/pause, speed 0.75–2×, solo and mute per channel,
 * the list of marks and participants, and the actions the caller's roles allow.
 */
import { h, setPressed, announce } from './dom.js';
import { call, audioUrl, ApiFailure } from './api.js';
import { clock, localTime, spokenDuration } from './format.js';
import { marksOf, presence, type Channel, type Mark } from './marks.js';
import { Waveform } from './waveform.js';
import { peakScale } from './peaks.js';
import { ChannelMixer } from './mixer.js';
import { CHANNELS, audible } from './mix.js';
import { actionsFor } from './actions.js';
import { allowed } from './permissions.js';
import type { Me, Peaks, Recording } from './types.js';

export interface PlayerHooks {
  close(): void;
  /** The recording changed (held, released) or is gone (erased: null). */
  changed(id: string, rec: Recording | null): void;
}

export const SPEEDS = [0.75, 1, 1.25, 1.5, 1.75, 2] as const;
const STEP_MS = 5000;
const PAGE_MS = 30_000;
const NAMES: Record<Channel, string> = { customer: 'Customer', agent: 'Agent' };

export class Player {
  readonly el: HTMLElement;
  private readonly audio: HTMLAudioElement;
  private readonly mixer: ChannelMixer;
  private readonly waves = new Map<Channel, Waveform>();
  private readonly toggles = new Map<Channel, { solo: HTMLButtonElement; mute: HTMLButtonElement; row: HTMLElement }>();
  private readonly solo = new Set<Channel>();
  private readonly muted = new Set<Channel>();
  private readonly slider: HTMLElement;
  private readonly playhead: HTMLElement;
  private readonly playButton: HTMLButtonElement;
  private readonly timeText: HTMLElement;
  private readonly body: HTMLElement;
  private readonly durationMs: number;
  private frame = 0;
  private reason: string | undefined;
  private readonly resize = (): void => this.redraw();

  /** `suggestedReason`: the reason given with the search, offered (not assumed) for this one. */
  constructor(private readonly rec: Recording, private readonly me: Me, private readonly hooks: PlayerHooks, private readonly suggestedReason?: string) {
    this.durationMs = rec.durationMs;
    this.audio = h('audio', { preload: 'metadata', 'data-testid': 'audio' });
    this.mixer = new ChannelMixer(this.audio);

    this.playhead = h('div', { class: 'playhead', 'aria-hidden': 'true' });
    const tracks = CHANNELS.map((ch) => this.track(ch));
    this.slider = h(
      'div',
      {
        class: 'timeline',
        role: 'slider',
        tabindex: 0,
        'aria-label': 'Position in the recording',
        'aria-valuemin': 0,
        'aria-valuemax': Math.round(this.durationMs / 1000),
        'aria-valuenow': 0,
        'aria-valuetext': `0 seconds of ${spokenDuration(this.durationMs)}`,
        'aria-describedby': 'timeline-keys',
        'data-testid': 'timeline',
      },
      [...tracks, this.playhead],
      { click: (e) => this.seekToPointer(e), keydown: (e) => this.onKey(e) },
    );

    this.playButton = h('button', { type: 'button', class: 'play', 'aria-label': 'Play' }, ['Play'], { click: () => void this.toggle() });
    this.timeText = h('span', { class: 'time', 'aria-hidden': 'true' }, [`0:00 / ${clock(this.durationMs)}`]);
    const speed = h('select', { 'aria-label': 'Playback speed', class: 'speed' }, SPEEDS.map((s) => h('option', { value: s, selected: s === 1 }, [`${s}×`])), {
      change: (e) => {
        this.audio.playbackRate = Number((e.target as HTMLSelectElement).value);
      },
    });
    const back = h('button', { type: 'button', 'aria-label': 'Back 5 seconds' }, ['−5 s'], { click: () => this.seekBy(-STEP_MS) });
    const fwd = h('button', { type: 'button', 'aria-label': 'Forward 5 seconds' }, ['+5 s'], { click: () => this.seekBy(STEP_MS) });

    const channelControls = h('div', { class: 'channels', role: 'group', 'aria-label': 'Channels' }, CHANNELS.map((ch) => this.toggles.get(ch)!.row));
    const marks = marksOf(rec);
    this.body = h('div', { class: 'player-body' }, [
      this.slider,
      h('p', { id: 'timeline-keys', class: 'keys' }, ['Click the waveform to jump there. Keys: ← → 5 s, with Shift 1 s, Page Up/Down 30 s, Home, End, Space plays or pauses.']),
      h('div', { class: 'transport' }, [this.playButton, back, fwd, this.timeText, h('label', { class: 'speed-label' }, ['Speed ', speed])]),
      channelControls,
      this.markList(marks),
      this.participants(),
      this.audio,
    ]);
    this.placeMarks(marks);

    const head = h('div', { class: 'player-head' }, [
      h('h2', { id: 'player-title' }, [`Recording ${localTime(rec.startedAt)}`]),
      h('button', { type: 'button', class: 'close', 'aria-label': 'Close the player' }, ['×'], { click: () => this.hooks.close() }),
    ]);
    const facts = h('dl', { class: 'facts' }, [
      ...fact('Customer', rec.customerNumber ?? '—'),
      ...fact('Agent', rec.agent ?? '—'),
      ...fact('Service number', rec.serviceNumber ?? '—'),
      ...fact('Duration', clock(rec.durationMs)),
      ...fact('Status', rec.status),
      ...fact('Hold', rec.hold ? `held${rec.hold.until ? ` until ${localTime(rec.hold.until)}` : ''}: ${rec.hold.reason}` : 'none'),
      ...fact('Audio kept until', rec.retention ? localTime(rec.retention.audioExpiresAt) : '—'),
    ]);
    this.el = h('section', { class: 'player', 'aria-labelledby': 'player-title', 'data-testid': 'player', 'data-recording': rec.id }, [
      head,
      facts,
      actionsFor(rec, me, { reason: () => this.reason, changed: this.hooks.changed }),
    ]);

    this.audio.addEventListener('timeupdate', () => this.showPosition());
    this.audio.addEventListener('seeked', () => this.showPosition());
    this.audio.addEventListener('play', () => this.playing(true));
    this.audio.addEventListener('pause', () => this.playing(false));
    this.audio.addEventListener('ended', () => this.playing(false));
    this.audio.addEventListener('error', () => announce('The audio could not be loaded.', 'error'));
    window.addEventListener('resize', this.resize);
  }

  /** Puts the player on the page: asks for a reason first where the caller's role needs one. */
  open(): void {
    if (this.rec.audioPurgedAt) {
      this.el.append(h('p', { class: 'note' }, [`The audio was destroyed on ${localTime(this.rec.audioPurgedAt)}; only the metadata is kept.`]));
      return;
    }
    if (allowed(this.me, 'audio', this.rec) === 'reason-required') {
      const input = h('input', { id: 'access-reason', name: 'reason', required: true, autocomplete: 'off', maxlength: 500, value: this.suggestedReason });
      const form = h('form', { class: 'reason' }, [
        h('label', { for: 'access-reason' }, ['Reason for listening (written to the audit log)']),
        input,
        h('button', { type: 'submit' }, ['Open the recording']),
      ], {
        submit: (e) => {
          e.preventDefault();
          const v = input.value.trim();
          if (!v) return;
          this.reason = v;
          form.replaceWith(this.body);
          void this.load();
        },
      });
      this.el.append(form);
      return;
    }
    this.el.append(this.body);
    void this.load();
  }

  private async load(): Promise<void> {
    this.audio.src = audioUrl(this.rec.id, this.reason ? { reason: this.reason } : {});
    this.redraw();
    try {
      const peaks = await call<Peaks>('GET', `/recordings/${encodeURIComponent(this.rec.id)}/peaks`, this.reason ? { reason: this.reason } : {});
      const scale = peakScale(peaks.channels);
      CHANNELS.forEach((ch, i) => {
        const p = peaks.channels.find((c) => c.role === ch) ?? peaks.channels[i] ?? null;
        this.waves.get(ch)!.setPeaks(p, peaks.intervalMs, peaks.durationMs || this.durationMs, scale);
      });
      this.slider.dataset.peaks = 'loaded';
    } catch (e) {
      announce(e instanceof ApiFailure ? `Waveform: ${e.message}` : 'The waveform could not be loaded.', 'error');
    }
  }

  private track(ch: Channel): HTMLElement {
    const canvas = h('canvas', { class: 'wave', 'aria-hidden': 'true' });
    this.waves.set(ch, new Waveform(canvas));
    const solo = h('button', { type: 'button', class: 'solo', 'aria-pressed': 'false', 'data-testid': `solo-${ch}` }, ['Solo'], { click: () => this.flip(this.solo, ch) });
    const mute = h('button', { type: 'button', class: 'mute', 'aria-pressed': 'false', 'data-testid': `mute-${ch}` }, ['Mute'], { click: () => this.flip(this.muted, ch) });
    const row = h('div', { class: 'channel', 'data-channel': ch, 'data-audible': 'true', 'data-gain': '1' }, [
      h('span', { class: 'channel-name' }, [`${NAMES[ch]} (${ch === 'customer' ? 'left' : 'right'})`]),
      solo,
      mute,
    ]);
    solo.setAttribute('aria-label', `Solo the ${ch} channel`);
    mute.setAttribute('aria-label', `Mute the ${ch} channel`);
    this.toggles.set(ch, { solo, mute, row });
    return h('div', { class: 'track', 'data-channel': ch }, [h('span', { class: 'track-name', 'aria-hidden': 'true' }, [NAMES[ch]]), canvas, h('div', { class: 'marks', 'aria-hidden': 'true' })]);
  }

  private flip(set: Set<Channel>, ch: Channel): void {
    if (set.has(ch)) set.delete(ch);
    else set.add(ch);
    this.applyMix();
  }

  private applyMix(): void {
    const state = { solo: this.solo, muted: this.muted };
    this.mixer.apply(state);
    for (const ch of CHANNELS) {
      const t = this.toggles.get(ch)!;
      setPressed(t.solo, this.solo.has(ch));
      setPressed(t.mute, this.muted.has(ch));
      const on = audible(state, ch);
      t.row.dataset.audible = String(on);
      t.row.dataset.gain = String(this.mixer.gainOf(ch) * (on ? 1 : 0));
      this.waves.get(ch)!.setSilenced(!on);
    }
  }

  private async toggle(): Promise<void> {
    if (!this.audio.paused) {
      this.audio.pause();
      return;
    }
    try {
      await this.mixer.start();
      this.applyMix();
      await this.audio.play();
    } catch (e) {
      announce(e instanceof Error ? `Cannot play: ${e.message}` : 'Cannot play.', 'error');
    }
  }

  private playing(on: boolean): void {
    this.playButton.textContent = on ? 'Pause' : 'Play';
    this.playButton.setAttribute('aria-label', on ? 'Pause' : 'Play');
    cancelAnimationFrame(this.frame);
    if (on) {
      const tick = (): void => {
        this.showPosition();
        this.frame = requestAnimationFrame(tick);
      };
      this.frame = requestAnimationFrame(tick);
    }
  }

  private positionMs(): number {
    return this.audio.currentTime * 1000;
  }

  private seekTo(ms: number): void {
    const t = Math.min(Math.max(0, ms), this.durationMs) / 1000;
    this.audio.currentTime = t;
    this.showPosition(t * 1000);
  }

  private seekBy(deltaMs: number): void {
    this.seekTo(this.positionMs() + deltaMs);
  }

  private seekToPointer(e: MouseEvent): void {
    const box = this.slider.getBoundingClientRect();
    if (box.width <= 0) return;
    this.seekTo(((e.clientX - box.left) / box.width) * this.durationMs);
  }

  private onKey(e: KeyboardEvent): void {
    const moves: Record<string, () => void> = {
      ArrowLeft: () => this.seekBy(e.shiftKey ? -1000 : -STEP_MS),
      ArrowDown: () => this.seekBy(e.shiftKey ? -1000 : -STEP_MS),
      ArrowRight: () => this.seekBy(e.shiftKey ? 1000 : STEP_MS),
      ArrowUp: () => this.seekBy(e.shiftKey ? 1000 : STEP_MS),
      PageDown: () => this.seekBy(-PAGE_MS),
      PageUp: () => this.seekBy(PAGE_MS),
      Home: () => this.seekTo(0),
      End: () => this.seekTo(this.durationMs),
      ' ': () => void this.toggle(),
      k: () => void this.toggle(),
    };
    const f = moves[e.key];
    if (!f) return;
    e.preventDefault();
    f();
  }

  private showPosition(ms = this.positionMs()): void {
    const frac = this.durationMs > 0 ? Math.min(1, ms / this.durationMs) : 0;
    this.playhead.style.left = pct(frac);
    for (const w of this.waves.values()) w.setProgress(frac);
    this.timeText.textContent = `${clock(ms)} / ${clock(this.durationMs)}`;
    this.slider.setAttribute('aria-valuenow', String(Math.round(ms / 1000)));
    this.slider.setAttribute('aria-valuetext', `${spokenDuration(ms)} of ${spokenDuration(this.durationMs)}`);
  }

  /** The marks drawn over each waveform: pauses as bands, DTMF and join/leave as ticks. */
  private placeMarks(marks: readonly Mark[]): void {
    for (const ch of CHANNELS) {
      const layer = this.slider.querySelector(`.track[data-channel="${ch}"] .marks`)!;
      for (const m of marks) {
        if (m.channel !== undefined && m.channel !== ch) continue;
        const el = h('span', { class: `mark mark-${m.kind}`, title: m.label, 'data-kind': m.kind }, [m.glyph]);
        el.style.left = pct(m.atMs / this.durationMs);
        if (m.endMs !== undefined) el.style.width = pct((m.endMs - m.atMs) / this.durationMs);
        layer.append(el);
      }
    }
  }

  private markList(marks: readonly Mark[]): HTMLElement {
    if (marks.length === 0) return h('p', { class: 'note' }, ['No pauses, DTMF or participant changes.']);
    return h('div', { class: 'marklist' }, [
      h('h3', {}, ['On the timeline']),
      h('ul', {}, marks.map((m) => h('li', { 'data-kind': m.kind }, [
        h('button', { type: 'button', class: 'link' }, [m.label], { click: () => this.seekTo(m.atMs) }),
      ]))),
    ]);
  }

  private participants(): HTMLElement {
    return h('div', { class: 'people' }, [
      h('h3', {}, ['Participants']),
      h('ul', {}, presence(this.rec).map((p) => h('li', {}, [`${p.who}: ${p.from}–${p.to}`]))),
    ]);
  }

  redraw(): void {
    for (const w of this.waves.values()) w.draw();
  }

  destroy(): void {
    cancelAnimationFrame(this.frame);
    window.removeEventListener('resize', this.resize);
    this.audio.pause();
    this.audio.removeAttribute('src');
    this.audio.load();
    void this.mixer.close();
    this.el.remove();
  }
}

function fact(name: string, value: string): HTMLElement[] {
  return [h('dt', {}, [name]), h('dd', {}, [value])];
}

function pct(f: number): string {
  return `${(Math.min(1, Math.max(0, f)) * 100).toFixed(3)}%`;
}

