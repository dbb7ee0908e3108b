/** The access review for admins: every user, their roles and scope, and when each was last used. */
import { h, announce } from './dom.js';
import { call, ApiFailure } from './api.js';
import { localTime, localDate } from './format.js';
import type { ReviewRow } from './types.js';

export function reviewView(): HTMLElement {
  const body = h('tbody');
  const summary = h('p', { class: 'summary', 'aria-live': 'polite' }, ['Loading…']);
  const table = h('table', { class: 'results review', 'data-testid': 'access-review' }, [
    h('caption', {}, ['Users, their roles and scope. Rows marked "review" have not been used for the review period.']),
    h('thead', {}, [h('tr', {}, ['User', 'Roles', 'Agent', 'Teams', 'Last used', 'Expires', 'State'].map((c) => h('th', { scope: 'col' }, [c])))]),
    body,
  ]);
  call<{ items?: ReviewRow[]; users?: ReviewRow[] } | ReviewRow[]>('GET', '/access-review').then(
    (res) => {
      const rows = Array.isArray(res) ? res : res.items ?? res.users ?? [];
      for (const u of rows) {
        const state = u.disabled ? 'disabled' : u.unused ? 'review' : 'in use';
        body.append(h('tr', { 'data-state': state }, [
          h('th', { scope: 'row', 'data-label': 'User' }, [u.name]),
          h('td', { 'data-label': 'Roles' }, [u.roles.join(', ')]),
          h('td', { 'data-label': 'Agent' }, [u.agentId ?? '—']),
          h('td', { 'data-label': 'Teams' }, [u.teams.join(', ') || '—']),
          h('td', { 'data-label': 'Last used' }, [u.lastUsedAt ? localTime(u.lastUsedAt) : 'never']),
          h('td', { 'data-label': 'Expires' }, [u.expiresAt ? localDate(u.expiresAt) : '—']),
          h('td', { 'data-label': 'State' }, [state]),
        ]));
      }
      summary.textContent = `${rows.length} user${rows.length === 1 ? '' : 's'}.`;
    },
    (e: unknown) => {
      summary.textContent = '';
      announce(e instanceof ApiFailure ? `Access review: ${e.message}` : 'The access review could not be loaded.', 'error');
    },
  );
  return h('section', { class: 'review-view', 'aria-labelledby': 'review-title' }, [
    h('h1', { id: 'review-title' }, ['Access review']),
    summary,
    h('div', { class: 'table-wrap' }, [table]),
  ]);
}
