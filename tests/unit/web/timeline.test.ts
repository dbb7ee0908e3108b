/** The page's pure parts: time formats, timeline marks, waveform columns and the solo/mute rule. */
import { describe, expect, it } from 'vitest';
import { clock, spokenDuration, fromLocalInput } from '../../../web/src/format.js';
import { marksOf, presence, MASKED_DTMF } from '../../../web/src/marks.js';
import { columnsOf, peakScale } from '../../../web/src/peaks.js';
import { audible, CHANNELS, type MixState } from '../../../web/src/mix.js';
import type { Recording } from '../../../web/src/types.js';

function recording(over: Partial<Recording> = {}): Recording {
  return {
    id: '01J0000000000000000000000A', startedAt: '2026-11-24T09:00:00.000Z', endedAt: '2026-11-24T09:00:08.000Z', durationMs: 8000,
    status: 'complete', customerNumber: '+358401234***', serviceNumber: null, agent: 'Aino Agentti', agentId: 'aino', team: 'helpdesk',
    direction: 'inbound', file: 'recordings/x.opus', fileBytes: 1000, channels: 2, sampleRate: 48000, endReason: 'bye', siprec: true,
    siprecSessionId: null, groupId: null,
    participants: [
      { id: 'c', role: 'customer', number: '+358401234***', sends: ['1'] },
      { id: 'a', role: 'agent', agentId: 'aino', agentName: 'Aino Agentti', sends: ['2'], joinedMs: 500, leftMs: 7000 },
    ],
    legs: [
      { index: 0, role: 'customer', codec: 'PCMU', packets: 400, lost: 0, ssrcs: 1, jitterMs: 0 },
      { index: 1, role: 'agent', codec: 'PCMU', packets: 400, lost: 0, ssrcs: 1, jitterMs: 0 },
    ],
    pauses: [], dtmf: [], retention: null, hold: null, audioPurgedAt: null,
    ...over,
  };
}

describe('format', () => {
  it('writes positions as m:ss, and h:mm:ss from an hour', () => {
    expect(clock(0)).toBe('0:00');
    expect(clock(999)).toBe('0:00');
    expect(clock(83_400)).toBe('1:23');
    expect(clock(3_723_000)).toBe('1:02:03');
    expect(clock(-5)).toBe('0:00');
  });
  it('speaks durations in words', () => {
    expect(spokenDuration(1000)).toBe('1 second');
    expect(spokenDuration(83_400)).toBe('1 minute 23 seconds');
    expect(spokenDuration(120_000)).toBe('2 minutes 0 seconds');
  });
  it('turns an empty or broken date input into no filter', () => {
    expect(fromLocalInput('')).toBeUndefined();
    expect(fromLocalInput('not a date')).toBeUndefined();
    expect(fromLocalInput('2026-11-24T09:30')).toBe(new Date('2026-11-24T09:30').toISOString());
  });
});

describe('marksOf', () => {
  it('gives pauses, DTMF and join/leave in time order, each with its channel', () => {
    const r = recording({
      pauses: [{ startMs: 3000, endMs: 5000 }],
      dtmf: [{ atMs: 1000, durationMs: 200, digit: '5', leg: 1 }, { atMs: 6000, durationMs: 200, digit: MASKED_DTMF, leg: 0 }],
    });
    expect(marksOf(r).map((m) => [m.kind, m.atMs, m.channel ?? null, m.glyph])).toEqual([
      ['join', 500, 'agent', ''],
      ['dtmf', 1000, 'agent', '5'],
      ['pause', 3000, null, ''],
      ['dtmf', 6000, 'customer', '•'],
      ['leave', 7000, 'agent', ''],
    ]);
    const labels = marksOf(r).map((m) => m.label);
    expect(labels).toContain('Recording paused 0:03–0:05');
    expect(labels).toContain('DTMF digit (masked) at 0:06 from the customer');
    expect(labels).toContain('DTMF digit 5 at 0:01 from the agent');
    expect(labels).toContain('Aino Agentti joined at 0:00');
    // The masked form never shows as a key.
    expect(labels.join(' ')).not.toContain(MASKED_DTMF);
  });
  it('runs a pause still open at the end to the end of the call', () => {
    const [m] = marksOf(recording({ pauses: [{ startMs: 6000 }], participants: [] }));
    expect(m).toMatchObject({ kind: 'pause', atMs: 6000, endMs: 8000 });
  });
  it('lists each participant from join (or the start) to leave (or the end)', () => {
    expect(presence(recording())).toEqual([
      { who: 'customer +358401234***', role: 'customer', from: '0:00', to: '0:08' },
      { who: 'Aino Agentti', role: 'agent', from: '0:00', to: '0:07' },
    ]);
  });
});

describe('peaks', () => {
  it('scales to the loudest peak, at most 8× up', () => {
    expect(peakScale([{ min: [-0.25, -0.1], max: [0.2, 0.5] }])).toBe(0.5);
    expect(peakScale([{ min: [-0.01], max: [0.01] }])).toBe(1 / 8);
    expect(peakScale([{ min: [-1], max: [1] }])).toBe(1);
  });
  it('reduces peaks to columns keeping each column\'s extremes', () => {
    // 8 intervals of 20 ms = 160 ms, drawn in 4 columns of 40 ms.
    const p = { min: [-0.1, -0.5, 0, 0, -0.2, -0.2, 0, -1], max: [0.1, 0.4, 0, 0, 0.3, 0.1, 0.9, 0] };
    expect(columnsOf(p, 4, 20, 160, 1)).toEqual([[-0.5, 0.4], [0, 0], [-0.2, 0.3], [-1, 0.9]]);
    expect(columnsOf(p, 4, 20, 160, 0.5)).toEqual([[-1, 0.8], [0, 0], [-0.4, 0.6], [-1, 1]]);
    // More columns than peaks: each column shows the peak under it.
    expect(columnsOf({ min: [-0.5, -0.25], max: [0.5, 0.25] }, 4, 20, 40, 1)).toEqual([[-0.5, 0.5], [-0.5, 0.5], [-0.25, 0.25], [-0.25, 0.25]]);
  });
});

describe('solo and mute', () => {
  const heard = (solo: string[], muted: string[]): string[] => {
    const s = { solo: new Set(solo), muted: new Set(muted) } as MixState;
    return CHANNELS.filter((ch) => audible(s, ch));
  };
  it('plays every channel not muted while nothing is solo', () => {
    expect(heard([], [])).toEqual(['customer', 'agent']);
    expect(heard([], ['customer'])).toEqual(['agent']);
    expect(heard([], ['customer', 'agent'])).toEqual([]);
  });
  it('plays only the solo channels, muted or not', () => {
    expect(heard(['agent'], [])).toEqual(['agent']);
    expect(heard(['agent'], ['agent'])).toEqual(['agent']);
    expect(heard(['agent', 'customer'], ['customer'])).toEqual(['customer', 'agent']);
  });
});
