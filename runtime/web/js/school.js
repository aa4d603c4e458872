// Pages for schools: the landing of a launch from an LMS course, a class (the teacher's
// dashboard or the learner's assignments), the assignment picker teachers reach from their
// LMS (deep linking) and a learner's assignment.

import { api, startSession, ApiError } from './api.js';
import { t, getLang } from './i18n.js';
import { h, field, select, errorBox, toast, fmtDate } from './ui.js';
import { app, navigate } from './app.js';
import { explain, page, languages } from './pages.js';

/** A same-origin path to go on to, or `/chat`. */
function safeNext(next) {
  return next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\') ? next : '/chat';
}

const pct = (v) => (v === null || v === undefined ? '—' : `${Math.round(v * 100)} %`);

/** `/lti?code=…&next=…` (from an LMS) and `/arrive?…` (from a school's sign-in): the
 * one-time code becomes this browser's session. */
export async function ltiLanding({ query }) {
  const school = location.pathname === '/arrive';
  try {
    await startSession('handoff', { code: query.get('code') || '' });
    await app.loadMe();
  } catch (e) {
    const why = e instanceof ApiError && e.status < 500 ? t(school ? 'arrive.expired' : 'lti.expired') : explain(e);
    return page(t('lti.title'), h('p', { class: 'error', role: 'alert' }, why));
  }
  // The page in the address bar must not keep the spent code.
  setTimeout(() => navigate(safeNext(query.get('next')), true));
  return page(t('lti.title'), h('p', { role: 'status' }, t(school ? 'arrive.opening' : 'lti.opening')));
}

/** The sign-in page's way in for schools with their own accounts: an address finds the
 * school, and the browser goes through the school's provider. */
export function schoolSignIn() {
  const email = h('input', { type: 'email', autocomplete: 'email', required: true, maxlength: 254 });
  const [err, showErr] = errorBox();
  const go = h('button', { type: 'submit' }, t('sso.go'));
  return h('form', {
    class: 'card narrow', 'aria-labelledby': 'sso-title',
    onsubmit: async (e) => {
      e.preventDefault();
      showErr('');
      go.disabled = true;
      try {
        const found = await api('GET', `/v1/sso/discover?email=${encodeURIComponent(email.value.trim())}`);
        const next = new URLSearchParams(location.search).get('next');
        location.assign(next ? `${found.url}&next=${encodeURIComponent(safeNext(next))}` : found.url);
      } catch (x) {
        showErr(x instanceof ApiError && x.status === 404 ? t('sso.none') : explain(x));
        go.disabled = false;
      }
    },
  }, h('h2', { id: 'sso-title' }, t('sso.title')), h('p', {}, t('sso.lead')), field(t('sso.email'), email), err, go);
}

/** A school admin's sign-in with the school's own accounts (OpenID Connect). */
export async function ssoCard(school) {
  const path = `/v1/schools/${encodeURIComponent(school.id)}/sso`;
  const box = h('section', { class: 'sso' });
  const draw = async (note) => {
    const v = await api('GET', path);
    const p = v.provider;
    const issuer = h('input', { type: 'url', required: true, maxlength: 500, value: p ? p.issuer : '', placeholder: 'https://accounts.school.example' });
    const client = h('input', { required: true, maxlength: 200, value: p ? p.client_id : '' });
    const secret = h('input', { type: 'password', autocomplete: 'off', maxlength: 500, required: !p });
    const domains = h('input', { maxlength: 2000, value: p ? p.domains.join(', ') : '', placeholder: 'school.example' });
    const [err, showErr] = errorBox();
    const save = h('button', { type: 'submit', class: 'primary' }, t('ssoset.save'));
    const form = h('form', {
      onsubmit: async (e) => {
        e.preventDefault();
        showErr('');
        save.disabled = true;
        const body = {
          issuer: issuer.value.trim(), client_id: client.value.trim(),
          email_domains: domains.value.split(/[\s,]+/).filter(Boolean),
        };
        if (secret.value) body.client_secret = secret.value;
        try { await api('PUT', path, body); await draw(t('ssoset.saved')); } catch (x) { showErr(explain(x)); save.disabled = false; }
      },
    },
    field(t('ssoset.issuer'), issuer), field(t('ssoset.client'), client),
    field(t('ssoset.secret'), secret, p ? t('ssoset.keep') : null),
    field(t('ssoset.domains'), domains, t('ssoset.domainsHint')), err, save,
    p ? h('button', {
      type: 'button',
      onclick: async () => {
        if (!confirm(t('ssoset.confirmRemove'))) return;
        try { await api('DELETE', path); await draw(); } catch (x) { showErr(explain(x)); }
      },
    }, t('ssoset.remove')) : null);
    box.replaceChildren(h('h3', {}, t('ssoset.title', { school: school.name })), h('p', {}, t('ssoset.lead')),
      note ? h('p', { role: 'status' }, note) : (p ? null : h('p', {}, t('ssoset.off'))),
      h('dl', {}, h('dt', {}, t('ssoset.redirect')), h('dd', {}, v.redirect_uri),
        h('dt', {}, t('ssoset.link')), h('dd', {}, v.sign_in_url)),
      form);
  };
  try { await draw(); } catch (x) { box.replaceChildren(h('p', { class: 'error' }, explain(x))); }
  return box;
}

/** The fields of a new assignment; `onMade(assignment)` after it is made. */
function newAssignmentForm(classId, onMade) {
  const title = h('input', { required: true, maxlength: 200 });
  const kind = select([['scenario', t('assign.kind.scenario')], ['topic', t('assign.kind.topic')]], 'scenario');
  const scenario = select(['restaurant', 'travel', 'job-interview', 'business-meeting', 'doctor']
    .map((s) => [s, t(`assign.scenario.${s}`)]), 'restaurant');
  const topic = h('input', { maxlength: 200 });
  const scenarioField = field(t('assign.scenario'), scenario);
  const topicField = field(t('assign.topic'), topic);
  topicField.hidden = true;
  const turns = h('input', { type: 'number', min: 1, max: 100, value: 6 });
  kind.addEventListener('change', () => {
    scenarioField.hidden = kind.value !== 'scenario';
    topicField.hidden = kind.value !== 'topic';
  });
  const [err, showErr] = errorBox();
  const form = h('form', {
    class: 'card',
    onsubmit: async (e) => {
      e.preventDefault();
      showErr('');
      const body = { title: title.value, min_turns: Number(turns.value) };
      if (kind.value === 'scenario') body.scenario = scenario.value; else body.topic = topic.value;
      try {
        const made = await api('POST', `/v1/classes/${encodeURIComponent(classId)}/assignments`, body);
        toast(t('assign.made', { title: made.title }));
        form.reset();
        onMade(made);
      } catch (x) { showErr(explain(x)); }
    },
  }, h('h2', {}, t('assign.new')), field(t('assign.title'), title), field(t('assign.kind'), kind),
  scenarioField, topicField, field(t('assign.turns'), turns), err,
  h('button', { type: 'submit', class: 'primary' }, t('assign.create')));
  return form;
}

/** `/classes`: the caller's assignments to do, and each school's classes (staff make new ones). */
export async function classesPage() {
  const [schools, todo] = await Promise.all([api('GET', '/v1/schools'), api('GET', '/v1/assignments')]);
  const parts = [];
  if (todo.length) {
    parts.push(h('section', { class: 'card' }, h('h2', {}, t('classes.todo')), h('ul', {}, todo.map((x) => h('li', {},
      h('a', { href: `/assignments/${x.assignment.id}` }, x.assignment.title), ` — ${x.class_name}`,
      x.submission ? ` — ${t(`sub.status.${x.submission.status}`)}` : '',
      x.assignment.due_at ? ` — ${t('assign.due', { when: fmtDate(x.assignment.due_at, getLang()) })}` : '')))));
  }
  const langs = await languages();
  for (const school of schools) {
    const list = await api('GET', `/v1/schools/${encodeURIComponent(school.id)}/classes`);
    const section = h('section', { class: 'card' }, h('h2', {}, school.name),
      list.length ? h('ul', {}, list.map((c) => h('li', {}, h('a', { href: `/classes/${c.class.id}` }, c.class.name),
        ` — ${c.class.language.toUpperCase()} ${c.class.level} — ${t('classes.counts', { learners: c.learners, assignments: c.assignments })}`)))
        : h('p', {}, t('classes.none')));
    if (school.role !== 'learner') {
      const name = h('input', { required: true, maxlength: 120 });
      const language = select(langs, 'fr');
      const level = select(['A1', 'A2', 'B1', 'B2', 'C1', 'C2'].map((l) => [l, l]), 'A2');
      const [err, showErr] = errorBox();
      section.append(h('form', {
        onsubmit: async (e) => {
          e.preventDefault();
          showErr('');
          try {
            const made = await api('POST', `/v1/schools/${encodeURIComponent(school.id)}/classes`,
              { name: name.value, language: language.value, level: level.value });
            navigate(`/classes/${made.id}`);
          } catch (x) { showErr(explain(x)); }
        },
      }, h('h3', {}, t('classes.new')), field(t('classes.name'), name), field(t('classes.language'), language),
      field(t('classes.level'), level), err, h('button', { type: 'submit' }, t('classes.create'))));
    }
    parts.push(section);
  }
  if (!parts.length) parts.push(h('p', {}, t('classes.noSchool')));
  return page(t('classes.title'), parts);
}

/** `/classes/{id}`: the teacher's dashboard, or the learner's list of assignments. */
export async function classPage({ params }) {
  const id = params[0];
  let cls;
  try { cls = await api('GET', `/v1/classes/${encodeURIComponent(id)}`); } catch (e) {
    return page(t('class.title'), h('p', { class: 'error', role: 'alert' }, explain(e)));
  }
  const heading = `${cls.name} — ${cls.language.toUpperCase()} ${cls.level}`;
  let board = null;
  try { board = await api('GET', `/v1/classes/${encodeURIComponent(id)}/dashboard`); } catch (e) {
    if (!(e instanceof ApiError && e.status === 403)) return page(heading, h('p', { class: 'error', role: 'alert' }, explain(e)));
  }
  if (!board) {
    const list = await api('GET', `/v1/classes/${encodeURIComponent(id)}/assignments`);
    return page(heading, h('h2', {}, t('class.assignments')), list.length
      ? h('ul', { class: 'assignments' }, list.map((a) => h('li', {}, h('a', { href: `/assignments/${a.id}` }, a.title),
        a.due_at ? ` — ${t('assign.due', { when: fmtDate(a.due_at, getLang()) })}` : '')))
      : h('p', {}, t('class.none')));
  }
  const download = h('button', {
    type: 'button',
    onclick: async () => {
      try {
        const csv = await api('GET', `/v1/classes/${encodeURIComponent(id)}/gradebook.csv`);
        const a = h('a', { href: URL.createObjectURL(new Blob([csv], { type: 'text/csv' })), download: `${cls.name}.csv` });
        a.click();
        URL.revokeObjectURL(a.href);
      } catch (x) { toast(explain(x), 'error'); }
    },
  }, t('class.csv'));
  const sync = h('button', {
    type: 'button',
    onclick: async () => {
      try {
        const s = await api('POST', `/v1/classes/${encodeURIComponent(id)}/roster/sync`);
        toast(t('class.synced', { n: s.read }));
      } catch (x) { toast(explain(x), 'error'); }
    },
  }, t('class.sync'));
  const assignments = h('tbody', {}, board.assignments.map((a) => h('tr', {},
    h('th', { scope: 'row' }, h('a', { href: `/assignments/${a.id}` }, a.title)),
    h('td', {}, String(a.started)), h('td', {}, String(a.handed_in)), h('td', {}, String(a.needs_review)), h('td', {}, pct(a.average)))));
  return page(heading,
    h('p', {}, download, ' ', sync),
    h('section', { class: 'card' }, h('h2', {}, t('class.assignments')), board.assignments.length
      ? h('table', {}, h('thead', {}, h('tr', {}, [t('assign.title'), t('class.started'), t('class.handedIn'), t('class.review'), t('class.average')]
        .map((c) => h('th', { scope: 'col' }, c)))), assignments)
      : h('p', {}, t('class.none'))),
    newAssignmentForm(id, () => navigate(location.pathname, true)),
    h('section', { class: 'card' }, h('h2', {}, t('class.learners')), h('table', {},
      h('thead', {}, h('tr', {}, [t('class.learner'), t('class.handedIn'), t('class.average')].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, board.learners.map((l) => h('tr', {}, h('th', { scope: 'row' }, l.name || l.email),
        h('td', {}, String(l.handed_in)), h('td', {}, pct(l.average))))))),
    h('section', { class: 'card' }, h('h2', {}, t('class.errors')), board.errors_by_category.length
      ? h('ul', {}, board.errors_by_category.map((c) => h('li', {}, `${c.category}: ${c.errors}`)))
      : h('p', {}, t('class.noErrors'))));
}

/** `/classes/{id}/pick?link=…`: a teacher came from the LMS to place assignments in the course. */
export async function pickPage({ params, query }) {
  const classId = params[0];
  const link = query.get('link') || '';
  let pick;
  try { pick = await api('GET', `/v1/lti/picks/${encodeURIComponent(link)}`); } catch (e) {
    return page(t('pick.title'), h('p', { class: 'error', role: 'alert' }, e instanceof ApiError && e.status === 404 ? t('pick.gone') : explain(e)));
  }
  const [err, showErr] = errorBox();
  const list = h('fieldset', {}, h('legend', {}, pick.accept_multiple ? t('pick.several') : t('pick.one')));
  const draw = async () => {
    const all = await api('GET', `/v1/classes/${encodeURIComponent(classId)}/assignments`);
    list.replaceChildren(list.firstChild);
    if (!all.length) list.append(h('p', {}, t('pick.none')));
    for (const a of all) {
      const box = h('input', { type: pick.accept_multiple ? 'checkbox' : 'radio', name: 'assignment', value: a.id, id: `pick-${a.id}` });
      list.append(h('div', { class: 'choice' }, box, h('label', { for: box.id }, a.title)));
    }
  };
  await draw();
  const send = async (ids) => {
    showErr('');
    try {
      const answer = await api('POST', `/v1/lti/picks/${encodeURIComponent(link)}`, { assignments: ids });
      // A page of penpal's own posts the signed answer back to the LMS.
      location.assign(new URL(answer.continue_url).pathname);
    } catch (x) { showErr(explain(x)); }
  };
  const form = h('form', {
    onsubmit: (e) => {
      e.preventDefault();
      const ids = [...list.querySelectorAll('input:checked')].map((i) => i.value);
      if (!ids.length) return showErr(t('pick.choose'));
      return send(ids);
    },
  }, list, err, h('p', {}, h('button', { type: 'submit', class: 'primary' }, t('pick.add')), ' ',
    h('button', { type: 'button', onclick: () => send([]) }, t('pick.cancel'))));
  return page(t('pick.title'), form, newAssignmentForm(classId, () => draw()));
}

const CRITERIA = ['task_completion', 'accuracy', 'range', 'fluency'];

/** An assignment's submissions for its teacher: each learner's status and grade; one opens
 * to its conversation (as handed in) and a form overriding the grade with a comment. */
function teacherView(all) {
  const detail = h('section', { class: 'card', 'aria-live': 'polite' });
  detail.hidden = true;
  const open = async (s) => {
    const d = await api('GET', `/v1/submissions/${encodeURIComponent(s.id)}`);
    const who = s.name || s.email || t('class.learner');
    const [err, showErr] = errorBox();
    const picks = {};
    const grade = d.submission.grade;
    const rows = grade ? grade.criteria.map((c) => {
      picks[c.criterion] = select([0, 1, 2, 3, 4].map((n) => [String(n), String(n)]), String(c.score), { id: `crit-${c.criterion}` });
      return h('div', { class: 'field' }, h('label', { for: `crit-${c.criterion}` }, t(`crit.${c.criterion}`)), picks[c.criterion],
        h('p', { class: 'hint' }, c.reason));
    }) : [];
    const comment = h('textarea', { id: 'grade-comment', rows: 3, maxlength: 2000 }, grade && grade.comment ? grade.comment : '');
    detail.replaceChildren(h('h2', {}, t('sub.of', { name: who })),
      h('h3', {}, t('sub.transcript')),
      d.messages.length ? h('ol', { class: 'transcript' }, d.messages.map((m) => h('li', { class: `msg ${m.role}` },
        h('strong', {}, m.role === 'learner' ? who : t('sub.tutor')), ' ', m.text))) : h('p', {}, t('sub.empty')),
      grade ? h('form', {
        onsubmit: async (e) => {
          e.preventDefault();
          showErr('');
          const scores = {};
          for (const c of CRITERIA) if (picks[c]) scores[c] = Number(picks[c].value);
          const body = { scores };
          if (comment.value.trim()) body.comment = comment.value.trim();
          try {
            const saved = await api('PUT', `/v1/submissions/${encodeURIComponent(s.id)}/grade`, body);
            toast(t('sub.saved', { total: saved.grade.total, max: saved.grade.max }));
            navigate(location.pathname, true);
          } catch (x) { showErr(explain(x)); }
        },
      }, h('h3', {}, t('assign.grade', { total: grade.total, max: grade.max })), rows,
      h('div', { class: 'field' }, h('label', { for: 'grade-comment' }, t('sub.comment')), comment), err,
      h('button', { type: 'submit', class: 'primary' }, t('sub.save'))) : h('p', {}, t(`sub.status.${s.status}`)));
    detail.hidden = false;
    const title = detail.querySelector('h2');
    title.tabIndex = -1;
    title.focus();
  };
  const table = all.length ? h('table', {},
    h('thead', {}, h('tr', {}, [t('class.learner'), t('sub.status'), t('sub.turns'), t('sub.grade')].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, all.map((s) => h('tr', {},
      h('th', { scope: 'row' }, h('button', { type: 'button', class: 'link', onclick: () => open(s).catch((x) => toast(explain(x), 'error')) },
        s.name || s.email || t('class.learner'))),
      h('td', {}, t(`sub.status.${s.status}`), s.late ? ` — ${t('sub.late')}` : ''),
      h('td', {}, s.turns === null || s.turns === undefined ? '—' : String(s.turns)),
      h('td', {}, s.grade ? `${s.grade.total} / ${s.grade.max}${s.grade.needs_review ? ` — ${t('class.review')}` : ''}` : '—')))))
    : h('p', {}, t('sub.none'));
  return [h('h2', {}, t('sub.title')), table, detail];
}

/** `/assignments/{id}`: a learner's task, started, continued and handed in here. */
export async function assignmentPage({ params }) {
  const id = params[0];
  let view;
  try { view = await api('GET', `/v1/assignments/${encodeURIComponent(id)}`); } catch (e) {
    return page(t('assign.page'), h('p', { class: 'error', role: 'alert' }, explain(e)));
  }
  const a = view.assignment;
  const sub = view.submission;
  // Its teachers see everyone's submissions instead.
  try {
    const all = await api('GET', `/v1/assignments/${encodeURIComponent(id)}/submissions`);
    return page(a.title, teacherView(all));
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 403)) return page(a.title, h('p', { class: 'error', role: 'alert' }, explain(e)));
  }
  const [err, showErr] = errorBox();
  const facts = h('ul', {},
    a.scenario ? h('li', {}, t('assign.scenarioIs', { s: a.scenario })) : null,
    a.topic ? h('li', {}, t('assign.topicIs', { s: a.topic })) : null,
    h('li', {}, t('assign.turnsAtLeast', { n: a.min_turns })),
    h('li', {}, t('assign.level', { level: a.level })),
    a.due_at ? h('li', {}, t('assign.due', { when: fmtDate(a.due_at, getLang()) })) : null);
  const parts = [a.instructions ? h('p', {}, a.instructions) : null, facts];
  if (!sub) {
    parts.push(h('button', {
      type: 'button', class: 'primary',
      onclick: async () => {
        try {
          const s = await api('POST', `/v1/assignments/${encodeURIComponent(id)}/start`);
          navigate(`/chat/${s.conversation}`);
        } catch (x) { showErr(explain(x)); }
      },
    }, t('assign.start')));
  } else if (sub.status === 'started') {
    parts.push(h('p', {}, h('a', { class: 'button primary', href: `/chat/${sub.conversation}` }, t('assign.continue')), ' ',
      h('button', {
        type: 'button',
        onclick: async () => {
          try {
            await api('POST', `/v1/assignments/${encodeURIComponent(id)}/submit`);
            navigate(location.pathname, true);
          } catch (x) { showErr(explain(x)); }
        },
      }, t('assign.submit'))));
  } else if (sub.grade) {
    parts.push(h('section', { class: 'card' }, h('h2', {}, t('assign.grade', { total: sub.grade.total, max: sub.grade.max })),
      sub.grade.comment ? h('p', {}, sub.grade.comment) : null));
  } else {
    parts.push(h('p', { role: 'status' }, t('assign.scoring')));
  }
  parts.push(err);
  return page(a.title, parts);
}

/** A school admin's LMS platforms: those registered, a Dynamic Registration link to paste
 * into the LMS, and penpal's endpoints for registering by hand. */
export async function platformsCard(school) {
  const path = `/v1/schools/${encodeURIComponent(school.id)}/lti/platforms`;
  const box = h('section', { class: 'platforms' });
  const draw = async () => {
    const { platforms, tool } = await api('GET', path);
    const [err, showErr] = errorBox();
    const linkOut = h('p', { role: 'status' });
    const make = h('button', {
      type: 'button',
      onclick: async () => {
        showErr('');
        try {
          const link = await api('POST', `/v1/schools/${encodeURIComponent(school.id)}/lti/registrations`, {});
          const id = `reg-${school.id}`;
          linkOut.replaceChildren(h('label', { for: id }, t('lms.link', { when: fmtDate(link.expires_at, getLang()) })),
            h('input', { id, readonly: true, value: link.url, onfocus: (e) => e.target.select() }));
        } catch (x) { showErr(explain(x)); }
      },
    }, t('lms.makeLink'));
    box.replaceChildren(h('h3', {}, t('lms.title', { school: school.name })),
      platforms.length
        ? h('ul', {}, platforms.map((p) => h('li', {}, h('strong', {}, p.name), ` — ${p.issuer} — ${t('lms.client', { id: p.client_id })}`,
          p.deployment_ids.length ? '' : ` — ${t('lms.noDeployment')}`, ' ',
          h('button', {
            type: 'button', class: 'link', 'aria-label': t('lms.removeOne', { name: p.name }),
            onclick: async () => {
              if (!confirm(t('lms.confirmRemove', { name: p.name }))) return;
              try { await api('DELETE', `${path}/${encodeURIComponent(p.id)}`); await draw(); } catch (x) { showErr(explain(x)); }
            },
          }, t('lms.remove')))))
        : h('p', {}, t('lms.none')),
      h('p', {}, t('lms.dynamic')), make, linkOut, err,
      h('details', {}, h('summary', {}, t('lms.byHand')),
        h('dl', {}, h('dt', {}, t('lms.login')), h('dd', {}, tool.login_url), h('dt', {}, t('lms.launch')), h('dd', {}, tool.launch_url),
          h('dt', {}, t('lms.jwks')), h('dd', {}, tool.jwks_url))));
  };
  try { await draw(); } catch (x) { box.replaceChildren(h('p', { class: 'error' }, explain(x))); }
  return box;
}

/** A school's people, for its staff: members (admins change roles and remove them), and
 * invitations by link or mail (admins invite anyone, teachers learners). */
export async function membersCard(school) {
  const base = `/v1/schools/${encodeURIComponent(school.id)}`;
  const admin = school.role === 'admin';
  const box = h('section', { class: 'members' });
  const [err, showErr] = errorBox();
  const made = h('p', { role: 'status' });
  const roles = admin ? ['learner', 'teacher', 'admin'] : ['learner'];
  const act = (f) => async (e) => {
    showErr('');
    try { await f(e); await draw(); } catch (x) { showErr(explain(x)); }
  };
  const draw = async () => {
    const [members, invitations] = await Promise.all([api('GET', `${base}/members`), api('GET', `${base}/invitations`)]);
    const role = select(roles.map((r) => [r, t(`role.${r}`)]), 'learner');
    const email = h('input', { type: 'email', maxlength: 254 });
    const invite = h('form', {
      onsubmit: act(async (e) => {
        e.preventDefault();
        const body = { role: role.value };
        if (email.value.trim()) body.email = email.value.trim();
        const m = await api('POST', `${base}/invitations`, body);
        const id = `inv-${school.id}`;
        made.replaceChildren(body.email ? t('members.mailed', { to: body.email })
          : h('span', {}, h('label', { for: id }, t('members.link')), h('input', { id, readonly: true, value: m.url, onfocus: (ev) => ev.target.select() })));
      }),
    }, field(t('members.role'), role), field(t('members.email'), email, t('members.emailHint')),
    h('button', { type: 'submit' }, t('members.invite')));
    box.replaceChildren(h('h3', {}, t('members.title', { school: school.name })),
      h('ul', {}, members.map((m) => h('li', {}, h('strong', {}, m.name || m.email), ` — ${t(`role.${m.role}`)}`,
        admin ? [' ', select(['learner', 'teacher', 'admin'].map((r) => [r, t(`role.${r}`)]), m.role, {
          'aria-label': t('members.roleOf', { name: m.name || m.email }),
          onchange: act((e) => api('PATCH', `${base}/members/${encodeURIComponent(m.user)}`, { role: e.target.value })),
        }), ' ', h('button', {
          type: 'button', class: 'link', 'aria-label': t('members.removeOne', { name: m.name || m.email }),
          onclick: act(async () => {
            if (confirm(t('members.confirmRemove', { name: m.name || m.email }))) await api('DELETE', `${base}/members/${encodeURIComponent(m.user)}`);
          }),
        }, t('lms.remove'))] : null))),
      h('h4', {}, t('members.invitations')),
      invitations.length
        ? h('ul', {}, invitations.map((i) => h('li', {}, `${t(`role.${i.role}`)} — ${i.email || t('members.byLink')} — `,
          t('members.uses', { uses: i.uses, max: i.max_uses }), ' ', h('button', {
            type: 'button', class: 'link', onclick: act(() => api('DELETE', `${base}/invitations/${encodeURIComponent(i.id)}`)),
          }, t('members.revoke')))))
        : h('p', {}, t('members.noInvitations')),
      invite, made, err);
  };
  try { await draw(); } catch (x) { box.replaceChildren(h('p', { class: 'error' }, explain(x))); }
  return box;
}
