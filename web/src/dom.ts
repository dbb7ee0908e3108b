/**
 * A tiny element builder. Text always goes in as text nodes, never as HTML, so nothing a
 * recording's metadata holds can become markup.
 */
type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | undefined | null>;
type Handlers = { [K in keyof HTMLElementEventMap]?: (ev: HTMLElementEventMap[K]) => void };

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, children: Child[] = [], on: Handlers = {}): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  for (const [type, fn] of Object.entries(on)) el.addEventListener(type, fn as EventListener);
  return el;
}

export function append(el: Element, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'number' ? String(c) : c);
  }
}

export function clear(el: Element): void {
  el.replaceChildren();
}

/** Sets an aria-pressed toggle button's state. */
export function setPressed(b: HTMLButtonElement, on: boolean): void {
  b.setAttribute('aria-pressed', on ? 'true' : 'false');
}

/** Announces a short message to assistive technology and shows it in the status line. */
export function announce(text: string, kind: 'info' | 'error' = 'info'): void {
  const s = document.getElementById('status');
  if (!s) return;
  s.textContent = text;
  s.dataset.kind = kind;
}
