import { describe, it, expect } from 'vitest';
import {
  CODEC_IMPAIRMENT,
  DEFAULT_NETWORK_DELAY_MS,
  delayImpairment,
  effectiveEquipmentImpairment,
  estimateQuality,
  G711_NO_PLC,
  IS,
  listenerEchoImpairment,
  mosFromR,
  oneWayDelayMs,
  pureDelayImpairment,
  RO,
  talkerEchoImpairment,
} from '../../../src/quality/emodel.js';

const within = (actual: number, expected: number, tol = 0.1): void => {
  expect(Math.abs(actual - expected), `${actual} vs ${expected}`).toBeLessThanOrEqual(tol);
};

describe('G.107 E-model: the worked examples', () => {
  it('gives the default R of 93.2 and a MOS of 4.41 with no delay and no loss', () => {
    const r = RO - IS - delayImpairment(0);
    within(r, 93.2);
    within(mosFromR(r), 4.41, 0.01);
  });

  it('maps R to MOS at the G.109 category boundaries (R 90/80/70/60/50 → 4.34/4.03/3.60/3.10/2.58)', () => {
    for (const [r, mos] of [[90, 4.34], [80, 4.03], [70, 3.6], [60, 3.1], [50, 2.58]] as const) within(mosFromR(r), mos, 0.01);
    expect(mosFromR(-5)).toBe(1);
    expect(mosFromR(0)).toBe(1);
    expect(mosFromR(100)).toBe(4.5);
    expect(mosFromR(120)).toBe(4.5);
  });

  it('has no talker echo at T = 0 and the default listener echo term of about 0.15', () => {
    expect(talkerEchoImpairment(0)).toBe(0);
    within(listenerEchoImpairment(0), 0.15, 0.01);
    expect(pureDelayImpairment(100)).toBe(0);
  });

  it('follows the published delay curve (Cole and Rosenbluth fit of G.107: Id ≈ 0.024d + 0.11(d − 177.3) above 177.3 ms)', () => {
    const fit = (d: number): number => 0.024 * d + (d > 177.3 ? 0.11 * (d - 177.3) : 0);
    const r0 = RO - IS - delayImpairment(0);
    for (const d of [100, 150, 200, 300]) within(mosFromR(RO - IS - delayImpairment(d)), mosFromR(r0 - fit(d)));
    // Pure delay alone at 200 ms (X = 1): 25·(2^(1/6) − 3·(1 + 3^−6)^(1/6) + 2) ≈ 3.04.
    within(pureDelayImpairment(200), 3.04, 0.01);
  });

  it('gives the default-path R and MOS for one-way delays of 150, 200, 300 and 400 ms', () => {
    const cases = [[150, 89.5, 4.33], [200, 85.8, 4.22], [300, 72.7, 3.72], [400, 62.2, 3.21]] as const;
    for (const [ta, r, mos] of cases) {
      const got = RO - IS - delayImpairment(ta);
      within(got, r);
      within(mosFromR(got), mos);
    }
  });

  it('computes Ie,eff with the G.113 Appendix I values for G.711 (Bpl 25.1 concealed, 4.3 not)', () => {
    const plc = CODEC_IMPAIRMENT.PCMU!;
    expect(plc).toEqual({ ie: 0, bpl: 25.1 });
    expect(CODEC_IMPAIRMENT.PCMA).toEqual(plc);
    // 1 % random loss with concealment: 95·1/(1 + 25.1) = 3.64; R = 89.55, MOS 4.33.
    within(effectiveEquipmentImpairment(plc, 1), 3.64, 0.01);
    within(mosFromR(RO - IS - delayImpairment(0) - effectiveEquipmentImpairment(plc, 1)), 4.33);
    // 5 % with concealment: 15.78, MOS 3.92.
    within(mosFromR(RO - IS - delayImpairment(0) - effectiveEquipmentImpairment(plc, 5)), 3.92);
    // 2 % without concealment: 95·2/(2 + 4.3) = 30.16; R = 63.03, MOS 3.26.
    within(effectiveEquipmentImpairment(G711_NO_PLC, 2), 30.16, 0.01);
    within(mosFromR(RO - IS - delayImpairment(0) - effectiveEquipmentImpairment(G711_NO_PLC, 2)), 3.26);
    // Total loss leaves Ie,eff at 95 − (95 − Ie)·Bpl/(100 + Bpl), never more than 95.
    expect(effectiveEquipmentImpairment(plc, 100)).toBeLessThan(95);
    // Bursty loss (BurstR > 1) hurts more than the same random loss.
    expect(effectiveEquipmentImpairment(plc, 2, 2)).toBeGreaterThan(effectiveEquipmentImpairment(plc, 2));
  });
});

describe('estimateQuality (one leg)', () => {
  it('adds network, packetisation and twice the jitter for the one-way delay', () => {
    expect(oneWayDelayMs({ jitterMs: 5, packetMs: 20 })).toBe(DEFAULT_NETWORK_DELAY_MS + 20 + 10);
    expect(oneWayDelayMs({ jitterMs: 5, packetMs: 20, networkMs: 100 })).toBe(130);
  });

  it('rates a clean G.711 leg near the default and a lossy, jittery one lower', () => {
    const clean = estimateQuality({ codec: 'PCMA', packets: 1000, lost: 0, jitterMs: 1, packetMs: 20 })!;
    within(clean.mos, 4.4);
    expect(clean.delayMs).toBe(42);
    const bad = estimateQuality({ codec: 'PCMA', packets: 950, lost: 50, jitterMs: 60, packetMs: 20 })!;
    // 5 % loss (Ie,eff 15.78) and 160 ms of delay.
    const expected = mosFromR(RO - IS - delayImpairment(160) - effectiveEquipmentImpairment(CODEC_IMPAIRMENT.PCMA!, 5));
    within(bad.mos, expected, 1e-9);
    expect(bad.mos).toBeLessThan(clean.mos - 0.4);
  });

  it('has nothing to rate on a leg without audio', () => {
    expect(estimateQuality({ codec: 'none', packets: 0, lost: 0, jitterMs: 0, packetMs: 20 })).toBeUndefined();
    expect(estimateQuality({ codec: 'PCMU', packets: 0, lost: 0, jitterMs: 0, packetMs: 20 })).toBeUndefined();
    expect(estimateQuality({ codec: 'TELEPHONE-EVENT', packets: 10, lost: 0, jitterMs: 0, packetMs: 20 })).toBeUndefined();
  });
});
