/**
 * Finding recordings: the search form (time, agent, team, service number, status; the
 * customer's number for a subject-access search), the result list with paging, and the
 * player for the one chosen.
 */
import { h, clear, announce } from './dom.js';
import { call, ApiFailure } from './api.js';
import { clock, localTime, localDate, fromLocalInput } from './format.js';
import { allowed, may } from './permissions.js';
import { Player } from './player.js';
import type { Me, Recording, RecordingPage } from './types.js';

const COLUMNS = ['Started', 'Customer', 'Agent', 'Service number', 'Duration', 'Status', 'Hold', 'Audio kept until'] as const;

export class SearchView {
  readonly el: HTMLElement;
  private readonly rows: HTMLTableSectionElement;
  private readonly more: HTMLButtonElement;
  private readonly summary: HTMLElement;
  private readonly playerSlot: HTMLElement;
  private readonly items = new Map<string, Recording>();
  private query: Record<string, string | undefined> = {};
  private cursor: string | undefined;
  private player: Player | null = null;
  /** The reason given with the search (roles that need one); offered again when a recording opens. */
  private reason: string | undefined;

  constructor(private readonly me: Me) {
    const browse = may(me, 'list');
    const subject = may(me, 'subject-search');
    // Maintainers and security give a reason for each search and each recording they open.
    const needsReason = allowed(me, 'list') === 'reason-required';
    const field = (id: string, label: string, input: HTMLElement): HTMLElement => h('div', { class: 'field' }, [h('label', { for: id }, [label]), input]);
    const fields: HTMLElement[] = [];
    if (browse) {
      fields.push(
        field('q-from', 'From', h('input', { id: 'q-from', name: 'from', type: 'datetime-local', step: 1 })),
        field('q-to', 'To', h('input', { id: 'q-to', name: 'to', type: 'datetime-local', step: 1 })),
        field('q-agent', 'Agent', h('input', { id: 'q-agent', name: 'agent', autocomplete: 'off' })),
        field('q-team', 'Team', h('input', { id: 'q-team', name: 'team', autocomplete: 'off' })),
        field('q-service', 'Service number', h('input', { id: 'q-service', name: 'service', inputmode: 'tel', autocomplete: 'off' })),
        field('q-status', 'Status', h('select', { id: 'q-status', name: 'status' }, [
          h('option', { value: '' }, ['any']),
          h('option', { value: 'complete' }, ['complete']),
          h('option', { value: 'truncated' }, ['truncated']),
        ])),
      );
    }
    if (subject) {
      fields.push(field('q-number', "Customer's number (any form)", h('input', {
        id: 'q-number', name: 'number', type: 'tel', autocomplete: 'off', required: !browse, 'aria-describedby': 'q-number-note',
      })));
    }
    if (needsReason) {
      fields.push(field('q-reason', 'Reason for searching (audited)', h('input', { id: 'q-reason', name: 'reason', required: true, autocomplete: 'off', maxlength: 500 })));
    }
    const form = h('form', { class: 'search', role: 'search', 'aria-label': 'Find recordings' }, [
      ...fields,
      h('div', { class: 'field submit' }, [h('button', { type: 'submit' }, ['Search'])]),
      subject ? h('p', { id: 'q-number-note', class: 'note' }, ['A search by customer number is a subject-access search and is written to the audit log.']) : null,
    ], {
      submit: (e) => {
        e.preventDefault();
        void this.search(form);
      },
    });

    this.rows = h('tbody');
    this.more = h('button', { type: 'button', class: 'more', hidden: true }, ['More results'], { click: () => void this.page() });
    this.summary = h('p', { class: 'summary', 'aria-live': 'polite' });
    this.playerSlot = h('div', { class: 'player-slot' });
    const table = h('table', { class: 'results', 'data-testid': 'results' }, [
      h('caption', { class: 'visually-hidden' }, ['Recordings found']),
      h('thead', {}, [h('tr', {}, COLUMNS.map((c) => h('th', { scope: 'col' }, [c])))]),
      this.rows,
    ]);
    const can = browse || subject;
    this.el = h('div', { class: 'search-view' }, [
      h('h1', { class: 'visually-hidden' }, ['Recordings']),
      can ? form : h('p', { class: 'note' }, ['Your roles do not include finding or playing recordings.']),
      h('div', { class: 'split' }, [
        h('div', { class: 'list' }, [this.summary, h('div', { class: 'table-wrap' }, [table]), this.more]),
        this.playerSlot,
      ]),
    ]);
    if (browse && !needsReason) void this.search(form);
  }

  private async search(form: HTMLFormElement): Promise<void> {
    const data = new FormData(form);
    const text = (k: string): string | undefined => {
      const v = data.get(k);
      return typeof v === 'string' && v.trim() ? v.trim() : undefined;
    };
    this.query = {
      from: fromLocalInput(text('from') ?? ''),
      to: fromLocalInput(text('to') ?? ''),
      agent: text('agent'),
      team: text('team'),
      service: text('service'),
      status: text('status'),
      number: text('number'),
    };
    this.reason = text('reason');
    this.cursor = undefined;
    this.items.clear();
    clear(this.rows);
    await this.page();
  }

  private async page(): Promise<void> {
    this.more.disabled = true;
    try {
      const res = await call<RecordingPage>('GET', '/recordings', { query: { ...this.query, cursor: this.cursor }, ...(this.reason ? { reason: this.reason } : {}) });
      for (const r of res.items) {
        this.items.set(r.id, r);
        this.rows.append(this.row(r));
      }
      this.cursor = res.nextCursor;
      this.more.hidden = !res.nextCursor;
      this.summary.textContent = this.items.size === 0 ? 'No recordings found.' : `${this.items.size} recording${this.items.size === 1 ? '' : 's'}${res.nextCursor ? ' so far' : ''}.`;
    } catch (e) {
      this.summary.textContent = '';
      announce(e instanceof ApiFailure ? `Search failed: ${e.message}` : 'Search failed.', 'error');
    } finally {
      this.more.disabled = false;
    }
  }

  private row(r: Recording): HTMLTableRowElement {
    const cells = [
      h('button', { type: 'button', class: 'link open', 'aria-label': `Open the recording of ${localTime(r.startedAt)}, ${r.agent ?? 'no agent'}` }, [localTime(r.startedAt)], {
        click: () => this.open(r.id),
      }),
      r.customerNumber ?? '—',
      r.agent ?? '—',
      r.serviceNumber ?? '—',
      clock(r.durationMs),
      r.status,
      r.hold ? `held${r.hold.until ? ` until ${localDate(r.hold.until)}` : ''}` : '—',
      r.audioPurgedAt ? 'destroyed' : r.retention ? localDate(r.retention.audioExpiresAt) : '—',
    ];
    return h('tr', { 'data-id': r.id }, cells.map((c, i) => h(i === 0 ? 'th' : 'td', { 'data-label': COLUMNS[i], ...(i === 0 ? { scope: 'row' } : {}) }, [c])));
  }

  private open(id: string): void {
    const rec = this.items.get(id);
    if (!rec) return;
    this.player?.destroy();
    for (const tr of this.rows.querySelectorAll('tr')) tr.removeAttribute('aria-current');
    this.rows.querySelector(`tr[data-id="${CSS.escape(id)}"]`)?.setAttribute('aria-current', 'true');
    this.player = new Player(rec, this.me, {
      close: () => {
        this.player?.destroy();
        this.player = null;
        this.rows.querySelector<HTMLButtonElement>(`tr[data-id="${CSS.escape(id)}"] .open`)?.focus();
      },
      changed: (changedId, next) => this.changed(changedId, next),
    }, this.reason);
    this.playerSlot.append(this.player.el);
    this.player.open();
    this.player.el.querySelector<HTMLElement>('.timeline, #access-reason')?.focus();
  }

  private changed(id: string, next: Recording | null): void {
    const tr = this.rows.querySelector(`tr[data-id="${CSS.escape(id)}"]`);
    if (next === null) {
      this.items.delete(id);
      tr?.remove();
      this.player?.destroy();
      this.player = null;
      return;
    }
    this.items.set(id, next);
    tr?.replaceWith(this.row(next));
    this.open(id);
  }
}
