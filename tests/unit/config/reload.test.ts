/** The reload table drives both the diff check-config shows and the live merge. */
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../../src/config/load.js';
import { describeConfig, diffConfig } from '../../../src/config/describe.js';
import { RELOAD_TABLE, isReloadable, mergeReload } from '../../../src/config/reload.js';

const BEFORE = `
[sip]
listen = ["udp:127.0.0.1:5060"]
[rtp]
port_min = 20000
port_max = 20099
inactivity_timeout = "60s"
[storage]
dir = "/var/lib/tallenne"
min_free = "1GiB"
[calls]
max_concurrent = 10
[encoder]
workers = 2
[tls]
certificate_file = "/etc/tallenne/tls/2025.crt"
key_file = "/etc/tallenne/tls/2025.key"
ca_file = "/etc/tallenne/tls/ca-2025.crt"
[http.tls]
mode = "own"
certificate_file = "/etc/tallenne/web/2025.crt"
key_file = "/etc/tallenne/web/2025.key"
ca_file = "/etc/tallenne/web/ca-2025.crt"
require_client_certificate = true
allowed_client_names = ["prometheus"]
`;

/** Every reloadable key changed, and one key of every kind that needs a restart. */
const AFTER = `
[sip]
listen = ["udp:127.0.0.1:5070"]
[rtp]
port_min = 20000
port_max = 20199
inactivity_timeout = "5s"
[storage]
dir = "/var/lib/tallenne"
min_free = "2GiB"
[calls]
max_concurrent = 3
shutdown_deadline = "9s"
[encoder]
workers = 4
complexity = 9
bitrate = 32000
skip_silence = false
[privacy]
mask_dtmf = true
mask_digits = 4
[roles]
service_numbers = ["+358201234567"]
internal_pattern = "^2\\\\d{3}$"
[[agents]]
id = "aino"
name = "Aino"
extensions = ["2001"]
[retention]
audio = "1 month"
purge_interval = "10m"
[[retention.policy]]
name = "complaints"
match = { service_number = "+358201234567" }
audio = "1 year"
metadata = "1 year"
[log]
level = "warn"
[api]
max_export = 3
rate_limit = 600
login_rate_limit = 2
[access]
review_after = "30 days"
[tls]
certificate_file = "/etc/tallenne/tls/2026.crt"
key_file = "/etc/tallenne/tls/2026.key"
ca_file = "/etc/tallenne/tls/ca-2026.crt"
[http.tls]
mode = "own"
certificate_file = "/etc/tallenne/web/2026.crt"
key_file = "/etc/tallenne/web/2026.key"
ca_file = "/etc/tallenne/web/ca-2026.crt"
require_client_certificate = true
allowed_client_names = ["prometheus", "grafana"]
hsts_max_age = "30 days"
`;

const load = (text: string) => parseConfigText(text, '/etc/tallenne/tallenne.toml').config;

describe('the reload table', () => {
  const before = load(BEFORE);
  const after = load(AFTER);
  const changes = diffConfig(describeConfig(before), describeConfig(after));

  it('lists keys that exist in the schema', () => {
    const described = describeConfig(before);
    for (const { path } of RELOAD_TABLE) {
      const v = path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)?.[k], described);
      expect(v, path).not.toBeUndefined();
    }
  });

  it('marks each change of the diff as reloadable or needing a restart', () => {
    const restart = changes.filter((c) => !c.reloadable).map((c) => c.path).sort();
    expect(restart).toEqual(['encoder.workers', 'privacy.mask_digits', 'rtp.port_max', 'sip.listen']);
    const reloaded = changes.filter((c) => c.reloadable).map((c) => c.path);
    for (const { path } of RELOAD_TABLE) expect(reloaded.some((p) => isReloadable(p) && (p === path || p.startsWith(`${path}.`) || p.startsWith(`${path}[`))), path).toBe(true);
  });

  it('the merge takes every reloadable key from the new file and keeps the rest', () => {
    const merged = mergeReload(before, after);
    const left = diffConfig(describeConfig(merged), describeConfig(after)).map((c) => c.path).sort();
    expect(left).toEqual(['encoder.workers', 'privacy.mask_digits', 'rtp.port_max', 'sip.listen']);
    expect(diffConfig(describeConfig(before), describeConfig(merged)).every((c) => c.reloadable)).toBe(true);
    expect(merged.rtp.inactivity_timeout.ms).toBe(5000);
    expect(merged.roles.internal_pattern.test('2001')).toBe(true);
    expect(Object.isFrozen(merged) && Object.isFrozen(merged.encoder) && Object.isFrozen(merged.sip)).toBe(true);
    expect(Object.isFrozen(before.encoder)).toBe(true);
    expect(before.encoder.complexity).toBe(5);
  });
});
