// The pages other than chat: landing, demo, sign-up and sign-in, onboarding, progress,
// vocabulary review and settings.

import { api, startSession, dropSession, ApiError } from './api.js';
import { t, getLang, LANGS } from './i18n.js';
import { h, fill, field, select, errorBox, announce, toast } from './ui.js';
import { app, navigate, switchLang, setTheme, currentTheme } from './app.js';
import { barChart, lineChart, hbarChart } from './charts.js';
import { membersCard, platformsCard, ssoCard, schoolSignIn } from './school.js';

const LEVELS = ['A1', 'A2', 'B1', 'B2', 'C1', 'C2'];
let languageCache = null;

/** The languages penpal knows, as [code, name]. */
export async function languages() {
  if (!languageCache) languageCache = await api('GET', '/v1/languages', undefined, { auth: false });
  // Named in the interface language where the browser knows the name.
  let names = null;
  try { names = new Intl.DisplayNames([getLang()], { type: 'language' }); } catch { /* English names */ }
  return languageCache
    .map((l) => [l.code, (names && names.of(l.code)) || l.name])
    .map(([c, n]) => [c, n.charAt(0).toLocaleUpperCase(getLang()) + n.slice(1)])
    .sort((a, b) => a[1].localeCompare(b[1], getLang()));
}

/** What to tell a person about a failed call. */
export function explain(e) {
  if (e instanceof ApiError) {
    if (e.code === 'offline') return t('error.offline');
    if (e.status === 429 && e.retryAfter) return t('error.wait', { s: e.retryAfter });
    if (e.status >= 500) return t('error.server');
    return e.message;
  }
  return t('error.server');
}

/** A page: its title (also the document's) and content. */
export function page(title, ...children) {
  document.title = `${title} · Penpal`;
  return h('div', { class: 'page' }, h('h1', {}, title), children);
}

export function landing() {
  document.title = 'Penpal';
  return h('div', { class: 'page landing' },
    h('section', { class: 'hero' },
      h('h1', {}, t('landing.title')),
      h('p', { class: 'lead' }, t('landing.lead')),
      h('div', { class: 'actions' },
        h('a', { class: 'button primary', href: '/demo' }, t('landing.try')),
        h('a', { class: 'button', href: '/signup' }, t('landing.signup')))),
    h('section', { class: 'features', 'aria-label': t('landing.features') },
      ['stream', 'correct', 'words', 'open'].map((k) => h('article', {},
        h('h2', {}, t(`landing.${k}.title`)), h('p', {}, t(`landing.${k}.text`))))));
}

export function notFound() {
  return page(t('notfound.title'), h('p', {}, t('notfound.text')), h('a', { href: '/' }, t('notfound.home')));
}

/** Renders corrections under a learner's message. */
export function corrections(list) {
  if (!list || !list.length) return null;
  return h('ul', { class: 'corrections', 'aria-label': t('chat.corrections') }, list.map((c) =>
    h('li', {},
      h('del', {}, c.original), ' → ', h('ins', {}, c.corrected),
      h('span', { class: 'why' }, ` — ${c.explanation}`))));
}

/** The learner's text with each corrected span marked. */
export function marked(text, list) {
  if (!list || !list.length) return text;
  const out = [];
  let rest = text;
  for (const c of list) {
    const at = rest.toLowerCase().indexOf(c.original.toLowerCase());
    if (at < 0 || !c.original) continue;
    out.push(rest.slice(0, at), h('mark', { title: `${c.corrected} — ${c.explanation}` }, rest.slice(at, at + c.original.length)));
    rest = rest.slice(at + c.original.length);
  }
  out.push(rest);
  return out;
}

/** New words from a turn. */
export function words(list) {
  if (!list || !list.length) return null;
  return h('div', { class: 'vocab' }, h('h3', {}, t('chat.newWords')),
    h('ul', {}, list.map((w) => h('li', {}, h('strong', { lang: 'fr' }, w.term), ` — ${w.translation}`))));
}

export async function demo() {
  const history = [];
  const log = h('ol', { class: 'thread', 'aria-label': t('demo.thread') });
  const input = h('textarea', { rows: 2, maxlength: 500, required: true, placeholder: t('demo.placeholder') });
  const [err, showErr] = errorBox();
  const remaining = h('p', { class: 'hint', 'aria-live': 'polite' });
  const send = async (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    showErr('');
    const mine = h('li', { class: 'msg learner' }, h('p', {}, text));
    log.append(mine);
    input.value = '';
    const waiting = h('li', { class: 'msg tutor pending', 'aria-busy': 'true' }, h('p', {}, t('chat.typing')));
    log.append(waiting);
    try {
      const r = await api('POST', '/v1/demo/chat', { message: text, language: 'fr', native_language: getLang(), history }, { auth: false });
      history.push({ role: 'learner', text }, { role: 'tutor', text: r.reply });
      // The server takes the last 20 turns at most; older ones matter least.
      history.splice(0, Math.max(0, history.length - 20));
      fill(mine, h('p', {}, marked(text, r.corrections)), corrections(r.corrections));
      fill(waiting, h('p', { lang: 'fr' }, r.reply), words(r.vocabulary));
      waiting.classList.remove('pending');
      waiting.removeAttribute('aria-busy');
      announce(r.reply);
      remaining.textContent = t('demo.remaining', { n: r.remaining });
    } catch (e2) {
      waiting.remove();
      showErr(explain(e2));
    }
    input.focus();
  };
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
  });
  const form = h('form', { class: 'composer', onsubmit: send },
    field(t('demo.label'), input, t('chat.keys')), err, h('button', { class: 'primary', type: 'submit' }, t('chat.send')));
  return page(t('demo.title'), h('p', { class: 'lead' }, t('demo.lead')), log, form, remaining,
    h('p', {}, h('a', { href: '/signup' }, t('demo.keep'))));
}

function authForm(kind) {
  const email = h('input', { type: 'email', autocomplete: 'email', required: true });
  const password = h('input', { type: 'password', autocomplete: kind === 'register' ? 'new-password' : 'current-password', required: true, minlength: kind === 'register' ? 10 : undefined });
  const name = h('input', { type: 'text', autocomplete: 'nickname', maxlength: 60 });
  const [err, showErr] = errorBox();
  const submit = h('button', { class: 'primary', type: 'submit' }, kind === 'register' ? t('auth.create') : t('auth.signin'));
  const form = h('form', {
    class: 'card narrow',
    onsubmit: async (e) => {
      e.preventDefault();
      showErr('');
      submit.disabled = true;
      try {
        const body = { email: email.value, password: password.value };
        if (kind === 'register' && name.value.trim()) body.display_name = name.value.trim();
        if (kind === 'register') body.time_zone = browserTimeZone();
        await startSession(kind, body);
        const me = await app.loadMe();
        const next = new URLSearchParams(location.search).get('next');
        navigate(!me.profile.onboarded ? '/welcome' : next && next.startsWith('/') && !next.startsWith('//') ? next : '/chat');
      } catch (e2) {
        showErr(explain(e2));
        submit.disabled = false;
      }
    },
  },
  kind === 'register' ? field(t('auth.name'), name) : null,
  field(t('auth.email'), email),
  field(t('auth.password'), password, kind === 'register' ? t('auth.policy') : null),
  err, submit,
  h('p', {}, kind === 'register'
    ? [t('auth.haveAccount'), ' ', h('a', { href: '/login' }, t('nav.login'))]
    : [t('auth.noAccount'), ' ', h('a', { href: '/signup' }, t('nav.signup'))]));
  return form;
}

export const signup = () => page(t('auth.signupTitle'), authForm('register'));
const SSO_REASONS = ['not_set', 'expired', 'declined', 'refused', 'no_seat', 'unavailable'];

export function login() {
  // A school sign-in that did not happen comes back here saying why.
  const reason = new URLSearchParams(location.search).get('sso');
  return page(t('auth.loginTitle'),
    SSO_REASONS.includes(reason) ? h('p', { class: 'error narrow', role: 'alert' }, t(`sso.reason.${reason}`)) : null,
    authForm('login'),
    h('p', { class: 'narrow' }, h('a', { href: '/forgot-password' }, t('auth.forgot'))),
    schoolSignIn());
}

/**
 * The token a mailed link carries after `#token=`. The fragment never reaches a server; it is
 * taken off the address bar at once, so it stays out of the history too.
 */
function linkToken() {
  const token = new URLSearchParams(location.hash.slice(1)).get('token');
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  return token;
}

/** The browser's IANA time zone (digests and quiet hours follow it), or UTC. */
function browserTimeZone() {
  try { return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'; } catch { return 'UTC'; }
}

/** The one-click unsubscribe page a message's footer links to: it asks before it acts, since
 *  mail scanners open links on their own. */
export function unsubscribe() {
  const token = new URLSearchParams(location.search).get('token');
  if (!token) return page(t('unsub.title'), h('p', {}, t('unsub.nolink')));
  const body = h('div');
  const [err, showErr] = errorBox();
  const button = h('button', {
    type: 'button', class: 'primary',
    onclick: async () => {
      button.disabled = true;
      showErr('');
      try {
        const done = await api('POST', `/unsubscribe?token=${encodeURIComponent(token)}`, undefined, { auth: false });
        fill(body, h('p', { role: 'status' }, t('unsub.done', { category: t(`notify.${done.category}`) })),
          h('p', {}, h('a', { href: '/settings#notifications' }, t('unsub.manage'))));
      } catch (e) {
        showErr(e instanceof ApiError && e.code === 'link_invalid' ? t('unsub.nolink') : explain(e));
        button.disabled = false;
      }
    },
  }, t('unsub.confirm'));
  fill(body, h('p', {}, t('unsub.lead')), err, button);
  return page(t('unsub.title'), h('section', { class: 'card narrow' }, body));
}

/** An amount in minor units, as the interface language writes money. */
function money(minor, currency) {
  const digits = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits;
  return new Intl.NumberFormat(getLang(), { style: 'currency', currency }).format(minor / 10 ** digits);
}

/** What a plan includes, in a few lines. */
function includes(p) {
  return h('ul', { class: 'plan-includes' },
    h('li', {}, p.turns_per_day == null ? t('billing.unlimited') : t('billing.perDay', { n: p.turns_per_day })),
    h('li', {}, p.modes == null ? t('billing.allModes') : t('billing.modes', { list: p.modes.map((m) => t(`billing.mode.${m}`, {}, m)).join(', ') })),
    p.trial_days ? h('li', {}, t('billing.trial', { n: p.trial_days })) : null);
}

const EU = ['AT', 'BE', 'BG', 'CY', 'CZ', 'DE', 'DK', 'EE', 'ES', 'FI', 'FR', 'GR', 'HR', 'HU', 'IE', 'IT', 'LT', 'LU', 'LV', 'MT', 'NL', 'PL', 'PT', 'RO', 'SE', 'SI', 'SK'];

/** The payer's country: the one in the address, else the one they paid from, else the browser's region. */
function guessCountry(params, saved) {
  const asked = (params.get('country') || '').toUpperCase();
  if (/^[A-Z]{2}$/.test(asked)) return asked;
  if (saved) return saved;
  const region = (navigator.language || '').split('-')[1];
  return region && /^[A-Za-z]{2}$/.test(region) ? region.toUpperCase() : '';
}

/** A VAT rate in basis points, as people write it ("19 %", "25.5 %"). */
function rate(bp) {
  return new Intl.NumberFormat(getLang(), { style: 'percent', maximumFractionDigits: 2 }).format(bp / 10000);
}

/** The line under a price saying what VAT it holds or adds. */
function vatLine(price) {
  const tax = price.tax;
  if (!tax) return null;
  const amount = money(tax.tax_minor, price.currency);
  return h('p', { class: 'vat' }, tax.included
    ? t('billing.vatIncluded', { rate: rate(tax.rate_bp), amount })
    : t('billing.vatAdded', { rate: rate(tax.rate_bp), amount, total: money(tax.total_minor, price.currency) }));
}

/** The pricing page: the plans in a currency for a country, and the way to start one. */
export async function pricing() {
  const params = new URLSearchParams(location.search);
  const currency = (params.get('currency') || 'EUR').toUpperCase();
  const saved = app.state.me ? (await api('GET', '/v1/billing/subscription').catch(() => ({}))).country : null;
  const country = guessCountry(params, saved);
  let list;
  try {
    const where = country ? `&country=${encodeURIComponent(country)}` : '';
    list = await api('GET', `/v1/billing/plans?currency=${encodeURIComponent(currency)}&lang=${getLang()}${where}`, undefined, { auth: false });
  } catch (e) {
    return page(t('billing.title'), h('p', { class: 'error', role: 'alert' }, explain(e)));
  }
  if (!list.billing) return page(t('billing.title'), h('p', {}, t('billing.off')));
  const go = (c, k) => navigate(`/pricing?currency=${c}${k ? `&country=${k}` : ''}`);
  const pick = select(['EUR', 'USD', 'GBP'].map((c) => [c, c]), currency, { onchange: (e) => go(e.target.value, country) });
  const names = new Intl.DisplayNames([getLang()], { type: 'region' });
  const countries = EU.map((c) => [c, names.of(c)]).sort((a, b) => a[1].localeCompare(b[1], getLang()));
  const known = EU.includes(country);
  const where = select([['', t('billing.otherCountry')], ...countries], known ? country : '', { onchange: (e) => go(currency, e.target.value) });
  const [err, showErr] = errorBox();
  const cards = list.plans.map((p) => h('section', { class: 'card plan' },
    h('h2', {}, p.name),
    h('p', { class: 'price' }, p.price ? `${money(p.price.amount_minor, p.price.currency)} ${t(`billing.per.${p.interval}`)}` : t('billing.free')),
    p.price ? vatLine(p.price) : null,
    includes(p),
    p.price ? h('button', {
      type: 'button', class: 'primary',
      onclick: async (e) => {
        if (!app.state.me) { navigate('/signup'); return; }
        e.target.disabled = true;
        showErr('');
        try {
          const { url } = await api('POST', '/v1/billing/checkout', { plan: p.id, currency, ...(country ? { country } : {}) });
          location.assign(url);
        } catch (e2) { showErr(explain(e2)); e.target.disabled = false; }
      },
    }, p.trial_days ? t('billing.startTrial') : t('billing.choose')) : null));
  return page(t('billing.title'), field(t('billing.currency'), pick), field(t('billing.country'), where), err, h('div', { class: 'plans' }, cards));
}

/** The account's payments, newest first, with refunds, disputes and VAT. */
function invoiceList(invoices) {
  if (!invoices.length) return h('p', {}, t('billing.noInvoices'));
  return h('ul', { class: 'invoices' }, invoices.map((i) => h('li', {},
    `${new Date(i.paid_at * 1000).toLocaleDateString(getLang())} — ${money(i.amount_minor, i.currency)} — `,
    t(`billing.invoice.${i.status}`, { amount: money(i.refunded_minor, i.currency) }),
    i.tax ? ` (${t('billing.invoice.vat', { amount: money(i.tax.amount_minor, i.currency) })})` : '',
    i.dispute ? ` — ${t('billing.invoice.disputed')}` : '')));
}

/** The settings card about the account's plan: what it is, today's use, and what to do. */
async function planCard() {
  const mine = await api('GET', '/v1/billing/subscription');
  if (!mine.plan) return null;
  const [invoices, offer] = await Promise.all([
    api('GET', '/v1/billing/invoices').catch(() => []),
    api('GET', `/v1/billing/plans?lang=${getLang()}`, undefined, { auth: false }).catch(() => ({ plans: [] })),
  ]);
  const [err, showErr] = errorBox();
  const sub = mine.subscription;
  const act = (label, path, body) => h('button', {
    type: 'button',
    onclick: async () => {
      showErr('');
      try {
        const r = await api('POST', path, body);
        if (r && r.url) location.assign(r.url); else toast(t('billing.requested'));
      } catch (e) { showErr(explain(e)); }
    },
  }, label);
  const live = sub && !['canceled', 'incomplete_expired'].includes(sub.status);
  return h('section', { class: 'card', id: 'plan' },
    h('h2', {}, t('billing.yourPlan')),
    h('p', {}, h('strong', {}, mine.plan.name), ' — ', t(`billing.source.${mine.source.kind}`)),
    mine.plan.turns_per_day != null ? h('p', {}, t('billing.usedToday', { n: mine.turns_today, of: mine.plan.turns_per_day })) : null,
    sub ? h('p', {}, t(`billing.status.${sub.status}`, {}, sub.status),
      sub.cancel_at_period_end && sub.period_end ? ` ${t('billing.endsOn', { date: new Date(sub.period_end * 1000).toLocaleDateString(getLang()) })}` : '') : null,
    err,
    h('p', {},
      h('a', { class: 'button', href: '/pricing' }, t('billing.seePlans')), ' ',
      live ? act(t('billing.manage'), '/v1/billing/portal') : null, ' ',
      live && !sub.cancel_at_period_end ? act(t('billing.cancel'), '/v1/billing/subscription/cancel', {}) : null,
      live && sub.cancel_at_period_end ? act(t('billing.resume'), '/v1/billing/subscription/resume') : null, ' ',
      ...(live ? offer.plans.filter((p) => p.interval && p.id !== sub.plan && p.interval !== mine.plan.interval)
        .map((p) => act(t('billing.switchTo', { plan: p.name }), '/v1/billing/subscription/plan', { plan: p.id })) : [])),
    h('h3', {}, t('billing.invoices')),
    invoiceList(invoices));
}

/** The notification settings card: categories by channel, the hour, quiet hours, time zone. */
async function notificationSettings() {
  const s = await api('GET', '/v1/me/notifications');
  const [err, showErr] = errorBox();
  const boxes = [];
  const rows = s.categories.filter((c) => c.channels.length).map((c) => h('tr', {},
    h('th', { scope: 'row' }, h('span', {}, t(`notify.${c.category}`)), h('span', { class: 'hint' }, t(`notify.${c.category}.hint`))),
    ...c.channels.map((ch) => {
      const box = h('input', {
        type: 'checkbox', checked: ch.enabled, disabled: c.required,
        'aria-label': `${t(`notify.${c.category}`)} — ${t(`notify.channel.${ch.channel}`, {}, ch.channel)}`,
      });
      boxes.push({ category: c.category, channel: ch.channel, box, required: c.required });
      return h('td', {}, box);
    })));
  const channels = [...new Set(s.categories.flatMap((c) => c.channels.map((ch) => ch.channel)))];
  const hours = Array.from({ length: 24 }, (_, i) => [String(i), `${String(i).padStart(2, '0')}:00`]);
  const hour = select(hours, String(s.hour));
  const days = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];
  const day = select(days.map((d) => [d, t(`day.${d}`)]), s.digest_day);
  const quiet = h('input', { type: 'checkbox', checked: !!s.quiet_hours });
  const start = h('input', { type: 'time', value: s.quiet_hours ? s.quiet_hours.start : '22:00', required: true });
  const end = h('input', { type: 'time', value: s.quiet_hours ? s.quiet_hours.end : '08:00', required: true });
  const zone = h('input', { type: 'text', value: s.time_zone, maxlength: 64, required: true, spellcheck: false });
  const useHere = h('button', { type: 'button', class: 'link', onclick: () => { zone.value = browserTimeZone(); } }, t('notify.useHere'));
  return h('form', {
    class: 'card', id: 'notifications',
    onsubmit: async (e) => {
      e.preventDefault();
      showErr('');
      try {
        await api('PATCH', '/v1/me/notifications', {
          time_zone: zone.value.trim(), hour: Number(hour.value), digest_day: day.value,
          quiet_hours: quiet.checked ? { start: start.value, end: end.value } : null,
          channels: boxes.filter((b) => !b.required).map((b) => ({ category: b.category, channel: b.channel, enabled: b.box.checked })),
        });
        toast(t('settings.saved'));
      } catch (e2) { showErr(explain(e2)); }
    },
  },
  h('h2', {}, t('notify.title')),
  h('table', { class: 'notify-table' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('notify.what')), ...channels.map((c) => h('th', { scope: 'col' }, t(`notify.channel.${c}`, {}, c))))),
    h('tbody', {}, rows)),
  field(t('notify.hour'), hour, t('notify.hourHint')), field(t('notify.day'), day),
  h('label', { class: 'check' }, quiet, ' ', t('notify.quiet')),
  h('div', { class: 'target-row' }, field(t('notify.from'), start), field(t('notify.to'), end)),
  field(t('notify.zone'), zone), h('p', {}, useHere),
  err, h('button', { class: 'primary', type: 'submit' }, t('settings.save')));
}

export function forgotPassword() {
  const email = h('input', { type: 'email', autocomplete: 'email', required: true });
  const [err, showErr] = errorBox();
  const done = h('p', { role: 'status', hidden: true });
  const submit = h('button', { class: 'primary', type: 'submit' }, t('forgot.send'));
  const form = h('form', {
    class: 'card narrow',
    onsubmit: async (e) => {
      e.preventDefault();
      showErr('');
      submit.disabled = true;
      try {
        await api('POST', '/v1/auth/password-reset/request', { email: email.value }, { auth: false });
        done.textContent = t('forgot.sent');
        done.hidden = false;
      } catch (e2) {
        showErr(explain(e2));
      }
      submit.disabled = false;
    },
  }, h('p', {}, t('forgot.lead')), field(t('auth.email'), email), err, submit, done);
  return page(t('forgot.title'), form);
}

export function resetPassword() {
  const token = linkToken();
  if (!token) {
    return page(t('reset.title'), h('p', {}, t('reset.nolink')), h('p', {}, h('a', { href: '/forgot-password' }, t('reset.again'))));
  }
  const password = h('input', { type: 'password', autocomplete: 'new-password', required: true, minlength: 10 });
  const [err, showErr] = errorBox();
  const submit = h('button', { class: 'primary', type: 'submit' }, t('reset.save'));
  const body = h('div');
  const form = h('form', {
    class: 'card narrow',
    onsubmit: async (e) => {
      e.preventDefault();
      showErr('');
      submit.disabled = true;
      try {
        await api('POST', '/v1/auth/password-reset', { token, new_password: password.value }, { auth: false });
        // Every session ended on the server, this browser's included.
        dropSession();
        app.state.me = null;
        fill(body, h('p', { role: 'status' }, t('reset.done')), h('p', {}, h('a', { class: 'button primary', href: '/login' }, t('nav.login'))));
      } catch (e2) {
        showErr(e2 instanceof ApiError && e2.code === 'link_invalid' ? t('reset.nolink') : explain(e2));
        submit.disabled = false;
      }
    },
  }, field(t('reset.new'), password, t('auth.policy')), err, submit);
  fill(body, form);
  return page(t('reset.title'), body, h('p', {}, h('a', { href: '/forgot-password' }, t('reset.again'))));
}

/** An invitation to a school: what it offers, and joining (signed in) or signing in first. */
export async function join() {
  const token = new URLSearchParams(location.search).get('token') || '';
  let offer;
  try {
    offer = await api('GET', `/v1/invitations/${encodeURIComponent(token)}`, undefined, { auth: false });
  } catch (e) {
    return page(t('join.title'), h('p', { class: 'error', role: 'alert' }, t('join.invalid')));
  }
  const intro = h('p', {}, t(`join.intro.${offer.role}`, { school: offer.school }));
  if (!app.state.me) {
    const here = `/join?token=${encodeURIComponent(token)}`;
    return page(t('join.title'), intro, h('p', {},
      h('a', { class: 'button primary', href: `/login?next=${encodeURIComponent(here)}` }, t('join.signin')), ' ',
      h('a', { class: 'button', href: '/signup' }, t('auth.create'))));
  }
  const [err, showErr] = errorBox();
  const button = h('button', {
    type: 'button', class: 'primary',
    onclick: async () => {
      showErr('');
      button.disabled = true;
      try {
        await api('POST', `/v1/invitations/${encodeURIComponent(token)}/accept`);
        app.state.inSchool = true;
        toast(t('join.done', { school: offer.school }));
        navigate('/settings#schools');
      } catch (e) { showErr(explain(e)); button.disabled = false; }
    },
  }, t('join.accept'));
  return page(t('join.title'), intro, err, button);
}

/** The settings card listing the schools the account belongs to. */
async function schoolsCard() {
  const mine = await api('GET', '/v1/schools').catch(() => []);
  if (!mine.length) return null;
  const staff = await Promise.all(mine.filter((s) => s.role !== 'learner').map((s) => membersCard(s)));
  const admin = mine.filter((s) => s.role === 'admin');
  const platforms = await Promise.all(admin.map((s) => platformsCard(s)));
  const signIns = await Promise.all(admin.map((s) => ssoCard(s)));
  return h('section', { class: 'card', id: 'schools' }, h('h2', {}, t('schools.title')),
    h('ul', {}, mine.map((s) => h('li', {}, h('strong', {}, s.name), ` — ${t(`role.${s.role}`)}`,
      s.role === 'admin' ? ` — ${t('schools.seats', { used: s.seats_used, of: s.seats })}` : ''))),
    staff, platforms, signIns);
}

export async function verifyEmail() {
  const token = linkToken();
  if (!token) return page(t('verify.title'), h('p', {}, t('verify.nolink')));
  const next = app.state.me ? '/chat' : '/login';
  try {
    await api('POST', '/v1/auth/verify-email', { token }, { auth: false });
    if (app.state.me) app.state.me.email_verified = true;
    return page(t('verify.title'), h('p', { role: 'status' }, t('verify.done')),
      h('p', {}, h('a', { class: 'button primary', href: next }, t('verify.continue'))));
  } catch (e) {
    return page(t('verify.title'), h('p', { class: 'error', role: 'alert' }, e instanceof ApiError && e.code === 'link_invalid' ? t('reset.nolink') : explain(e)),
      h('p', {}, h('a', { href: next }, t('verify.continue'))));
  }
}

/** The reminder an unverified account sees above its pages, with a way to get a new link. */
export function unverifiedBanner() {
  const status = h('span', { role: 'status' });
  const resend = h('button', {
    type: 'button', class: 'link',
    onclick: async () => {
      resend.disabled = true;
      try {
        await api('POST', '/v1/auth/verify-email/resend');
        status.textContent = t('banner.sent');
      } catch (e) {
        status.textContent = explain(e);
        resend.disabled = false;
      }
    },
  }, t('banner.resend'));
  return h('div', { class: 'banner' }, h('span', {}, t('banner.unverified')), ' ', resend, ' ', status);
}

/** Can-do statements, one per level: the highest run of yeses suggests a level. */
const CAN_DO = ['A1', 'A2', 'B1', 'B2', 'C1'];

export async function welcome() {
  const me = app.state.me;
  const langs = await languages();
  const data = {
    display_name: me.profile.display_name,
    native_language: me.profile.native_language || getLang(),
    language: (me.profile.targets[0] && me.profile.targets[0].language) || (getLang() === 'fr' ? 'en' : 'fr'),
    level: (me.profile.targets[0] && me.profile.targets[0].level) || 'A2',
    goals: me.profile.goals.join(', '),
    interests: me.profile.interests.join(', '),
  };
  const steps = ['name', 'native', 'target', 'level', 'goals'];
  let step = 0;
  const body = h('div');
  const progress = h('p', { class: 'hint', 'aria-live': 'polite' });
  const [err, showErr] = errorBox();

  const draw = () => {
    progress.textContent = t('welcome.step', { n: step + 1, of: steps.length });
    const s = steps[step];
    let content;
    if (s === 'name') {
      const i = h('input', { type: 'text', value: data.display_name, maxlength: 60, required: true, oninput: (e) => { data.display_name = e.target.value; } });
      content = field(t('welcome.name'), i);
    } else if (s === 'native') {
      content = field(t('welcome.native'), select(langs, data.native_language, { onchange: (e) => { data.native_language = e.target.value; } }));
    } else if (s === 'target') {
      content = field(t('welcome.target'), select(langs, data.language, { onchange: (e) => { data.language = e.target.value; } }));
    } else if (s === 'level') {
      const levelPick = select(LEVELS.map((l) => [l, `${l} — ${t(`level.${l}`)}`]), data.level, { onchange: (e) => { data.level = e.target.value; } });
      const boxes = CAN_DO.map((l) => h('input', { type: 'checkbox', value: l, id: `cando-${l}` }));
      const suggest = () => {
        let yes = 0;
        while (yes < boxes.length && boxes[yes].checked) yes++;
        // The level is the highest one whose can-do (and every one below) is met.
        const lvl = LEVELS[Math.max(0, yes - 1)];
        data.level = lvl;
        levelPick.value = lvl;
        suggestion.textContent = t('welcome.suggested', { level: lvl });
      };
      const suggestion = h('p', { class: 'hint', 'aria-live': 'polite' });
      boxes.forEach((b) => b.addEventListener('change', suggest));
      content = h('div', {},
        h('fieldset', {}, h('legend', {}, t('welcome.selfTitle')),
          CAN_DO.map((l, i) => h('div', { class: 'check' }, boxes[i], h('label', { for: `cando-${l}` }, t(`cando.${l}`))))),
        suggestion,
        field(t('welcome.level'), levelPick));
    } else {
      const g = h('input', { type: 'text', value: data.goals, oninput: (e) => { data.goals = e.target.value; } });
      const i = h('input', { type: 'text', value: data.interests, oninput: (e) => { data.interests = e.target.value; } });
      content = h('div', {}, field(t('welcome.goals'), g, t('welcome.listHint')), field(t('welcome.interests'), i, t('welcome.listHint')));
    }
    const last = step === steps.length - 1;
    fill(body, h('form', {
      class: 'card narrow',
      onsubmit: async (e) => {
        e.preventDefault();
        showErr('');
        if (!last) { step++; draw(); body.querySelector('input,select')?.focus(); return; }
        const list = (s2) => s2.split(',').map((x) => x.trim()).filter(Boolean).slice(0, 10);
        try {
          await api('PATCH', '/v1/me/profile', {
            display_name: data.display_name.trim(),
            native_language: data.native_language,
            targets: [{ language: data.language, level: data.level }],
            goals: list(data.goals),
            interests: list(data.interests),
            interface_language: getLang(),
          });
          await app.loadMe();
          navigate('/chat');
        } catch (e2) { showErr(explain(e2)); }
      },
    }, progress, content, err,
    h('div', { class: 'actions' },
      step > 0 ? h('button', { type: 'button', onclick: () => { step--; draw(); } }, t('welcome.back')) : null,
      h('button', { class: 'primary', type: 'submit' }, last ? t('welcome.finish') : t('welcome.next')))));
  };
  draw();
  return page(t('welcome.title'), h('p', { class: 'lead' }, t('welcome.lead')), body);
}

export async function progress() {
  const p = await api('GET', '/v1/me/progress?days=30');
  const lang = getLang();
  const label = (d) => new Date(`${d}T00:00:00Z`).toLocaleDateString(lang, { day: 'numeric', month: 'short', timeZone: 'UTC' });
  const days = p.days.map((d) => ({ label: label(d.date), turns: d.turns, accuracy: d.accuracy }));
  const stat = (k, v) => h('div', { class: 'stat' }, h('dt', {}, t(`progress.${k}`)), h('dd', {}, String(v)));
  const cats = Object.entries(p.errors_by_category).map(([k, v]) => ({ label: t(`category.${k}`, {}, k), value: v }));
  const level = p.level && p.level.suggestion;
  return page(t('progress.title'),
    h('dl', { class: 'stats' },
      stat('messages', p.messages), stat('conversations', p.conversations), stat('streak', p.streak_days),
      stat('accuracy', p.accuracy == null ? '—' : `${Math.round(p.accuracy * 100)} %`),
      stat('learned', p.words_learned), stat('due', p.words_due)),
    level ? h('p', { class: 'card' }, t('progress.levelOffer', { from: level.current, to: level.suggested }), ' ',
      h('a', { href: '/settings' }, t('progress.levelAct'))) : null,
    h('div', { class: 'charts' },
      h('section', {}, h('h2', {}, t('progress.activity')), barChart(days.map((d) => ({ label: d.label, value: d.turns })), t('progress.activityAlt'))),
      h('section', {}, h('h2', {}, t('progress.accuracyTrend')), lineChart(days.map((d) => ({ label: d.label, value: d.accuracy })), t('progress.accuracyAlt'))),
      h('section', {}, h('h2', {}, t('progress.errors')), cats.length ? hbarChart(cats, t('progress.errorsAlt')) : h('p', {}, t('progress.noErrors'))),
      h('section', {}, h('h2', {}, t('progress.vocab')),
        hbarChart([
          { label: t('progress.due'), value: p.words_due },
          { label: t('progress.learned'), value: p.words_learned },
          { label: t('progress.seen'), value: p.words_seen },
        ], t('progress.vocabAlt')),
        p.words_due ? h('a', { class: 'button primary', href: '/review' }, t('review.start')) : null)));
}

export async function review() {
  const cards = await api('GET', '/v1/vocabulary?due=true&limit=50');
  const holder = h('div', { class: 'flashcards' });
  let i = 0;
  let done = 0;
  const next = () => {
    if (i >= cards.length) {
      fill(holder, h('p', { class: 'card', role: 'status' }, cards.length ? t('review.done', { n: done }) : t('review.none')),
        h('a', { class: 'button', href: '/chat' }, t('review.practise')));
      return;
    }
    const c = cards[i];
    const answer = h('div', { class: 'answer', hidden: true },
      h('p', { class: 'translation' }, c.translation),
      c.example ? h('p', { class: 'example', lang: c.language }, c.example) : null);
    const grades = h('div', { class: 'grades', hidden: true, role: 'group', 'aria-label': t('review.how') },
      ['again', 'hard', 'good', 'easy'].map((g) => h('button', {
        type: 'button', class: g === 'good' ? 'primary' : '',
        onclick: async () => {
          try {
            await api('POST', `/v1/vocabulary/${encodeURIComponent(c.id)}/review`, { grade: g });
            done++; i++; next();
          } catch (e) { toast(explain(e), 'error'); }
        },
      }, t(`review.${g}`))));
    const show = h('button', {
      type: 'button', class: 'primary',
      onclick: () => { answer.hidden = false; grades.hidden = false; show.hidden = true; grades.querySelector('.primary').focus(); announce(c.translation); },
    }, t('review.show'));
    fill(holder,
      h('p', { class: 'hint' }, t('review.count', { n: i + 1, of: cards.length })),
      h('article', { class: 'flashcard', 'aria-label': t('review.card') },
        h('p', { class: 'term', lang: c.language }, c.term), answer),
      show, grades);
    show.focus();
  };
  next();
  return page(t('review.title'), holder);
}

export async function settings() {
  const me = app.state.me;
  const p = me.profile;
  const langs = await languages();
  const [err, showErr] = errorBox();
  const name = h('input', { type: 'text', value: p.display_name, maxlength: 60, required: true });
  const native = select(langs, p.native_language || getLang());
  const targets = h('div', { class: 'targets' });
  const rows = p.targets.map((x) => ({ ...x }));
  const drawTargets = () => fill(targets, rows.map((row, idx) => h('div', { class: 'target-row' },
    field(t('settings.language'), select(langs, row.language, { onchange: (e) => { row.language = e.target.value; } })),
    field(t('settings.level'), select(LEVELS.map((l) => [l, l]), row.level, { onchange: (e) => { row.level = e.target.value; } })),
    rows.length > 1 ? h('button', { type: 'button', onclick: () => { rows.splice(idx, 1); drawTargets(); } }, t('settings.remove')) : null)),
  h('button', { type: 'button', onclick: () => { rows.push({ language: 'es', level: 'A1' }); drawTargets(); } }, t('settings.addLanguage')));
  drawTargets();
  const intensity = select(['off', 'gentle', 'every_error'].map((v) => [v, t(`intensity.${v}`)]), p.correction_intensity);
  const ui = select(LANGS.map((l) => [l, l === 'fr' ? 'Français' : 'English']), getLang());
  const themePick = select(['system', 'light', 'dark'].map((v) => [v, t(`theme.${v}`)]), currentTheme());
  const suggestion = p.level_suggestion;

  const save = h('form', {
    class: 'card',
    onsubmit: async (e) => {
      e.preventDefault();
      showErr('');
      try {
        await api('PATCH', '/v1/me/profile', {
          display_name: name.value.trim(), native_language: native.value, targets: rows,
          correction_intensity: intensity.value, interface_language: ui.value,
        });
        setTheme(themePick.value);
        await app.loadMe();
        toast(t('settings.saved'));
        if (ui.value !== getLang()) await switchLang(ui.value);
        else app.render();
      } catch (e2) { showErr(explain(e2)); }
    },
  },
  h('h2', {}, t('settings.profile')),
  field(t('auth.name'), name), field(t('welcome.native'), native),
  h('fieldset', {}, h('legend', {}, t('settings.targets')), targets),
  field(t('settings.intensity'), intensity),
  h('h2', {}, t('settings.appearance')),
  field(t('settings.interface'), ui), field(t('settings.theme'), themePick),
  err, h('button', { class: 'primary', type: 'submit' }, t('settings.save')));

  const offer = suggestion ? h('section', { class: 'card' },
    h('p', {}, t('progress.levelOffer', { from: suggestion.current, to: suggestion.suggested })),
    h('button', { type: 'button', class: 'primary', onclick: async () => {
      await api('PATCH', '/v1/me/profile', { accept_level_suggestion: true });
      await app.loadMe();
      toast(t('settings.saved'));
      app.render();
    } }, t('settings.acceptLevel'))) : null;

  const exportBtn = h('button', {
    type: 'button',
    onclick: async () => {
      try {
        const data = await api('GET', '/v1/me/export');
        const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' }));
        const a = h('a', { href: url, download: `penpal-export-${new Date().toISOString().slice(0, 10)}.json` });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 10000);
        toast(t('settings.exported'));
      } catch (e2) { toast(explain(e2), 'error'); }
    },
  }, t('settings.export'));

  const delPw = h('input', { type: 'password', autocomplete: 'current-password', required: true });
  const [delErr, showDelErr] = errorBox();
  const del = h('form', {
    class: 'card danger',
    onsubmit: async (e) => {
      e.preventDefault();
      if (!confirm(t('settings.deleteConfirm'))) return;
      try {
        await api('DELETE', '/v1/me', { password: delPw.value });
        dropSession();
        app.state.me = null;
        navigate('/');
        toast(t('settings.deleted'));
      } catch (e2) { showDelErr(explain(e2)); }
    },
  }, h('h2', {}, t('settings.deleteTitle')), h('p', {}, t('settings.deleteText')),
  field(t('auth.password'), delPw), delErr, h('button', { type: 'submit', class: 'danger' }, t('settings.delete')));

  const notifications = await notificationSettings();
  const [plan, schools] = await Promise.all([planCard(), schoolsCard()]);
  const newEmail = h('input', { type: 'email', autocomplete: 'email', required: true, maxlength: 254 });
  const emailPw = h('input', { type: 'password', autocomplete: 'current-password', required: true });
  const [emailErr, showEmailErr] = errorBox();
  const emailDone = h('p', { role: 'status', hidden: true });
  const emailForm = h('form', {
    class: 'card',
    onsubmit: async (e) => {
      e.preventDefault();
      showEmailErr('');
      try {
        await api('POST', '/v1/me/email', { email: newEmail.value.trim(), password: emailPw.value });
        emailDone.textContent = t('email.sent', { email: newEmail.value.trim() });
        emailDone.hidden = false;
        emailPw.value = '';
      } catch (e2) { showEmailErr(explain(e2)); }
    },
  }, h('h2', {}, t('email.title')), h('p', {}, t('email.current', { email: me.email })),
  field(t('email.new'), newEmail), field(t('auth.password'), emailPw), emailErr,
  h('button', { type: 'submit' }, t('email.change')), emailDone);
  const shown = page(t('settings.title'), offer, plan, schools, save, notifications, emailForm,
    h('section', { class: 'card' }, h('h2', {}, t('settings.dataTitle')), h('p', {}, t('settings.dataText')), exportBtn,
      ' ', h('a', { href: '/v1/vocabulary/export.csv', class: 'button', onclick: downloadCsv }, t('settings.anki'))),
    del);
  if (location.hash === '#notifications') setTimeout(() => notifications.scrollIntoView(), 0);
  if (location.hash === '#schools' && schools) setTimeout(() => schools.scrollIntoView(), 0);
  return shown;
}

async function downloadCsv(e) {
  // The CSV needs the bearer token, which a plain link cannot carry.
  e.preventDefault();
  try {
    const csv = await api('GET', '/v1/vocabulary/export.csv');
    const url = URL.createObjectURL(new Blob([csv], { type: 'text/csv' }));
    const a = h('a', { href: url, download: 'penpal-vocabulary.csv' });
    document.body.append(a);
    a.click();
    a.remove();
  } catch (e2) { toast(explain(e2), 'error'); }
}
