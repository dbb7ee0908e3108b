/**
 * The page's entry: find out who is logged in (GET /api/v1/me), then show the login or the
 * sections the caller's roles open: recordings for anyone who may find them, the access
 * review for admins.
 */
import './style.css';
import { h, clear, announce } from './dom.js';
import { call, setCsrfToken, whenUnauthenticated, ApiFailure } from './api.js';
import { loginView } from './login.js';
import { SearchView } from './search.js';
import { reviewView } from './review.js';
import { may } from './permissions.js';
import type { Me } from './types.js';

const main = document.getElementById('main')!;
const nav = document.getElementById('nav')!;
const who = document.getElementById('who')!;

type Section = 'recordings' | 'review';
/** The session's CSRF token survives a reload of this tab (not other tabs, not the cookie jar). */
const CSRF_KEY = 'tallenne.csrf';

function keepCsrf(token: string | undefined): void {
  setCsrfToken(token);
  if (token) sessionStorage.setItem(CSRF_KEY, token);
  else sessionStorage.removeItem(CSRF_KEY);
}

/** A failed single sign-on comes back as /?login_error=CODE. */
function ssoError(): string | undefined {
  const params = new URLSearchParams(location.search);
  const code = params.get('login_error');
  if (code === null) return undefined;
  history.replaceState(null, '', location.pathname);
  return `Single sign-on failed (${code.slice(0, 60)}).`;
}

async function boot(message?: string): Promise<void> {
  try {
    const me = await call<Me>('GET', '/me', { quiet401: true });
    keepCsrf(me.csrfToken ?? sessionStorage.getItem(CSRF_KEY) ?? undefined);
    showApp(me);
  } catch (e) {
    if (e instanceof ApiFailure && e.status === 401) return showLogin(message);
    announce(e instanceof ApiFailure ? e.message : 'The recorder cannot be reached.', 'error');
  }
}

async function showLogin(message?: string): Promise<void> {
  keepCsrf(undefined);
  clear(nav);
  clear(who);
  const sso = await call<{ oidc?: boolean }>('GET', '/auth/config', { quiet401: true }).then((c) => c.oidc === true, () => false);
  clear(main);
  main.append(loginView({
    sso,
    ...(message ? { message } : {}),
    onLoggedIn: (r) => {
      keepCsrf(r.csrfToken);
      void boot();
    },
  }));
  document.getElementById('login-token')?.focus();
}

function showApp(me: Me): void {
  const sections: Array<[Section, string]> = [];
  if (may(me, 'list') || may(me, 'subject-search')) sections.push(['recordings', 'Recordings']);
  if (may(me, 'users')) sections.push(['review', 'Access review']);
  const show = (s: Section): void => {
    clear(main);
    main.append(s === 'review' ? reviewView() : new SearchView(me).el);
    for (const b of nav.querySelectorAll('button')) b.setAttribute('aria-current', String(b.dataset.section === s));
  };
  clear(nav);
  for (const [s, label] of sections) nav.append(h('button', { type: 'button', class: 'tab', 'data-section': s }, [label], { click: () => show(s) }));
  clear(who);
  who.append(
    h('span', { class: 'me', 'data-testid': 'me' }, [`${me.name} (${me.roles.join(', ')})`]),
    h('button', { type: 'button', class: 'logout' }, ['Log out'], {
      click: () => {
        call('DELETE', '/session').finally(() => void showLogin('You are logged out.'));
      },
    }),
  );
  if (sections.length === 0) {
    clear(main);
    main.append(h('p', { class: 'note' }, ['Your roles give no access to recordings or users.']));
    return;
  }
  show(sections[0]![0]);
}

whenUnauthenticated(() => void showLogin('Your session has ended; log in again.'));
void boot(ssoError());
