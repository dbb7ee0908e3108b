/**
 * Published test vectors: RFC 3711 Appendix B.2 (AES-CM keystream) and B.3 (key
 * derivation), the libsrtp reference packets for AES_CM_128_HMAC_SHA1_80 (RTP and SRTCP,
 * same master key as B.3), and RFC 7714 §16–17 (AES-GCM 128 and 256, RTP and SRTCP,
 * encrypted and authentication-only).
 */
import { describe, it, expect } from 'vitest';
import { AesCmKeystream, deriveSessionKey, KDF_LABEL } from '../../../src/rtp/srtp-cipher.js';
import { SrtpSession, type SrtpResult } from '../../../src/rtp/srtp.js';
import type { SrtpSuiteName } from '../../../src/rtp/srtp-suites.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function plainOf(r: SrtpResult): string {
  if (!r.ok) throw new Error(`dropped: ${r.reason}`);
  return r.packet.toString('hex');
}

describe('RFC 3711 B.2: AES-CM keystream', () => {
  it('gives the tabulated blocks at the start and the end of the segment', () => {
    const cm = new AesCmKeystream(hex('2B7E151628AED2A6ABF7158809CF4F3C'));
    const iv = hex('F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000');
    const segment = Buffer.alloc(1_044_512);
    cm.xor(iv, segment, 0, segment.length);
    expect(segment.subarray(0, 48).toString('hex').toUpperCase()).toBe(
      'E03EAD0935C95E80E166B16DD92B4EB4' + 'D23513162B02D0F72A43A2FE4A5F97AB' + '41E95B3BB0A2E8DD477901E4FCA894C0',
    );
    expect(segment.subarray(0xfeff * 16, 0xff02 * 16).toString('hex').toUpperCase()).toBe(
      'EC8CDF7398607CB0F2D21675EA9EA1E4' + '362B7C3C6773516318A077D7FC5073AE' + '6A2CC3787889374FBEB4C81B17BA6C44',
    );
  });

  it('applied twice restores the data, and leaves bytes outside the range alone', () => {
    const cm = new AesCmKeystream(hex('2B7E151628AED2A6ABF7158809CF4F3C'));
    const iv = hex('F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000');
    const data = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz');
    const copy = Buffer.from(data);
    cm.xor(iv, data, 4, 30);
    expect(data.subarray(0, 4)).toEqual(copy.subarray(0, 4));
    expect(data.subarray(30)).toEqual(copy.subarray(30));
    expect(data.subarray(4, 30)).not.toEqual(copy.subarray(4, 30));
    cm.xor(iv, data, 4, 30);
    expect(data).toEqual(copy);
  });
});

describe('RFC 3711 B.3: key derivation', () => {
  const prf = new AesCmKeystream(hex('E1F97A0D3E018BE0D64FA32C06DE4139'));
  const salt = hex('0EC675AD498AFEEBB6960B3AABE6');

  it('derives the cipher key, cipher salt and the 94-octet auth key stream', () => {
    expect(deriveSessionKey(prf, salt, KDF_LABEL.srtpEncryption, 0, 16).toString('hex').toUpperCase()).toBe(
      'C61E7A93744F39EE10734AFE3FF7A087',
    );
    expect(deriveSessionKey(prf, salt, KDF_LABEL.srtpSalt, 0, 14).toString('hex').toUpperCase()).toBe(
      '30CBBC08863D8C85D49DB34A9AE1',
    );
    expect(deriveSessionKey(prf, salt, KDF_LABEL.srtpAuth, 0, 94).toString('hex').toUpperCase()).toBe(
      'CEBE321F6FF7716B6FD4AB49AF256A15' + '6D38BAA48F0A0ACF3C34E2359E6CDBCE' + 'E049646C43D9327AD175578EF7227098' +
        '6371C10C9A369AC2F94A8C5FBCDDDC25' + '6D6E919A48B610EF17C2041E47403576' + '6B68642C59BBFC2F34DB60DBDFB2',
    );
  });

  it('a non-zero r (key derivation rate) changes the keys', () => {
    const k0 = deriveSessionKey(prf, salt, KDF_LABEL.srtpEncryption, 0, 16);
    const k1 = deriveSessionKey(prf, salt, KDF_LABEL.srtpEncryption, 1, 16);
    const kBig = deriveSessionKey(prf, salt, KDF_LABEL.srtpEncryption, 2 ** 40 + 5, 16);
    expect(k1).not.toEqual(k0);
    expect(kBig).not.toEqual(k1);
  });
});

describe('libsrtp reference packets (AES_CM_128_HMAC_SHA1_80, B.3 master key)', () => {
  const policy = {
    suite: 'AES_CM_128_HMAC_SHA1_80' as const,
    keys: [{ key: hex('E1F97A0D3E018BE0D64FA32C06DE4139'), salt: hex('0EC675AD498AFEEBB6960B3AABE6') }],
  };
  const rtp = '800f1234decafbadcafebabe' + 'ab'.repeat(16);
  const srtp = '800f1234decafbadcafebabe4e55dc4ce79978d88ca4d215949d2402b78d6acc99ea179b8dbb';
  const rtcp = '81c8000bcafebabe' + 'ab'.repeat(16);
  const srtcp = '81c8000bcafebabe7128035be487b9bdbef89041f977a5a880000001993e08cd54d6c1230798';

  it('protects RTP and SRTCP to the reference bytes', () => {
    const tx = new SrtpSession(policy);
    expect(tx.protectRtp(hex(rtp)).toString('hex')).toBe(srtp);
    expect(tx.protectRtcp(hex(rtcp)).toString('hex')).toBe(srtcp);
  });

  it('unprotects the reference bytes to the plain packets', () => {
    const rx = new SrtpSession(policy);
    expect(plainOf(rx.unprotectRtp(hex(srtp)))).toBe(rtp);
    expect(plainOf(rx.unprotectRtcp(hex(srtcp)))).toBe(rtcp);
  });
});

/** RFC 7714 §16 (RTP) and §17 (RTCP): session keys given directly, SRTCP index 0x5d4. */
const GCM_VECTORS: readonly {
  suite: SrtpSuiteName;
  key: string;
  srtp: string;
  srtpAuthOnly: string;
  srtcp: string;
  srtcpAuthOnly: string;
}[] = [
  {
    suite: 'AEAD_AES_128_GCM',
    key: '000102030405060708090a0b0c0d0e0f',
    srtp: `8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca be633bd5
           0d294e6f 42a5f47a 51c7d19b 36de3adf 8833899d 7f27beb1 6a9152cf 765ee439 0cce`,
    srtpAuthOnly: `8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973 20646976
           69736120 696e2070 61727465 73207472 65732249 3f82d2bc e397e9d7 9e3b19aa 4216`,
    srtcp: `81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99 7ff5c0f7 6c06f32d
            c676a5f1 730d6fda 4ce09b46 86303ded 0bb9275b c84aa458 96cf4d2f c5abf872 45d9eade 800005d4`,
    srtcpAuthOnly: `81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61
            deadbeef deadbeef deadbeef deadbeef deadbeef 841dd968 3dd78ec9 2ae58790 125f62b3 000005d4`,
  },
  {
    suite: 'AEAD_AES_256_GCM',
    key: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
    srtp: `8040f17b 8041f8d3 5501a0b2 32b1de78 a822fe12 ef9f78fa 332e33aa b1801238
           9a58e2f3 b50b2a02 76ffae0f 1ba63799 b87b7aa3 db36dfff d6b0f9bb 7878d7a7 6c13`,
    srtpAuthOnly: `8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973 20646976
           69736120 696e2070 61727465 73207472 6573a866 d5910f88 7463067c eefec452 15d4`,
    srtcp: `81c8000d 4d617273 d50ae4d1 f5ce5d30 4ba297e4 7d470c28 2c3ece5d bffe0a50
            a2eaa5c1 110555be 8415f658 c61de047 6f1b6fad 1d1eb30c 4446839f 57ff6f6c b26ac3be 800005d4`,
    srtcpAuthOnly: `81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61
            deadbeef deadbeef deadbeef deadbeef deadbeef 91db4afb feee5a97 8fab4393 ed2615fe 000005d4`,
  },
];

const GCM_RTP = `8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973 20646976
                 69736120 696e2070 61727465 73207472 6573`;
const GCM_RTCP = `81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61
                  deadbeef deadbeef deadbeef deadbeef deadbeef`;
const GCM_SALT = '517569642070726f2071756f';

describe('RFC 7714 §16–17: AEAD AES-GCM', () => {
  for (const v of GCM_VECTORS) {
    for (const authOnly of [false, true]) {
      const label = `${v.suite}${authOnly ? ' with UNENCRYPTED_SRTP/SRTCP' : ''}`;
      const session = (): SrtpSession => {
        const keys = { key: hex(v.key), salt: hex(GCM_SALT), auth: Buffer.alloc(0) };
        return SrtpSession.withSessionKeys(
          { suite: v.suite, unencryptedSrtp: authOnly, unencryptedSrtcp: authOnly },
          keys,
          keys,
        );
      };
      const wireRtp = authOnly ? v.srtpAuthOnly : v.srtp;
      const wireRtcp = authOnly ? v.srtcpAuthOnly : v.srtcp;

      it(`${label}: protect gives the RFC bytes`, () => {
        const tx = session();
        expect(tx.protectRtp(hex(GCM_RTP)).toString('hex')).toBe(hex(wireRtp).toString('hex'));
        expect(tx.protectRtcp(hex(GCM_RTCP), 0, 0x5d4).toString('hex')).toBe(hex(wireRtcp).toString('hex'));
      });

      it(`${label}: unprotect gives the plain packets, a flipped bit is refused`, () => {
        const rx = session();
        expect(plainOf(rx.unprotectRtp(hex(wireRtp)))).toBe(hex(GCM_RTP).toString('hex'));
        expect(plainOf(rx.unprotectRtcp(hex(wireRtcp)))).toBe(hex(GCM_RTCP).toString('hex'));
        const bad = hex(wireRtp);
        bad[20]! ^= 0x01;
        expect(session().unprotectRtp(bad)).toEqual({ ok: false, reason: 'auth_failed' });
      });
    }
  }
});
