/**
 * The access review for admins: every user, their roles and scope, when each was last used,
 * and which have not been used for `[access] review_after` (candidates for removal).
 */
import { h, announce } from './dom.js';
import { call, ApiFailure } from './api.js';
import { localTime, localDate } from './format.js';
import type { AccessReview } from './types.js';

const COLUMNS = ['User', 'Source', 'Roles', 'Agent', 'Teams in scope', 'Last used', 'Expires', 'Active tokens', 'State'] as const;

export function reviewView(): HTMLElement {
  const body = h('tbody');
  const summary = h('p', { class: 'summary', 'aria-live': 'polite' }, ['Loading…']);
  const caption = h('caption', {}, ['Users, their roles and scope.']);
  const table = h('table', { class: 'results review', 'data-testid': 'access-review' }, [
    caption,
    h('thead', {}, [h('tr', {}, COLUMNS.map((c) => h('th', { scope: 'col' }, [c])))]),
    body,
  ]);
  call<AccessReview>('GET', '/access-review').then(
    (res) => {
      caption.textContent = `Users, their roles and scope. "Review" marks a user not used for ${res.reviewAfterDays} days: remove the access if it is not needed.`;
      for (const u of res.users) {
        const state = u.disabled ? 'disabled' : u.unused ? 'review' : 'in use';
        const live = u.tokens.filter((t) => !t.revoked && (t.expiresAt === null || Date.parse(t.expiresAt) > Date.now())).length;
        const cells = [u.name, u.source, u.roles.join(', '), u.agentId ?? '—', u.teams.join(', ') || '—', u.lastUsedAt ? localTime(u.lastUsedAt) : 'never', u.expiresAt ? localDate(u.expiresAt) : '—', String(live), state];
        body.append(h('tr', { 'data-state': state }, cells.map((c, i) => h(i === 0 ? 'th' : 'td', { 'data-label': COLUMNS[i], ...(i === 0 ? { scope: 'row' } : {}) }, [c]))));
      }
      const toReview = res.users.filter((u) => u.unused && !u.disabled).length;
      summary.textContent = `${res.users.length} user${res.users.length === 1 ? '' : 's'}, ${toReview} to review.`;
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
