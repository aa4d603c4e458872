// DOM helpers. Pages are built from elements, never from HTML strings, so text from the
// server or the model can never become markup.

/** Makes an element: h('button', {class: 'primary', onclick: f}, 'Send'). */
export function h(tag, attrs = {}, ...children) {
  const svg = tag.startsWith('svg:');
  const el = svg
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', v);
    else if (k === 'text') el.textContent = v;
    else if (k in el && !svg && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
/** A unique id for label/field pairs. */
export const nextId = (p = 'f') => `${p}-${++uid}`;

/** A labelled form field; `input` is an element that receives the id. */
export function field(label, input, hint) {
  const id = input.id || (input.id = nextId());
  const parts = [h('label', { for: id }, label), input];
  if (hint) {
    const hid = `${id}-hint`;
    input.setAttribute('aria-describedby', hid);
    parts.push(h('p', { class: 'hint', id: hid }, hint));
  }
  return h('div', { class: 'field' }, parts);
}

/** A select with [value, label] options. */
export function select(options, value, attrs = {}) {
  return h('select', attrs, options.map(([v, l]) => h('option', { value: v, selected: v === value }, l)));
}

/** Says `text` to screen readers through the polite live region. */
export function announce(text) {
  const el = document.getElementById('announcer');
  if (!el) return;
  el.textContent = '';
  // A new node after a tick makes screen readers read it even when the text repeats.
  setTimeout(() => { el.textContent = text; }, 30);
}

/** A short message at the bottom of the screen, also read out. */
export function toast(text, kind = 'info') {
  const el = document.getElementById('toast');
  if (!el) return;
  fill(el, h('p', { class: `toast ${kind}` }, text));
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => el.replaceChildren(), 6000);
}

/** An inline error area for a form; returns [element, show(message)]. */
export function errorBox() {
  const el = h('p', { class: 'error', role: 'alert', hidden: true });
  return [el, (msg) => {
    el.textContent = msg || '';
    el.hidden = !msg;
  }];
}

/** A date as the interface language writes it. */
export function fmtDate(ms, lang) {
  return new Date(ms).toLocaleString(lang, { dateStyle: 'medium', timeStyle: 'short' });
}
