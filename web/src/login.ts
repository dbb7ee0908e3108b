/**
 * Logging in: an API token exchanged for a session (POST /api/v1/session), or single sign-on
 * through the organisation's OpenID provider when the daemon has one configured.
 */
import { h } from './dom.js';
import { call, ApiFailure, API } from './api.js';
import type { LoginReply } from './types.js';

export function loginView(opts: { sso: boolean; onLoggedIn: (r: LoginReply) => void; message?: string }): HTMLElement {
  const token = h('input', { id: 'login-token', name: 'token', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' });
  const error = h('p', { class: 'error', id: 'login-error', role: 'alert' }, [opts.message ?? '']);
  const form = h('form', { class: 'login', 'aria-describedby': 'login-error' }, [
    h('label', { for: 'login-token' }, ['API token']),
    token,
    h('button', { type: 'submit' }, ['Log in']),
  ], {
    submit: (e) => {
      e.preventDefault();
      error.textContent = '';
      call<LoginReply>('POST', '/session', { body: { token: token.value.trim() }, quiet401: true }).then(
        (r) => {
          token.value = '';
          opts.onLoggedIn(r);
        },
        (err: unknown) => {
          error.textContent = err instanceof ApiFailure ? err.message : 'Logging in failed.';
          token.select();
        },
      );
    },
  });
  return h('section', { class: 'login-view', 'aria-labelledby': 'login-title' }, [
    h('h1', { id: 'login-title' }, ['Log in to the recordings']),
    form,
    error,
    opts.sso ? h('p', { class: 'sso' }, [h('a', { class: 'button', href: `${API}/auth/oidc/login` }, ['Log in with single sign-on'])]) : null,
    h('p', { class: 'note' }, ['Every search and every recording you open is written to the audit log.']),
  ]);
}
