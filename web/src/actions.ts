/**
 * The buttons for what may be done to a recording besides listening: export (WAV, MP3),
 * legal hold and release, erasure. Each appears only when the caller's roles allow it; each
 * asks for the reason the audit log keeps, and the server checks again.
 */
import { h, clear, announce } from './dom.js';
import { call, audioUrl, ApiFailure } from './api.js';
import { allowed, may } from './permissions.js';
import type { Me, Recording } from './types.js';

export interface ActionHooks {
  /** The reason given when the player was opened (roles that need one to listen). */
  reason(): string | undefined;
  changed(id: string, rec: Recording | null): void;
}

export function actionsFor(rec: Recording, me: Me, hooks: ActionHooks): HTMLElement {
  const bar = h('div', { class: 'actions', role: 'group', 'aria-label': 'Actions on this recording' });
  const panel = h('div', { class: 'action-panel' });
  const path = `/recordings/${encodeURIComponent(rec.id)}`;

  const refresh = async (): Promise<void> => {
    hooks.changed(rec.id, await call<Recording>('GET', path, withReason(hooks.reason())));
  };

  /** A small form asking for a reason (and more fields), then running `run`. */
  const ask = (title: string, submitText: string, extra: HTMLElement[], run: (reason: string, form: HTMLFormElement) => Promise<void>): void => {
    clear(panel);
    const reason = h('input', { id: 'action-reason', name: 'reason', required: true, autocomplete: 'off', maxlength: 500 });
    const form = h('form', { class: 'action-form', 'aria-label': title }, [
      h('p', { class: 'action-title' }, [title]),
      h('label', { for: 'action-reason' }, ['Reason (written to the audit log)']),
      reason,
      ...extra,
      h('div', { class: 'row' }, [
        h('button', { type: 'submit' }, [submitText]),
        h('button', { type: 'button' }, ['Cancel'], { click: () => clear(panel) }),
      ]),
    ], {
      submit: (e) => {
        e.preventDefault();
        const why = reason.value.trim();
        if (!why) return;
        run(why, form).then(
          () => clear(panel),
          (err: unknown) => announce(err instanceof ApiFailure ? `${err.message} (${err.code})` : 'The request failed.', 'error'),
        );
      },
    });
    panel.append(form);
    reason.focus();
  };

  if (!rec.audioPurgedAt && may(me, 'export', rec)) {
    for (const format of ['wav', 'mp3'] as const) {
      const needsReason = allowed(me, 'export', rec) === 'reason-required';
      if (!needsReason) {
        bar.append(h('a', { class: 'button', href: audioUrl(rec.id, { format }), download: `${rec.id}.${format}` }, [`Export ${format.toUpperCase()}`]));
        continue;
      }
      bar.append(h('button', { type: 'button' }, [`Export ${format.toUpperCase()}`], {
        click: () => ask(`Export as ${format.toUpperCase()}`, 'Export', [], async (reason) => {
          const a = h('a', { href: audioUrl(rec.id, { format, reason }), download: `${rec.id}.${format}` });
          document.body.append(a);
          a.click();
          a.remove();
        }),
      }));
    }
  }
  if (!rec.hold && may(me, 'hold', rec)) {
    bar.append(h('button', { type: 'button', 'data-action': 'hold' }, ['Hold'], {
      click: () => {
        const until = h('input', { id: 'hold-until', name: 'until', type: 'date' });
        ask('Legal hold: the recording is kept until released', 'Hold', [h('label', { for: 'hold-until' }, ['Until (optional)']), until], async (reason) => {
          const body: Record<string, string> = { reason };
          if (until.value) body.until = new Date(`${until.value}T23:59:59`).toISOString();
          await call('POST', `${path}/hold`, { body, reason });
          announce('The recording is on hold.');
          await refresh();
        });
      },
    }));
  }
  if (rec.hold && may(me, 'release', rec)) {
    bar.append(h('button', { type: 'button', 'data-action': 'release' }, ['Release hold'], {
      click: () => ask('Release the legal hold', 'Release', [], async (reason) => {
        await call('DELETE', `${path}/hold`, { reason });
        announce('The hold is released.');
        await refresh();
      }),
    }));
  }
  if (may(me, 'erase', rec)) {
    bar.append(h('button', { type: 'button', class: 'danger', 'data-action': 'erase' }, ['Erase'], {
      click: () => {
        const confirm = h('input', { id: 'erase-confirm', type: 'checkbox', required: true });
        ask('Erase this recording now (cannot be undone)', 'Erase', [h('label', { class: 'check' }, [confirm, ' I understand the audio and metadata are destroyed'])], async (reason) => {
          await call('DELETE', path, { reason });
          announce('The recording is erased.');
          hooks.changed(rec.id, null);
        });
      },
    }));
  }
  return h('div', { class: 'actions-wrap' }, [bar.childElementCount > 0 ? bar : null, panel]);
}

function withReason(reason: string | undefined): { reason?: string } {
  return reason ? { reason } : {};
}
