// The marketplace's pages: the catalogue with search and filters, a package's page (its
// description, README, screenshots, versions, publisher and what it asks for in plain words),
// the install-and-grant panel for the server's operator and schools' admins, and the
// publisher's dashboard (keys, publish tokens, packages and their versions).

import { api, ApiError } from './api.js';
import { t, getLang } from './i18n.js';
import { h, fill, field, select, errorBox, toast, fmtDate } from './ui.js';
import { app, navigate } from './app.js';
import { explain, page, languages } from './pages.js';

const KINDS = ['tutor', 'payment-provider', 'notifier', 'lms'];
const LEVELS = ['A1', 'A2', 'B1', 'B2', 'C1', 'C2'];
const enc = encodeURIComponent;

/** What a version asks for, one line per capability, secret and host, in plain words. */
export function asks(caps) {
  const out = [];
  if (caps.kv) out.push(['kv', t('cap.kv')]);
  if (caps.llm) out.push(['llm', t('cap.llm')]);
  for (const s of caps.secrets || []) out.push([`secret:${s}`, t('cap.secret', { name: s })]);
  for (const host of caps.http || []) {
    out.push([`http:${host}`, host === 'operator' ? t('cap.operatorHosts') : t('cap.http', { host })]);
  }
  return out;
}

/** Grants from the ticked boxes (`kv`, `llm`, `secret:NAME`, `http:HOST`). */
function grantsOf(keys) {
  const g = { kv: false, llm: false, secrets: [], http: [] };
  for (const k of keys) {
    if (k === 'kv') g.kv = true;
    else if (k === 'llm') g.llm = true;
    else if (k.startsWith('secret:')) g.secrets.push(k.slice(7));
    else if (k.startsWith('http:')) g.http.push(k.slice(5));
  }
  return g;
}

function kindName(kind) {
  return t(`kind.${kind}`, {}, kind);
}

/** `/marketplace`: search, filters, and the packages that install. */
export async function catalogue({ query }) {
  const names = Object.fromEntries((await languages().catch(() => [])).map(([c, n]) => [c, n]));
  const q = h('input', { type: 'search', maxlength: 200, value: query.get('q') || '', placeholder: t('market.searchHint') });
  const kind = select([['', t('market.anyKind')], ...KINDS.map((k) => [k, kindName(k)])], query.get('kind') || '');
  const language = select([['', t('market.anyLanguage')], ...Object.entries(names)], query.get('language') || '');
  const level = select([['', t('market.anyLevel')], ...LEVELS.map((l) => [l, l])], query.get('level') || '');
  const form = h('form', {
    class: 'card filters', role: 'search',
    onsubmit: (e) => {
      e.preventDefault();
      const p = new URLSearchParams();
      if (q.value.trim()) p.set('q', q.value.trim());
      for (const [k, el] of [['kind', kind], ['language', language], ['level', level]]) if (el.value) p.set(k, el.value);
      navigate(`/marketplace${p.toString() ? `?${p}` : ''}`);
    },
  }, field(t('market.search'), q), field(t('market.kind'), kind), field(t('market.language'), language),
  field(t('market.level'), level), h('button', { type: 'submit', class: 'primary' }, t('market.find')));

  const params = new URLSearchParams();
  for (const k of ['q', 'kind', 'language', 'level', 'publisher', 'page']) if (query.get(k)) params.set(k, query.get(k));
  let results;
  try {
    const found = await api('GET', `/v1/marketplace/packages?${params}`, undefined, { auth: false });
    results = found.length
      ? h('ul', { class: 'packages', 'aria-label': t('market.results') }, found.map((p) => h('li', { class: 'card package' },
        h('h2', {}, h('a', { href: `/marketplace/${enc(p.name)}` }, p.display_name)),
        h('p', {}, p.description),
        h('p', { class: 'hint' }, [
          `${kindName(p.kind)} · ${t('market.by', { publisher: p.publisher })} · v${p.latest}`,
          p.languages.length ? ` · ${p.languages.map((l) => names[l] || l).join(', ')}` : '',
          p.levels.length ? ` · ${p.levels.join(' ')}` : '',
          ` · ${t('market.downloads', { n: p.downloads })}`,
        ]))))
      : h('p', { role: 'status' }, t('market.none'));
  } catch (e) {
    results = h('p', { class: 'error', role: 'alert' }, explain(e));
  }
  return page(t('market.title'), h('p', { class: 'lead' }, t('market.lead')),
    h('p', {}, h('a', { href: '/publisher' }, t('market.publishYours'))), form, results);
}

/** Where the signed-in account may install: the server (operator) and its schools (admin). */
async function installScopes() {
  const me = app.state.me;
  if (!me) return [];
  const scopes = [];
  if (me.role === 'operator') scopes.push({ label: t('market.server'), base: '/v1/marketplace/installs' });
  const schools = await api('GET', '/v1/schools').catch(() => []);
  for (const s of schools.filter((x) => x.role === 'admin')) {
    scopes.push({ label: s.name, base: `/v1/schools/${enc(s.id)}/installs` });
  }
  return scopes;
}

/** `/marketplace/NAME`: the package, and for admins its install. */
export async function packagePage({ params }) {
  const [name] = params;
  let p;
  try {
    p = await api('GET', `/v1/marketplace/packages/${enc(name)}`, undefined, { auth: false });
  } catch (e) {
    return page(t('market.title'), h('p', { class: 'error', role: 'alert' },
      e instanceof ApiError && e.status === 404 ? t('market.noPackage') : explain(e)));
  }
  const l = p;
  const latest = p.versions.find((v) => v.version === l.latest) || p.versions[0];
  const lang = getLang();
  const asked = latest ? asks(latest.requested) : [];
  const about = h('section', { class: 'card' },
    h('p', { class: 'lead' }, l.description),
    h('dl', { class: 'facts' },
      h('dt', {}, t('market.publisher')), h('dd', {}, `${p.publisher_name} (${l.publisher})`),
      h('dt', {}, t('market.kind')), h('dd', {}, kindName(l.kind)),
      l.languages.length ? [h('dt', {}, t('market.language')), h('dd', {}, l.languages.join(', '))] : null,
      l.levels.length ? [h('dt', {}, t('market.level')), h('dd', {}, l.levels.join(' '))] : null,
      h('dt', {}, t('market.latest')), h('dd', {}, l.latest),
      h('dt', {}, t('market.downloadsTitle')), h('dd', {}, String(l.downloads))),
    h('h2', {}, t('market.asks')),
    asked.length
      ? h('ul', { class: 'asks' }, asked.map(([, words]) => h('li', {}, words)))
      : h('p', {}, t('market.asksNothing')));
  const readme = p.readme
    ? h('section', { class: 'card' }, h('h2', {}, t('market.readme')), h('pre', { class: 'readme' }, p.readme))
    : null;
  const shots = p.screenshots.length
    ? h('section', { class: 'card' }, h('h2', {}, t('market.screenshots')),
      h('div', { class: 'shots' }, p.screenshots.map((s) => h('img', {
        src: `/v1/marketplace/packages/${enc(name)}/${enc(l.latest)}/screenshots/${enc(s.name)}`,
        alt: t('market.screenshotOf', { name: l.display_name, file: s.name }), loading: 'lazy',
      }))))
    : null;
  const versions = h('section', { class: 'card' }, h('h2', {}, t('market.versions')),
    h('table', {}, h('thead', {}, h('tr', {}, [t('market.version'), t('market.published'), t('market.state')].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, p.versions.map((v) => h('tr', {},
        h('td', {}, v.version), h('td', {}, fmtDate(v.published_at, lang)),
        h('td', {}, v.key_revoked ? t('market.keyRevoked') : v.yanked ? t('market.yanked') : t('market.installs')))))));
  const scopes = await installScopes();
  const installs = await Promise.all(scopes.map((s) => installPanel(s, p, latest)));
  return page(l.display_name, h('p', {}, h('a', { href: '/marketplace' }, `← ${t('market.back')}`)),
    about, installs, readme, shots, versions);
}

/** The install (or its state and controls) of package `p` in one scope. */
async function installPanel(scope, p, latest) {
  const name = p.name;
  const box = h('section', { class: 'card install', 'aria-label': t('market.installIn', { where: scope.label }) });
  const draw = async (note) => {
    let view = null;
    try {
      view = await api('GET', `${scope.base}/${enc(name)}`);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) return fill(box, h('p', { class: 'error', role: 'alert' }, explain(e)));
    }
    fill(box, h('h2', {}, t('market.installIn', { where: scope.label })),
      note ? h('p', { role: 'status' }, note) : null,
      view ? installed(scope, view, draw) : installForm(scope, name, latest, draw));
  };
  await draw();
  return box;
}

/** Checkboxes for what `caps` asks, none ticked unless in `granted`; returns [fieldset, keys()]. */
function grantBoxes(caps, granted, legend) {
  const boxes = asks(caps).map(([key, words]) => {
    const input = h('input', { type: 'checkbox', value: key, checked: granted.includes(key) });
    const id = `grant-${key.replace(/[^a-z0-9]/gi, '-')}-${Math.random().toString(36).slice(2, 7)}`;
    input.id = id;
    return [input, h('div', { class: 'check' }, input, h('label', { for: id }, words))];
  });
  const set = h('fieldset', { class: 'grants' }, h('legend', {}, legend),
    boxes.length ? boxes.map(([, el]) => el) : h('p', {}, t('market.asksNothing')));
  return [set, () => boxes.filter(([i]) => i.checked).map(([i]) => i.value)];
}

function installForm(scope, name, latest, redraw) {
  if (!latest) return h('p', {}, t('market.noVersion'));
  const [grants, ticked] = grantBoxes(latest.requested, [], t('market.grantLegend'));
  const range = h('input', { maxlength: 64, placeholder: `^${latest.version}` });
  const [err, showErr] = errorBox();
  const go = h('button', { type: 'submit', class: 'primary' }, t('market.install', { version: latest.version }));
  return h('form', {
    onsubmit: async (e) => {
      e.preventDefault();
      showErr('');
      go.disabled = true;
      try {
        const body = { package: name, version: latest.version, grants: grantsOf(ticked()) };
        if (range.value.trim()) body.range = range.value.trim();
        const view = await api('POST', scope.base, body);
        await redraw(t('market.installed', { name: view.runs_as, version: view.version }));
      } catch (x) { showErr(explain(x)); go.disabled = false; }
    },
  }, h('p', { class: 'hint' }, t('market.grantLead')), grants,
  field(t('market.range'), range, t('market.rangeHint')), err, go);
}

function installed(scope, v, redraw) {
  const path = `${scope.base}/${enc(v.package)}`;
  const [err, showErr] = errorBox();
  const act = (method, suffix, body, done) => async () => {
    showErr('');
    try {
      await api(method, `${path}${suffix}`, body);
      await redraw(done);
    } catch (x) { showErr(explain(x)); }
  };
  const grantedKeys = asks(v.grants).map(([k]) => k);
  const grantedWords = asks(v.grants).map(([, w]) => w);
  const ungrantedWords = asks(v.requested).filter(([k]) => !grantedKeys.includes(k)).map(([, w]) => w);
  const waiting = v.waiting;
  const [grants, ticked] = grantBoxes(waiting ? waiting.requested : v.requested, grantedKeys,
    waiting ? t('market.grantWaiting', { version: waiting.version }) : t('market.grantLegend'));
  const save = h('form', {
    onsubmit: async (e) => {
      e.preventDefault();
      await act('PATCH', '', { grants: grantsOf(ticked()) }, t('market.saved'))();
    },
  }, grants, h('button', { type: 'submit', class: 'primary' }, waiting ? t('market.decide') : t('market.saveGrants')));
  return [
    h('dl', { class: 'facts' },
      h('dt', {}, t('market.runsAs')), h('dd', {}, v.runs_as),
      h('dt', {}, t('market.version')), h('dd', {}, `${v.version}${v.pinned ? ` (${t('market.pinned')})` : ''}`),
      h('dt', {}, t('market.state')), h('dd', {}, t(`install.${v.status}`, {}, v.status)),
      h('dt', {}, t('market.range')), h('dd', {}, v.range),
      h('dt', {}, t('market.granted')), h('dd', { class: 'granted' }, grantedWords.length ? grantedWords.join(' · ') : t('market.nothing')),
      h('dt', {}, t('market.ungranted')), h('dd', { class: 'ungranted' }, ungrantedWords.length ? ungrantedWords.join(' · ') : t('market.nothing'))),
    v.key_revoked ? h('p', { class: 'error' }, t('market.revokedWarning')) : null,
    v.disabled ? h('p', { class: 'error' }, v.disabled) : null,
    save,
    h('div', { class: 'actions' },
      h('button', { type: 'button', onclick: act('POST', '/upgrade', {}, t('market.upgraded')) }, t('market.upgrade')),
      v.previous ? h('button', { type: 'button', onclick: act('POST', '/rollback', undefined, t('market.rolledBack')) }, t('market.rollback', { version: v.previous })) : null,
      h('button', { type: 'button', onclick: act('PATCH', '', { pinned: !v.pinned }, t('market.saved')) }, v.pinned ? t('market.unpin') : t('market.pin')),
      h('button', {
        type: 'button', class: 'danger',
        onclick: async () => { if (confirm(t('market.confirmUninstall', { name: v.runs_as }))) await act('DELETE', '', undefined, t('market.uninstalled'))(); },
      }, t('market.uninstall'))),
    err,
  ];
}

/** `/publisher`: become a publisher, then keys, tokens, packages. */
export async function publisherPage() {
  const me = app.state.me;
  let mine = null;
  try {
    mine = await api('GET', '/v1/me/publisher');
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 404)) return page(t('pub.title'), h('p', { class: 'error', role: 'alert' }, explain(e)));
  }
  if (!mine) return page(t('pub.title'), h('p', { class: 'lead' }, t('pub.lead')), becomeForm(me));
  const box = h('div', {});
  const draw = async () => {
    const [pub, tokens] = await Promise.all([
      api('GET', `/v1/publishers/${enc(mine.slug)}`),
      api('GET', `/v1/publishers/${enc(mine.slug)}/tokens`),
    ]);
    // Every package, withdrawn ones too: the catalogue lists only what installs.
    const pages = await Promise.all(pub.packages.map((n) => api('GET', `/v1/marketplace/packages/${enc(n)}`)));
    fill(box, keysCard(pub, draw), tokensCard(mine.slug, tokens, draw), packagesCard(pages, draw));
  };
  await draw();
  return page(t('pub.titleOf', { name: mine.name }),
    h('p', { class: 'lead' }, t('pub.manifestSays', { slug: mine.slug })),
    h('pre', { class: 'readme' }, `penpal plugin new my-tutor --kind tutor --lang python --publisher ${mine.slug}\npenpal plugin build my-tutor\npenpal plugin sign my-tutor --key ~/.penpal.key\nPENPAL_TOKEN=pp_… penpal plugin publish my-tutor --registry ${location.origin}`),
    box);
}

function becomeForm(me) {
  if (me && me.email_verified === false) return h('p', { class: 'error' }, t('pub.verifyFirst'));
  const slug = h('input', { required: true, minlength: 2, maxlength: 39, pattern: '[a-z][a-z0-9]*(-[a-z0-9]+)*', autocomplete: 'off' });
  const name = h('input', { required: true, maxlength: 80, value: me ? me.display_name || '' : '' });
  const [err, showErr] = errorBox();
  const go = h('button', { type: 'submit', class: 'primary' }, t('pub.become'));
  return h('form', {
    class: 'card narrow',
    onsubmit: async (e) => {
      e.preventDefault();
      showErr('');
      go.disabled = true;
      try {
        await api('POST', '/v1/publishers', { slug: slug.value.trim(), name: name.value.trim() });
        navigate('/publisher', true);
      } catch (x) { showErr(explain(x)); go.disabled = false; }
    },
  }, field(t('pub.slug'), slug, t('pub.slugHint')), field(t('pub.name'), name), err, go);
}

function keysCard(pub, redraw) {
  const key = h('input', { required: true, maxlength: 100, autocomplete: 'off', spellcheck: false });
  const label = h('input', { required: true, maxlength: 80, placeholder: t('pub.keyLabelHint') });
  const [err, showErr] = errorBox();
  const lang = getLang();
  return h('section', { class: 'card', 'aria-labelledby': 'keys-title' }, h('h2', { id: 'keys-title' }, t('pub.keys')),
    h('p', { class: 'hint' }, t('pub.keysLead')),
    pub.keys.length
      ? h('ul', { class: 'keys' }, pub.keys.map((k) => h('li', {},
        h('strong', {}, k.label), ` — ${k.fingerprint} — ${fmtDate(k.created_at, lang)}`,
        k.revoked_at ? ` — ${t('pub.revokedOn', { date: fmtDate(k.revoked_at, lang) })}` : [' ',
          h('button', {
            type: 'button', class: 'danger',
            onclick: async () => {
              if (!confirm(t('pub.confirmRevoke', { label: k.label }))) return;
              try { await api('DELETE', `/v1/publishers/${enc(pub.slug)}/keys/${enc(k.fingerprint)}`); await redraw(); } catch (x) { showErr(explain(x)); }
            },
          }, t('pub.revoke', { label: k.label }))])))
      : h('p', {}, t('pub.noKeys')),
    h('form', {
      onsubmit: async (e) => {
        e.preventDefault();
        showErr('');
        try {
          await api('POST', `/v1/publishers/${enc(pub.slug)}/keys`, { public_key: key.value.trim(), label: label.value.trim() });
          toast(t('pub.keyAdded'));
          await redraw();
        } catch (x) { showErr(explain(x)); }
      },
    }, field(t('pub.publicKey'), key, t('pub.publicKeyHint')), field(t('pub.keyLabel'), label), err,
    h('button', { type: 'submit', class: 'primary' }, t('pub.addKey'))));
}

function tokensCard(slug, tokens, redraw) {
  const label = h('input', { required: true, maxlength: 80, placeholder: 'CI' });
  const [err, showErr] = errorBox();
  const lang = getLang();
  return h('section', { class: 'card', 'aria-labelledby': 'tokens-title' }, h('h2', { id: 'tokens-title' }, t('pub.tokens')),
    h('p', { class: 'hint' }, t('pub.tokensLead')),
    tokens.length
      ? h('ul', {}, tokens.map((tk) => h('li', {}, h('strong', {}, tk.label),
        ` — ${tk.last_used_at ? t('pub.usedOn', { date: fmtDate(tk.last_used_at, lang) }) : t('pub.neverUsed')} `,
        h('button', {
          type: 'button', class: 'danger',
          onclick: async () => {
            try { await api('DELETE', `/v1/publishers/${enc(slug)}/tokens/${enc(tk.id)}`); await redraw(); } catch (x) { showErr(explain(x)); }
          },
        }, t('pub.revoke', { label: tk.label })))))
      : h('p', {}, t('pub.noTokens')),
    h('form', {
      onsubmit: async (e) => {
        e.preventDefault();
        showErr('');
        try {
          const made = await api('POST', `/v1/publishers/${enc(slug)}/tokens`, { label: label.value.trim() });
          await redraw();
          // Shown once: the server keeps only its hash.
          fill(document.getElementById('new-token'), h('p', {}, t('pub.tokenOnce')), h('pre', { class: 'token', 'data-token': made.token }, made.token));
        } catch (x) { showErr(explain(x)); }
      },
    }, field(t('pub.tokenLabel'), label), err, h('button', { type: 'submit', class: 'primary' }, t('pub.makeToken'))),
    h('div', { id: 'new-token', 'aria-live': 'polite' }));
}

function packagesCard(pages, redraw) {
  const lang = getLang();
  const [err, showErr] = errorBox();
  return h('section', { class: 'card', 'aria-labelledby': 'packages-title' }, h('h2', { id: 'packages-title' }, t('pub.packages')),
    pages.length ? pages.map((p) => h('div', { class: 'package' },
      h('h3', {}, h('a', { href: `/marketplace/${enc(p.name)}` }, p.display_name), ` (${p.name})`),
      h('p', { class: 'hint' }, t('market.downloads', { n: p.downloads })),
      h('table', {}, h('thead', {}, h('tr', {}, [t('market.version'), t('market.published'), t('market.state'), ''].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, p.versions.map((v) => h('tr', {},
          h('td', {}, v.version), h('td', {}, fmtDate(v.published_at, lang)),
          h('td', {}, v.key_revoked ? t('market.keyRevoked') : v.yanked ? t('market.yanked') : t('market.installs')),
          h('td', {}, h('button', {
            type: 'button',
            onclick: async () => {
              try {
                await api('PUT', `/v1/marketplace/packages/${enc(p.name)}/${enc(v.version)}/yanked`, { yanked: !v.yanked });
                await redraw();
              } catch (x) { showErr(explain(x)); }
            },
          }, v.yanked ? t('pub.restore', { version: v.version }) : t('pub.yank', { version: v.version }))))))))) : h('p', {}, t('pub.noPackages')),
    err);
}
