/**
 * The README's table of security metrics names only what the code counts: each metric is
 * registered in src/, and each label value it lists is a value the code uses (a string
 * literal, an error code, or an SRTP drop reason with its `srtp_` prefix).
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DROP_REASONS } from '../../../src/rtp/counters.js';

const ROOT = new URL('../../../', import.meta.url).pathname;

function sources(dir: string): string {
  return readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? readFileSync(join(dir, e.name), 'utf8') : '')).join('\n');
}

/** The rows of the README's "Security metrics" table: metric name and label values. */
function rows(): Array<{ metric: string; values: string[] }> {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('### Security metrics');
  const section = readme.slice(start, readme.indexOf('\n### ', start + 1));
  return section.split('\n').filter((l) => l.startsWith('| `tallenne_')).map((l) => {
    const cell = /^\| `([^`]+)`/.exec(l)![1]!;
    const metric = cell.split('{')[0]!;
    const values = [...cell.matchAll(/"([^"]+)"/g)].map((m) => m[1]!);
    return { metric, values };
  });
}

describe('the README security metrics', () => {
  const src = sources(join(ROOT, 'src'));
  const table = rows();

  it('lists the defences: SIP sources and rates, TLS on both listeners, SRTP, RTP sources, API credentials', () => {
    const all = table.flatMap((r) => r.values.map((v) => `${r.metric}:${v}`));
    for (const want of [
      'tallenne_sip_refused_total:source', 'tallenne_sip_refused_total:invite_rate', 'tallenne_sip_refused_total:tls_handshake',
      'tallenne_http_connections_refused_total:tls_handshake', 'tallenne_rtp_packets_dropped_total:srtp_auth_failed',
      'tallenne_rtp_packets_dropped_total:srtp_replayed', 'tallenne_rtp_packets_dropped_total:wrong_source',
      'tallenne_api_errors_total:API_INVALID_TOKEN',
    ]) expect(all).toContain(want);
  });

  it.each(rows().map((r) => [r.metric, r] as const))('%s is registered, with the label values the README gives', (_name, row) => {
    expect(src).toContain(`name: '${row.metric}'`);
    for (const v of row.values) {
      const used = src.includes(`'${v}'`) || new RegExp(`\\b${v}:`).test(src) || (row.metric === 'tallenne_rtp_packets_dropped_total' && (DROP_REASONS as readonly string[]).includes(v));
      expect(used, `${row.metric}{${v}}`).toBe(true);
    }
  });
});
