/**
 * The operations files in deploy/ and the root Dockerfile, checked with the real tools where
 * they exist on Debian (systemd-analyze, promtool) and by reading the files where no tool
 * does (no Docker engine or hadolint on the build machines).
 */
import { metricsInPromQl } from '../../support/promql.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseToml } from 'smol-toml';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { tempDir } from '../../support/cleanup.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const at = (...p: string[]) => join(REPO, ...p);
const read = (...p: string[]) => readFileSync(at(...p), 'utf8');

const UNIT = at('deploy', 'systemd', 'tallenne.service');
const RULES = at('deploy', 'prometheus', 'tallenne-alerts.yml');
const PROM_CONFIG = at('deploy', 'prometheus', 'prometheus.yml');
const DASHBOARD = at('deploy', 'grafana', 'tallenne-dashboard.json');
const CONTAINER_CONFIG = at('deploy', 'docker', 'tallenne.toml');

function run(cmd: string, args: string[], opts: { cwd?: string; input?: string } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: opts.cwd ?? tmpdir(), input: opts.input, timeout: 60_000 });
  // A missing tool is a failure, not a skip: .ci/run installs systemd and prometheus from Debian.
  if (r.error) throw new Error(`${cmd} could not be run (${r.error.message}); apt-get install ${cmd === 'promtool' ? 'prometheus' : cmd === 'systemd-analyze' ? 'systemd' : cmd}`);
  return { status: r.status, out: r.stdout, err: r.stderr };
}


interface Dashboard {
  uid: string;
  title: string;
  panels: Array<{ id: number; type: string; title: string; description?: string; datasource?: { uid: string }; gridPos: { x: number; y: number; w: number; h: number }; targets?: Array<{ expr: string; refId: string; datasource?: { uid: string } }> }>;
  templating: { list: Array<{ name: string; type: string; query: unknown }> };
}

function dashboard(): Dashboard {
  return JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
}

/** Every `expr:` of the rules file; block scalars (`|`) are gathered up to the next key. */
function ruleExpressions(text: string): Array<{ alert: string; expr: string }> {
  const out: Array<{ alert: string; expr: string }> = [];
  const lines = text.split('\n');
  let alert = '';
  for (let i = 0; i < lines.length; i++) {
    const a = /^\s*- alert:\s*(\S+)/.exec(lines[i]!);
    if (a) alert = a[1]!;
    const e = /^(\s*)expr:\s*(.*)$/.exec(lines[i]!);
    if (!e) continue;
    if (e[2]!.trim() !== '|') {
      out.push({ alert, expr: e[2]!.trim() });
      continue;
    }
    const indent = e[1]!.length;
    const body: string[] = [];
    while (i + 1 < lines.length && (lines[i + 1]!.trim() === '' || lines[i + 1]!.search(/\S/) > indent)) body.push(lines[++i]!);
    out.push({ alert, expr: body.join('\n').trim() });
  }
  return out;
}

/** Metric series names tallenne exposes: its own (read from src/api/metrics.ts) and prom-client's defaults. */
async function exposedNames(): Promise<Set<string>> {
  const names = new Set<string>();
  const src = read('src', 'api', 'metrics.ts');
  for (const m of src.matchAll(/new (Counter|Gauge|Histogram)\(\{\s*name:\s*'([a-z_:][a-z0-9_:]*)'/g)) {
    names.add(m[2]!);
    if (m[1] === 'Histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m[2]! + s);
  }
  const r = new Registry();
  collectDefaultMetrics({ register: r });
  for (const m of await r.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
  }
  return names;
}

/** Series Prometheus makes itself for every target; they are not on /metrics. */
const SYNTHETIC = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped']);

describe('metricsInPromQl', () => {
  it('finds metric names and nothing else', () => {
    expect(metricsInPromQl('sum by (job, instance) (rate(tallenne_rtp_packets_lost_total{job="x",a=~"b|c"}[10m])) / (sum(rate(tallenne_rtp_packets_total[$__rate_interval])) + 1) > 0.01').sort())
      .toEqual(['tallenne_rtp_packets_lost_total', 'tallenne_rtp_packets_total']);
    expect(metricsInPromQl('histogram_quantile(0.95, sum by (le) (rate(x_bucket{instance=~"$instance"}[5m]))) unless on (instance) y > 0')).toEqual(['x_bucket', 'y']);
    expect(metricsInPromQl('up{job="tallenne"} == 0')).toEqual(['up']);
  });
});

describe('systemd unit', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir('deploy');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const unitText = () => readFileSync(UNIT, 'utf8');
  const directive = (text: string, key: string) => [...text.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!.trim());

  /**
   * systemd-analyze verify checks that ExecStart's program exists, so the unit is verified
   * as it would be installed from this checkout: /opt/tallenne → the repository, /usr/bin/node
   * → this Node. Everything else is verified exactly as shipped.
   */
  function localUnit(text = unitText()): string {
    const file = join(dir, 'tallenne.service');
    writeFileSync(file, text.replaceAll('/usr/bin/node', process.execPath).replaceAll('/opt/tallenne', REPO.replace(/\/$/, '')));
    return file;
  }

  it('has the service shape the issue asks for', () => {
    const t = unitText();
    expect(directive(t, 'Type')).toEqual(['simple']);
    expect(directive(t, 'Restart')).toEqual(['on-failure']);
    expect(directive(t, 'User')).toEqual(['tallenne']);
    expect(directive(t, 'ProtectSystem')).toEqual(['strict']);
    expect(directive(t, 'ReadWritePaths')).toEqual(['/var/lib/tallenne']);
    expect(directive(t, 'NoNewPrivileges')).toEqual(['yes']);
    expect(directive(t, 'PrivateTmp')).toEqual(['yes']);
    expect(directive(t, 'CapabilityBoundingSet')).toEqual(['']);
    expect(directive(t, 'ExecReload')).toEqual(['/bin/kill -HUP $MAINPID']);
    expect(directive(t, 'ExecStart')).toEqual(['/usr/bin/node /opt/tallenne/bin/tallenne run --config /etc/tallenne/tallenne.toml']);
    // A bad config exits 2; restarting would only loop.
    expect(directive(t, 'RestartPreventExitStatus')).toEqual(['2']);
    // Stop must outlast the default shutdown deadline (30 s) plus encoding.
    expect(Number(/^(\d+)s$/.exec(directive(t, 'TimeoutStopSec')[0]!)?.[1])).toBeGreaterThan(30);
    // V8's JIT needs W+X pages: this one would make Node crash at start.
    expect(directive(t, 'MemoryDenyWriteExecute')).toEqual([]);
  });

  it('passes systemd-analyze verify', () => {
    const r = run('systemd-analyze', ['verify', localUnit()], { cwd: dir });
    expect(r.err + r.out).toBe('');
    expect(r.status).toBe(0);
  });

  it('systemd-analyze verify catches a broken unit (so the check above means something)', () => {
    const broken = unitText().replace('ExecStart=/usr/bin/node', 'ExecStart=/nonexistent/node').replace('Restart=on-failure', 'Restart=on-failure\nRestartt=always');
    const r = run('systemd-analyze', ['verify', localUnit(broken)], { cwd: dir });
    expect(r.err).toMatch(/Restartt/);
    expect(r.err).toMatch(/nonexistent/);
    expect(r.status).not.toBe(0);
  });

  it('has a low exposure level in systemd-analyze security', () => {
    // --threshold is on systemd's 0-100 scale: 20 is "2.0", well inside "OK".
    const r = run('systemd-analyze', ['security', '--offline=yes', '--threshold=20', localUnit()], { cwd: dir });
    expect(r.out).toMatch(/Overall exposure level for tallenne\.service: [0-1]\.\d OK/);
    expect(r.status).toBe(0);
  });
});

describe('Prometheus rules and config', () => {
  it('every alert the issue names is there', () => {
    const alerts = ruleExpressions(readFileSync(RULES, 'utf8')).map((r) => r.alert);
    for (const a of ['TallenneNoCallsRecorded', 'TallenneRtpLossHigh', 'TallenneEncodeBacklogGrowing', 'TallenneDiskLow', 'TallenneRtpPortsNearlyExhausted']) expect(alerts).toContain(a);
  });

  it('every metric the rules query is one tallenne exposes', async () => {
    const names = await exposedNames();
    const exprs = ruleExpressions(readFileSync(RULES, 'utf8'));
    expect(exprs.length).toBeGreaterThanOrEqual(8);
    for (const { alert, expr } of exprs) {
      const used = metricsInPromQl(expr);
      expect(used.length, alert).toBeGreaterThan(0);
      for (const m of used) expect(names.has(m) || SYNTHETIC.has(m), `${alert}: ${m}`).toBe(true);
    }
  });

  it('pass promtool check rules and check config', () => {
    const rules = run('promtool', ['check', 'rules', RULES]);
    expect(rules.out + rules.err).toMatch(/SUCCESS: \d+ rules found/);
    expect(rules.status).toBe(0);
    const config = run('promtool', ['check', 'config', PROM_CONFIG]);
    expect(config.status, config.out + config.err).toBe(0);
  });

  describe('alerts fire on the conditions they describe (promtool test rules)', () => {
    let dir: string;
    beforeAll(() => {
      dir = tempDir('rules');
      // The annotations are text for people; promtool would compare them word for word, so
      // the expressions are tested on a copy without them.
      const lines = readFileSync(RULES, 'utf8').split('\n');
      const kept: string[] = [];
      for (let i = 0; i < lines.length; i++) {
        const m = /^(\s*)annotations:\s*$/.exec(lines[i]!);
        if (!m) {
          kept.push(lines[i]!);
          continue;
        }
        while (i + 1 < lines.length && lines[i + 1]!.search(/\S/) > m[1]!.length) i++;
      }
      writeFileSync(join(dir, 'rules.yml'), kept.join('\n'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    const lbl = (instance: string, extra = '') => `job="tallenne",instance="${instance}"${extra}`;
    const alertAt = (alertname: string, evalTime: string, fired: string[], severity: string) => `
      - eval_time: ${evalTime}
        alertname: ${alertname}
        exp_alerts:${fired.length === 0 ? ' []' : fired.map((i) => `
          - exp_labels: { severity: ${severity}, job: tallenne, instance: ${i} }`).join('')}`;

    function promtoolTest(series: string, alerts: string): { status: number | null; text: string } {
      const file = join(dir, 'test.yml');
      writeFileSync(file, `rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:${series}
    alert_rule_test:${alerts}
`);
      const r = run('promtool', ['test', 'rules', file], { cwd: dir });
      return { status: r.status, text: r.out + r.err };
    }

    it('ports nearly exhausted: 95 % fires, 50 % does not', () => {
      const r = promtoolTest(`
      - { series: 'tallenne_rtp_ports_in_use{${lbl('a')}}', values: '190x20' }
      - { series: 'tallenne_rtp_ports_total{${lbl('a')}}', values: '200x20' }
      - { series: 'tallenne_rtp_ports_in_use{${lbl('b')}}', values: '100x20' }
      - { series: 'tallenne_rtp_ports_total{${lbl('b')}}', values: '200x20' }`,
      alertAt('TallenneRtpPortsNearlyExhausted', '2m', [], 'warning') + alertAt('TallenneRtpPortsNearlyExhausted', '10m', ['a'], 'warning'));
      expect(r.status, r.text).toBe(0);
    });

    it('loss above 1 % fires, 0.5 % does not', () => {
      const r = promtoolTest(`
      - { series: 'tallenne_rtp_packets_total{${lbl('a')}}', values: '0+1000x60' }
      - { series: 'tallenne_rtp_packets_lost_total{${lbl('a')}}', values: '0+20x60' }
      - { series: 'tallenne_rtp_packets_total{${lbl('b')}}', values: '0+1000x60' }
      - { series: 'tallenne_rtp_packets_lost_total{${lbl('b')}}', values: '0+5x60' }`,
      alertAt('TallenneRtpLossHigh', '30m', ['a'], 'warning'));
      expect(r.status, r.text).toBe(0);
    });

    it('no calls recorded while offered fires, but not while a call is in progress', () => {
      const r = promtoolTest(`
      - { series: 'tallenne_sip_requests_total{${lbl('a', ',method="INVITE"')}}', values: '0+2x90' }
      - { series: 'tallenne_calls_total{${lbl('a', ',result="recorded"')}}', values: '5x90' }
      - { series: 'tallenne_active_calls{${lbl('a')}}', values: '0x90' }
      - { series: 'tallenne_sip_requests_total{${lbl('b', ',method="INVITE"')}}', values: '0+1x90' }
      - { series: 'tallenne_calls_total{${lbl('b', ',result="recorded"')}}', values: '5x90' }
      - { series: 'tallenne_active_calls{${lbl('b')}}', values: '1x90' }
      - { series: 'tallenne_sip_requests_total{${lbl('c', ',method="INVITE"')}}', values: '0+2x90' }
      - { series: 'tallenne_calls_total{${lbl('c', ',result="recorded"')}}', values: '0+2x90' }
      - { series: 'tallenne_active_calls{${lbl('c')}}', values: '0x90' }`,
      alertAt('TallenneNoCallsRecorded', '60m', ['a'], 'critical'));
      expect(r.status, r.text).toBe(0);
    });

    it('RTP read through Node for 15 minutes fires (info); batched does not', () => {
      const r = promtoolTest(`
      - { series: 'tallenne_rtp_receive_batched{${lbl('a')}}', values: '0x30' }
      - { series: 'tallenne_rtp_receive_batched{${lbl('b')}}', values: '1x30' }`,
      alertAt('TallenneRtpReceiveNotBatched', '10m', [], 'info') + alertAt('TallenneRtpReceiveNotBatched', '20m', ['a'], 'info'));
      expect(r.status, r.text).toBe(0);
    });

    it('a growing encode backlog fires, a steady one does not', () => {
      const r = promtoolTest(`
      - { series: 'tallenne_encode_queue_length{${lbl('a')}}', values: '1+1x60' }
      - { series: 'tallenne_encode_queue_length{${lbl('b')}}', values: '3x60' }`,
      alertAt('TallenneEncodeBacklogGrowing', '40m', ['a'], 'warning'));
      expect(r.status, r.text).toBe(0);
    });

    it('disk below 10 % fires, 30 % does not; refusing calls for disk is critical', () => {
      const r = promtoolTest(`
      - { series: 'tallenne_storage_free_bytes{${lbl('a')}}', values: '5000000000x30' }
      - { series: 'tallenne_storage_size_bytes{${lbl('a')}}', values: '100000000000x30' }
      - { series: 'tallenne_storage_free_bytes{${lbl('b')}}', values: '30000000000x30' }
      - { series: 'tallenne_storage_size_bytes{${lbl('b')}}', values: '100000000000x30' }
      - { series: 'tallenne_calls_rejected_total{${lbl('a', ',reason="disk_low"')}}', values: '0 0 1 2 3 4 5 6 7 8 9' }`,
      alertAt('TallenneDiskLow', '20m', ['a'], 'warning') + alertAt('TallenneCallsRejectedDiskLow', '5m', ['a'], 'critical'));
      expect(r.status, r.text).toBe(0);
    });

    it('a wrong expectation fails (so the tests above mean something)', () => {
      const r = promtoolTest(`
      - { series: 'tallenne_rtp_ports_in_use{${lbl('b')}}', values: '100x20' }
      - { series: 'tallenne_rtp_ports_total{${lbl('b')}}', values: '200x20' }`,
      alertAt('TallenneRtpPortsNearlyExhausted', '10m', ['b'], 'warning'));
      expect(r.status).not.toBe(0);
    });
  });
});

describe('Grafana dashboard', () => {
  it('is an importable dashboard whose panels cover the issue\'s topics', () => {
    const d = dashboard();
    expect(d.uid).toMatch(/^[a-z0-9-]{1,40}$/);
    const ids = d.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const vars = d.templating.list.map((v) => v.name);
    expect(vars).toContain('datasource');
    expect(vars).toContain('instance');
    const text = d.panels.map((p) => `${p.title} ${p.description ?? ''}`.toLowerCase()).join('\n');
    for (const topic of ['concurrent calls', 'call rate by result', 'packet loss', 'jitter', 'encode backlog', 'realtime factor', 'storage', 'headroom', 'purge']) expect(text).toContain(topic);
    for (const p of d.panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      if (p.type === 'row') continue;
      // The data source is the dashboard variable, so it imports into any Grafana.
      expect(p.datasource?.uid, p.title).toBe('${datasource}');
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
    }
  });

  it('panels do not overlap', () => {
    const cells = new Map<string, string>();
    for (const p of dashboard().panels) {
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          const k = `${x},${y}`;
          expect(cells.get(k), `${p.title} overlaps ${cells.get(k)}`).toBeUndefined();
          cells.set(k, p.title);
        }
      }
    }
  });

  it('has a node variable that chooses the Recorder instances, and a cluster row', () => {
    const d = dashboard();
    const vars = d.templating.list.map((v) => v.name);
    expect(vars.indexOf('node')).toBeGreaterThan(-1);
    expect(vars.indexOf('node')).toBeLessThan(vars.indexOf('instance'));
    const instance = d.templating.list.find((v) => v.name === 'instance')!;
    expect(JSON.stringify(instance.query)).toContain('tallenne_build_info{node=~\\"$node\\"}');
    const row = d.panels.findIndex((p) => p.type === 'row' && p.title === 'Cluster');
    expect(row).toBeGreaterThan(-1);
    const next = d.panels.findIndex((p, i) => i > row && p.type === 'row');
    const titles = d.panels.slice(row + 1, next).map((p) => p.title);
    expect(titles).toEqual(expect.arrayContaining(['Recorders taking calls', 'Concurrent calls per node', 'Recordings per node']));
  });

  /** Every target with Grafana's variables filled in as a query would see them. */
  const filled = (): Array<{ title: string; expr: string }> =>
    dashboard().panels.flatMap((p) => (p.targets ?? []).map((t) => ({
      title: p.title,
      expr: t.expr.replaceAll('$__rate_interval', '5m').replaceAll('$instance', '.*').replaceAll('$node', '.*'),
    })));

  it('every target is PromQL that promtool parses', () => {
    const dir = tempDir('dashboard');
    try {
      const rules = filled().map((t, i) => `      - record: dashboard:target_${i}\n        expr: ${JSON.stringify(t.expr)}`).join('\n');
      writeFileSync(join(dir, 'rules.yml'), `groups:\n  - name: dashboard\n    rules:\n${rules}\n`);
      const r = run('promtool', ['check', 'rules', join(dir, 'rules.yml')]);
      expect(r.status, r.out + r.err).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the per-node panels give each node its own figures (promtool test rules)', () => {
    const dir = tempDir('dashboard');
    try {
      const expr = (title: string) => filled().find((t) => t.title === title)!.expr;
      const series = (name: string, instance: string, node: string | null, values: string, extra = '') =>
        `      - { series: '${name}{job="tallenne",instance="${instance}"${node ? `,node="${node}"` : ''}${extra}}', values: '${values}' }`;
      writeFileSync(join(dir, 'test.yml'), `evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
${series('tallenne_build_info', 'a:9100', 'rec-1', '1x10', ',version="1"')}
${series('tallenne_build_info', 'b:9100', 'rec-2', '1x10', ',version="1"')}
${series('tallenne_active_calls', 'a:9100', null, '30x10')}
${series('tallenne_active_calls', 'b:9100', null, '10x10')}
${series('tallenne_accepting_calls', 'a:9100', null, '1x10')}
${series('tallenne_accepting_calls', 'b:9100', null, '0x10')}
${series('tallenne_calls_total', 'a:9100', null, '0+60x10', ',result="recorded"')}
${series('tallenne_calls_total', 'b:9100', null, '0+120x10', ',result="truncated"')}
${series('tallenne_calls_total', 'b:9100', null, '0+600x10', ',result="rejected"')}
    promql_expr_test:
      - expr: ${JSON.stringify(expr('Concurrent calls per node'))}
        eval_time: 5m
        exp_samples:
          - { labels: '{node="rec-1"}', value: 30 }
          - { labels: '{node="rec-2"}', value: 10 }
      - expr: ${JSON.stringify(expr('Recordings per node'))}
        eval_time: 5m
        exp_samples:
          - { labels: '{node="rec-1"}', value: 1 }
          - { labels: '{node="rec-2"}', value: 2 }
      - expr: ${JSON.stringify(expr('Recorders taking calls'))}
        eval_time: 5m
        exp_samples:
          - { labels: '{}', value: 1 }
      - expr: ${JSON.stringify(expr('Busiest recorder'))}
        eval_time: 5m
        exp_samples:
          - { labels: '{}', value: 0.75 }
`);
      const r = run('promtool', ['test', 'rules', join(dir, 'test.yml')], { cwd: dir });
      expect(r.status, r.out + r.err).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('every metric the dashboard queries is one tallenne exposes', async () => {
    const names = await exposedNames();
    let n = 0;
    for (const p of dashboard().panels) {
      for (const t of p.targets ?? []) {
        const used = metricsInPromQl(t.expr);
        expect(used.length, `${p.title} ${t.refId}`).toBeGreaterThan(0);
        for (const m of used) expect(names.has(m), `${p.title}: ${m}`).toBe(true);
        n++;
      }
    }
    expect(n).toBeGreaterThan(15);
  });
});

/** Dockerfile instructions with continuation lines joined and comments dropped. */
function dockerInstructions(text: string): Array<{ op: string; args: string }> {
  const joined = text.replace(/\\\r?\n/g, ' ');
  return joined.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).map((l) => {
    const m = /^(\S+)\s+(.*)$/.exec(l)!;
    return { op: m[1]!.toUpperCase(), args: m[2]!.trim() };
  });
}

describe('container', () => {
  const ins = () => dockerInstructions(read('Dockerfile'));
  const config = () => parseToml(readFileSync(CONTAINER_CONFIG, 'utf8')) as {
    sip: { listen: string[] }; http: { listen: string }; rtp: { port_min: number; port_max: number };
    storage: { dir: string }; privacy: { hash_key_file: string }; calls: { shutdown_deadline: string };
  };
  const finalStage = () => {
    const all = ins();
    const last = all.map((i) => i.op).lastIndexOf('FROM');
    return all.slice(last);
  };

  it('the Dockerfile is multi-stage and the runtime stage copies only build output', () => {
    const froms = ins().filter((i) => i.op === 'FROM');
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const f of froms) expect(f.args).toMatch(/^\S+:\S+ AS \w+$/i);
    const copies = finalStage().filter((i) => i.op === 'COPY');
    expect(copies.some((c) => /--from=build\b.*\/dist\b/.test(c.args))).toBe(true);
    expect(copies.some((c) => /--from=build\b.*\/node_modules\b/.test(c.args))).toBe(true);
    // The build stage installs with the lock file.
    expect(ins().some((i) => i.op === 'RUN' && /npm ci\b/.test(i.args))).toBe(true);
  });

  it('runs as a non-root user, with the data dir as a volume, its ports declared and a health check', () => {
    const stage = finalStage();
    const users = stage.filter((i) => i.op === 'USER');
    expect(users.length).toBe(1);
    expect(users[0]!.args).not.toMatch(/^(root|0)(:|$)/);
    // The user is created in the image (not only named).
    expect(stage.some((i) => i.op === 'RUN' && i.args.includes(`useradd`) && i.args.includes(users[0]!.args.split(':')[0]!))).toBe(true);
    const c = config();
    const volume = stage.find((i) => i.op === 'VOLUME')!;
    expect(JSON.parse(volume.args)).toEqual([c.storage.dir]);
    expect(c.privacy.hash_key_file.startsWith(`${c.storage.dir}/`)).toBe(true);
    const expose = stage.filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(/\s+/));
    const httpPort = Number(c.http.listen.split(':').pop());
    for (const l of c.sip.listen) {
      const [transport, , port] = l.split(':');
      expect(expose).toContain(`${port}/${transport}`);
    }
    expect(expose).toContain(`${httpPort}/tcp`);
    expect(expose).toContain(`${c.rtp.port_min}-${c.rtp.port_max}/udp`);
    const health = stage.find((i) => i.op === 'HEALTHCHECK')!;
    expect(health.args).toContain(`http://127.0.0.1:${httpPort}/healthz`);
  });

  it('runs node bin/tallenne run with the shipped container config', () => {
    const stage = finalStage();
    const cmd = stage.filter((i) => i.op === 'CMD').pop()!;
    expect(JSON.parse(cmd.args)).toEqual(['node', 'bin/tallenne', 'run', '--config', '/etc/tallenne/tallenne.toml']);
    expect(stage.some((i) => i.op === 'COPY' && i.args === 'deploy/docker/tallenne.toml /etc/tallenne/tallenne.toml')).toBe(true);
    expect(stage.find((i) => i.op === 'WORKDIR')?.args).toBe('/opt/tallenne');
  });

  it('every COPY source exists and is not excluded by .dockerignore', () => {
    const ignore = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    const excluded = (p: string) => {
      let out = false;
      for (const rule of ignore) {
        const neg = rule.startsWith('!');
        const pat = neg ? rule.slice(1) : rule;
        const re = new RegExp(`^${pat.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}(/|$)`);
        if (re.test(p)) out = !neg;
      }
      return out;
    };
    const sources = ins().filter((i) => i.op === 'COPY' && !i.args.startsWith('--from')).flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    expect(sources.length).toBeGreaterThan(3);
    for (const s of sources) {
      expect(existsSync(at(s)), s).toBe(true);
      expect(excluded(s), `${s} is excluded by .dockerignore`).toBe(false);
    }
    // And the ignore rules do keep the heavy local folders out.
    for (const p of ['node_modules', 'dist', '.git', 'var']) expect(excluded(p), p).toBe(true);
  });

  it('the container config passes tallenne check-config and listens on every interface', () => {
    const r = run(process.execPath, [at('bin', 'tallenne'), 'check-config', '--config', CONTAINER_CONFIG]);
    expect(r.status, r.err).toBe(0);
    const effective = JSON.parse(r.out) as { sip: { listen: string[] }; http: { listen: { address: string; port: number } }; storage: { dir: string } };
    expect(effective.sip.listen).toEqual(['udp:0.0.0.0:5060', 'tcp:0.0.0.0:5060']);
    expect(effective.http.listen.address).toBe('0.0.0.0');
    expect(effective.storage.dir).toBe('/var/lib/tallenne');
  });

  it('the compose example matches the image and mounts files that exist', () => {
    const compose = read('deploy', 'compose', 'docker-compose.yml');
    const c = config();
    for (const m of compose.matchAll(/-\s+(\.\.\/[^:\s]+):/g)) expect(existsSync(join(REPO, 'deploy', 'compose', m[1]!)), m[1]).toBe(true);
    expect(compose).toContain(`"${c.rtp.port_min}-${c.rtp.port_max}:${c.rtp.port_min}-${c.rtp.port_max}/udp"`);
    expect(compose).toContain(`tallenne-data:${c.storage.dir}`);
    const grace = Number(/stop_grace_period:\s*(\d+)s/.exec(compose)?.[1]);
    expect(grace).toBeGreaterThan(Number(/^(\d+)s$/.exec(c.calls.shutdown_deadline)?.[1]));
    // Prometheus scrapes the port the container's HTTP listener uses.
    const httpPort = c.http.listen.split(':').pop();
    expect(readFileSync(PROM_CONFIG, 'utf8')).toContain(`"tallenne:${httpPort}"`);
  });
});

describe('deploy/README.md', () => {
  it('explains every alert the rules define', () => {
    const readme = read('deploy', 'README.md');
    for (const { alert } of ruleExpressions(readFileSync(RULES, 'utf8'))) expect(readme, alert).toContain(alert);
  });
});
