// The app shell: routing between pages, the header, theme and interface language, and the
// signed-in learner.

import { api, maybeSignedIn, onSession, refresh, signedIn, endSession } from './api.js';
import { getLang, setLang, t, LANGS } from './i18n.js';
import { h, fill, select } from './ui.js';
import * as pages from './pages.js';
import { chatPage } from './chat.js';
import * as school from './school.js';
import * as market from './market.js';

const state = { me: null };
export const app = {
  state,
  navigate,
  /** Reloads the signed-in learner's account and profile. */
  async loadMe() {
    state.me = signedIn() ? await api('GET', '/v1/me') : null;
    // Members of a school get its classes in the navigation.
    state.inSchool = state.me ? (await api('GET', '/v1/schools').catch(() => [])).length > 0 : false;
    return state.me;
  },
  render,
};

const routes = [
  [/^\/$/, pages.landing, {}],
  [/^\/demo$/, pages.demo, {}],
  [/^\/signup$/, pages.signup, { guest: true }],
  [/^\/login$/, pages.login, { guest: true }],
  [/^\/forgot-password$/, pages.forgotPassword, {}],
  [/^\/reset-password$/, pages.resetPassword, {}],
  [/^\/verify-email$/, pages.verifyEmail, {}],
  [/^\/unsubscribe$/, pages.unsubscribe, {}],
  [/^\/pricing$/, pages.pricing, {}],
  [/^\/join$/, pages.join, {}],
  [/^\/welcome$/, pages.welcome, { auth: true, onboarding: true }],
  // Learners who arrive from a school's LMS chat in their assignments before (or without)
  // setting up a profile of their own.
  [/^\/chat\/([A-Za-z0-9_-]+)$/, chatPage, { auth: true, onboarding: true }],
  [/^\/chat(?:\/([A-Za-z0-9_-]+))?$/, chatPage, { auth: true }],
  [/^\/(lti|arrive)$/, school.ltiLanding, {}],
  [/^\/classes$/, school.classesPage, { auth: true, onboarding: true }],
  [/^\/classes\/([A-Za-z0-9_-]+)$/, school.classPage, { auth: true, onboarding: true }],
  [/^\/classes\/([A-Za-z0-9_-]+)\/pick$/, school.pickPage, { auth: true, onboarding: true }],
  [/^\/assignments\/([A-Za-z0-9_-]+)$/, school.assignmentPage, { auth: true, onboarding: true }],
  [/^\/progress$/, pages.progress, { auth: true }],
  [/^\/review$/, pages.review, { auth: true }],
  [/^\/settings$/, pages.settings, { auth: true }],
  [/^\/marketplace$/, market.catalogue, {}],
  [/^\/marketplace\/([a-z0-9-]+)$/, market.packagePage, {}],
  [/^\/publisher$/, market.publisherPage, { auth: true, onboarding: true }],
];

function theme() {
  return localStorage.getItem('penpal.theme') || 'system';
}

function applyTheme() {
  const v = theme();
  const dark = v === 'dark' || (v === 'system' && matchMedia('(prefers-color-scheme: dark)').matches);
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
}

/** Sets the theme: `light`, `dark` or `system`, remembered on this device. */
export function setTheme(v) {
  localStorage.setItem('penpal.theme', v);
  applyTheme();
}
export const currentTheme = theme;

/** Switches the interface language, remembered here and, when signed in, on the account. */
export async function switchLang(lang) {
  setLang(lang);
  if (state.me && state.me.profile.interface_language !== lang) {
    state.me.profile.interface_language = lang;
    api('PATCH', '/v1/me/profile', { interface_language: lang }).catch(() => {});
  }
  render();
}

function header() {
  const nav = [];
  const link = (href, label) => {
    const here = location.pathname === href || (['/chat', '/marketplace'].includes(href) && location.pathname.startsWith(href));
    return h('a', { href, 'aria-current': here ? 'page' : undefined }, label);
  };
  if (state.me) {
    nav.push(link('/chat', t('nav.chat')), state.inSchool ? link('/classes', t('nav.classes')) : null,
      link('/progress', t('nav.progress')), link('/review', t('nav.review')),
      link('/pricing', t('nav.pricing')), link('/marketplace', t('nav.marketplace')), link('/settings', t('nav.settings')),
      h('button', { type: 'button', class: 'link', onclick: async () => { await endSession(); state.me = null; navigate('/'); } }, t('nav.signout')));
  } else {
    nav.push(link('/demo', t('nav.demo')), link('/pricing', t('nav.pricing')), link('/marketplace', t('nav.marketplace')), link('/login', t('nav.login')), link('/signup', t('nav.signup')));
  }
  const langPick = select(LANGS.map((l) => [l, l === 'fr' ? 'Français' : 'English']), getLang(), {
    id: 'ui-lang', onchange: (e) => switchLang(e.target.value),
  });
  return [
    h('a', { href: state.me ? '/chat' : '/', class: 'brand' }, h('img', { src: '/assets/favicon.svg', alt: '', width: 28, height: 28 }), 'Penpal'),
    h('nav', { 'aria-label': t('nav.label') }, nav),
    h('div', { class: 'prefs' },
      h('label', { for: 'ui-lang', class: 'sr-only' }, t('settings.interface')), langPick,
      h('button', {
        type: 'button', class: 'icon', 'aria-label': t('theme.toggle'),
        'aria-pressed': document.documentElement.dataset.theme === 'dark' ? 'true' : 'false',
        onclick: () => { setTheme(document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark'); render(); },
      }, document.documentElement.dataset.theme === 'dark' ? '☀' : '☾')),
  ];
}

let cleanup = null;
let lastPath = null;

/** Draws the page for the current address. */
export async function render() {
  const path = location.pathname;
  const main = document.getElementById('main');
  if (cleanup) { cleanup(); cleanup = null; }
  fill(document.getElementById('top'), header());
  let match = null;
  for (const [re, page, opts] of routes) {
    const m = path.match(re);
    if (m) { match = [page, opts, m.slice(1)]; break; }
  }
  if (!match) {
    document.title = `${t('notfound.title')} · Penpal`;
    fill(main, pages.notFound());
  } else {
    const [page, opts, params] = match;
    if (opts.auth && !state.me) return navigate(`/login?next=${encodeURIComponent(path)}`, true);
    if (opts.guest && state.me) return navigate(state.me.profile.onboarded ? '/chat' : '/welcome', true);
    if (opts.auth && !opts.onboarding && !state.me.profile.onboarded) return navigate('/welcome', true);
    const ctx = { params, query: new URLSearchParams(location.search), onLeave: (f) => { cleanup = f; } };
    fill(main, await page(ctx));
    if (opts.auth && state.me && state.me.email_verified === false) main.prepend(pages.unverifiedBanner());
  }
  // Move focus to the new page's heading so keyboard and screen-reader users land there.
  if (lastPath !== path) {
    const h1 = main.querySelector('h1');
    if (h1 && lastPath !== null) { h1.tabIndex = -1; h1.focus(); }
    lastPath = path;
  }
}

/** Goes to `path` inside the app. */
export function navigate(path, replace = false) {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  return render();
}

document.addEventListener('click', (e) => {
  const a = e.target.closest('a');
  if (!a || a.target || a.hasAttribute('download') || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/v1/') || url.pathname.startsWith('/assets/')) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener('popstate', () => render());
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', applyTheme);
onSession((on) => { if (!on && state.me) { state.me = null; render(); } });

async function start() {
  applyTheme();
  const chosen = !!localStorage.getItem('penpal.lang');
  setLang(getLang(), false);
  if (maybeSignedIn()) {
    try {
      if (await refresh()) {
        await app.loadMe();
        // The account remembers the interface language across devices.
        if (!chosen && state.me.profile.interface_language) setLang(state.me.profile.interface_language);
      }
    } catch { /* offline: show the public pages */ }
  }
  await render();
  document.body.dataset.ready = 'true';
}

start();
