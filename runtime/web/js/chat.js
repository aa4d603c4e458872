// The chat page: the conversation list, a new conversation, and the live thread over the
// socket — replies stream in, corrections land on the learner's own message, and the
// connection's state is always visible.

import { api, refresh } from './api.js';
import { t, getLang } from './i18n.js';
import { h, fill, field, select, errorBox, announce, toast, fmtDate } from './ui.js';
import { app, navigate } from './app.js';
import { explain, marked, corrections, words, languages } from './pages.js';

const MAX_CHARS = 4000;

/** A language's name in the interface language ("French", "français"). */
function langName(code) {
  try { return new Intl.DisplayNames([getLang()], { type: 'language' }).of(code) || code; } catch { return code; }
}

async function conversationList(current) {
  const list = h('ul', { class: 'conv-list' });
  const more = h('button', { type: 'button', hidden: true }, t('chat.more'));
  let cursor = null;
  const load = async () => {
    const page = await api('GET', `/v1/conversations?limit=20${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    for (const c of page.items) {
      list.append(h('li', {}, h('a', { href: `/chat/${c.id}`, 'aria-current': c.id === current ? 'page' : undefined },
        h('span', { class: 'title' }, c.title), h('span', { class: 'meta' }, `${c.language.toUpperCase()} · ${fmtDate(c.updated_at, getLang())}`))));
    }
    cursor = page.next_cursor || null;
    more.hidden = !cursor;
    if (!list.children.length) list.append(h('li', { class: 'hint' }, t('chat.none')));
  };
  more.addEventListener('click', () => load().catch((e) => toast(explain(e), 'error')));
  await load();
  return h('nav', { class: 'sidebar', 'aria-label': t('chat.list') },
    h('a', { class: 'button primary', href: '/chat' }, t('chat.new')), list, more);
}

async function newConversation() {
  const me = app.state.me;
  const [tutors, langs] = await Promise.all([api('GET', '/v1/tutors'), languages()]);
  const names = Object.fromEntries(langs);
  const targets = me.profile.targets.map((x) => x.language);
  const data = { mode: 'tutor', language: targets[0], personality: '', scenario: '', topic: '' };
  const [err, showErr] = errorBox();
  const body = h('div');
  const draw = () => {
    const fits = tutors.filter((x) => x.modes.includes(data.mode) && x.languages.includes(data.language));
    if (!fits.some((x) => x.name === data.personality)) data.personality = fits[0] ? fits[0].name : '';
    const tutor = fits.find((x) => x.name === data.personality);
    const scenarios = tutor ? tutor.scenarios : [];
    if (data.mode === 'role-play' && !scenarios.some((s) => s.id === data.scenario)) data.scenario = scenarios[0] ? scenarios[0].id : '';
    const modes = h('fieldset', { class: 'modes' }, h('legend', {}, t('chat.mode')),
      ['tutor', 'conversation', 'role-play'].map((m) => h('div', { class: 'check' },
        h('input', { type: 'radio', name: 'mode', id: `mode-${m}`, value: m, checked: data.mode === m, onchange: () => { data.mode = m; draw(); document.getElementById(`mode-${m}`).focus(); } }),
        h('label', { for: `mode-${m}` }, h('strong', {}, t(`mode.${m}`)), h('span', { class: 'hint' }, ` — ${t(`mode.${m}.text`)}`)))));
    fill(body,
      modes,
      field(t('settings.language'), select(targets.map((l) => [l, names[l] || l]), data.language, { onchange: (e) => { data.language = e.target.value; draw(); } })),
      fits.length
        ? field(t('chat.personality'), select(fits.map((x) => [x.name, `${x.display_name} — ${x.description}`]), data.personality, { onchange: (e) => { data.personality = e.target.value; draw(); } }))
        : h('p', { class: 'error' }, t('chat.noTutor')),
      data.mode === 'role-play' && scenarios.length
        ? field(t('chat.scenario'), select(scenarios.map((s) => [s.id, `${s.title} — ${s.goal}`]), data.scenario, { onchange: (e) => { data.scenario = e.target.value; } }))
        : field(t('chat.topic'), h('input', { type: 'text', maxlength: 200, value: data.topic, oninput: (e) => { data.topic = e.target.value; } }), t('chat.topicHint')));
  };
  draw();
  const form = h('form', {
    class: 'card',
    onsubmit: async (e) => {
      e.preventDefault();
      showErr('');
      const req = { mode: data.mode, language: data.language, personality: data.personality || undefined };
      if (data.mode === 'role-play' && data.scenario) req.scenario = data.scenario;
      else if (data.topic.trim()) req.topic = data.topic.trim();
      try {
        const c = await api('POST', '/v1/conversations', req);
        navigate(`/chat/${c.id}`);
      } catch (e2) {
        showErr(explain(e2));
        // Not in the learner's plan: the way on is one click away.
        if (e2.code === 'plan_limit') err.append(' ', h('a', { href: '/pricing' }, t('billing.seePlans')));
      }
    },
  }, body, err, h('button', { class: 'primary', type: 'submit' }, t('chat.start')));
  return h('section', { class: 'chat-main' }, h('h1', {}, t('chat.newTitle')), form);
}

/** The live thread of one conversation. */
async function thread(id, onLeave) {
  const [conv, tutors] = await Promise.all([api('GET', `/v1/conversations/${id}`), api('GET', '/v1/tutors').catch(() => [])]);
  const tutor = tutors.find((x) => x.name === conv.personality);
  document.title = `${conv.title} · Penpal`;
  const log = h('ol', { class: 'thread', 'aria-label': t('chat.thread') });
  const bySeq = new Map();
  const byTurn = new Map();
  let lastSeq = 0;
  let older = null;

  const learnerBody = (el, m) => {
    const parts = [h('p', {}, marked(m.text, m.corrections))];
    parts.push(corrections(m.corrections), words(m.vocabulary));
    if (m.status === 'failed') {
      parts.push(h('p', { class: 'failed' }, t('chat.failed'), ' ',
        h('button', { type: 'button', onclick: () => send({ type: 'retry', seq: m.seq }) }, t('chat.retry'))));
    }
    fill(el, parts);
  };
  const tutorBody = (el, m) => fill(el, h('p', { lang: conv.language }, m.text), words(m.vocabulary),
    m.debrief ? h('div', { class: 'debrief' }, h('h3', {}, t('chat.debrief')), h('p', {}, m.debrief)) : null);

  const put = (m, before) => {
    let el = bySeq.get(m.seq);
    if (!el) {
      el = h('li', { class: `msg ${m.role === 'learner' ? 'learner' : 'tutor'}`, 'data-seq': m.seq });
      bySeq.set(m.seq, el);
      const next = [...bySeq.entries()].filter(([s]) => s > m.seq).sort((a, b) => a[0] - b[0])[0];
      if (next && next[1].parentNode === log) log.insertBefore(el, next[1]);
      else if (before) log.prepend(el);
      else log.append(el);
    }
    el.dataset.status = m.status || '';
    if (m.role === 'learner') learnerBody(el, m); else tutorBody(el, m);
    // A pending message may still change: replay from before it after a reconnect.
    if (m.seq > lastSeq && m.status !== 'pending') lastSeq = m.seq;
    return el;
  };

  const page = await api('GET', `/v1/conversations/${id}/messages?limit=50`);
  page.items.forEach((m) => put(m));
  older = page.next_cursor || null;
  const earlier = h('button', { type: 'button', class: 'link', hidden: !older, onclick: async () => {
    const p2 = await api('GET', `/v1/conversations/${id}/messages?limit=50&before=${older}`);
    p2.items.reverse().forEach((m) => put(m, true));
    older = p2.next_cursor || null;
    earlier.hidden = !older;
  } }, t('chat.earlier'));

  // Connection state, shown and announced.
  const status = h('p', { class: 'conn', role: 'status' });
  const setStatus = (s) => {
    status.dataset.state = s;
    status.textContent = t(`conn.${s}`);
    sendBtn.disabled = s !== 'online';
  };

  const input = h('textarea', { rows: 3, maxlength: MAX_CHARS, placeholder: t('chat.placeholder', { lang: langName(conv.language) }), lang: conv.language });
  const sendBtn = h('button', { class: 'primary', type: 'submit' }, t('chat.send'));
  const [err, showErr] = errorBox();
  let ws = null;
  let closing = false;
  let backoff = 500;
  let pingTimer = null;
  let pongDue = null;
  let reconnectTimer = null;

  const send = (frame) => {
    if (!ws || ws.readyState !== WebSocket.OPEN) { showErr(t('conn.offline')); return false; }
    ws.send(JSON.stringify(frame));
    return true;
  };

  const tutorBubble = (turnId) => {
    let el = byTurn.get(turnId);
    if (!el) {
      el = h('li', { class: 'msg tutor streaming', 'aria-busy': 'true' }, h('p', { lang: conv.language }));
      byTurn.set(turnId, el);
      log.append(el);
    }
    return el;
  };

  const onEvent = (ev) => {
    switch (ev.type) {
      case 'hello':
        backoff = 500;
        setStatus('online');
        break;
      case 'message':
        put(ev.message);
        break;
      case 'message.accepted': {
        const pending = log.querySelector('li.msg.learner[data-pending]');
        if (pending && pending.dataset.text === ev.message.text) {
          pending.removeAttribute('data-pending');
          pending.dataset.seq = ev.message.seq;
          bySeq.set(ev.message.seq, pending);
        }
        put(ev.message);
        tutorBubble(ev.turn_id);
        break;
      }
      case 'turn.resume': {
        const el = tutorBubble(ev.turn_id);
        el.firstChild.textContent = ev.text;
        el.dataset.bytes = String(new TextEncoder().encode(ev.text).length);
        break;
      }
      case 'turn.delta': {
        const el = tutorBubble(ev.turn_id);
        // Offsets are in UTF-8 bytes; compare against what this bubble has received.
        const have = Number(el.dataset.bytes || 0);
        const bytes = new TextEncoder().encode(ev.text).length;
        if (ev.offset < have) break;
        el.firstChild.append(ev.text);
        el.dataset.bytes = String(ev.offset + bytes);
        el.scrollIntoView({ block: 'nearest' });
        break;
      }
      case 'turn.complete': {
        put(ev.learner);
        const el = byTurn.get(ev.turn_id);
        byTurn.delete(ev.turn_id);
        if (el) {
          el.classList.remove('streaming');
          el.removeAttribute('aria-busy');
          el.dataset.seq = ev.reply.seq;
          bySeq.set(ev.reply.seq, el);
        }
        put(ev.reply);
        const n = (ev.corrections || []).length;
        announce(`${ev.reply.text}${n ? ` ${t('chat.correctionsCount', { n })}` : ''}`);
        input.focus();
        break;
      }
      case 'turn.error': {
        const el = byTurn.get(ev.turn_id);
        byTurn.delete(ev.turn_id);
        if (el) el.remove();
        const mine = bySeq.get(ev.seq);
        if (mine) {
          const text = mine.dataset.text || mine.querySelector('p').textContent;
          learnerBody(mine, { seq: ev.seq, role: 'learner', text, status: 'failed' });
        }
        // A refusal is the tutor's own words; every other failure is told in the page's
        // language, with the id support can look up.
        let why = ev.code === 'tutor_refused' ? ev.message : t(`turn.${ev.code}`, {}, ev.message);
        if (ev.support_id) why += ` ${t('turn.support', { id: ev.support_id })}`;
        showErr(why);
        announce(why);
        break;
      }
      case 'error': {
        showErr(ev.message);
        // At the plan's limit: the way on is one click away.
        if (ev.code === 'plan_limit') err.append(' ', h('a', { href: '/pricing' }, t('billing.seePlans')));
        const pending = log.querySelector('li.msg.learner[data-pending]');
        if (pending && ev.client_id === pending.dataset.client) {
          input.value = pending.dataset.text;
          pending.remove();
        }
        break;
      }
      case 'conversation.closed':
        ws.close();
        break;
      default:
        break;
    }
  };

  const connect = async () => {
    if (closing) return;
    setStatus(lastSeq || log.children.length ? 'reconnecting' : 'connecting');
    try {
      const { ticket } = await api('POST', `/v1/conversations/${id}/live-ticket`);
      const proto = location.protocol === 'https:' ? 'wss' : 'ws';
      ws = new WebSocket(`${proto}://${location.host}/v1/conversations/${id}/live?ticket=${encodeURIComponent(ticket)}&after=${lastSeq}`);
    } catch (e) {
      if (e.status === 404) { navigate('/chat', true); return; }
      retry();
      return;
    }
    const sock = ws;
    sock.onmessage = (m) => {
      pongDue = null;
      try { onEvent(JSON.parse(m.data)); } catch { /* a frame we do not know */ }
    };
    sock.onclose = (ev) => {
      if (sock !== ws) return;
      clearInterval(pingTimer);
      if (ev.code === 4401) {
        // The session ended (signed out elsewhere, password changed): a refresh fails and
        // the app returns to sign-in instead of reconnecting.
        closing = true;
        refresh().catch(() => {});
        return;
      }
      // A reply cut short will come back whole after the reconnect's replay.
      for (const el of byTurn.values()) el.remove();
      byTurn.clear();
      if (!closing) retry();
    };
    sock.onopen = () => {
      clearInterval(pingTimer);
      // Application pings find a connection that died without closing.
      pingTimer = setInterval(() => {
        if (pongDue && Date.now() > pongDue) { sock.close(); return; }
        if (sock.readyState === WebSocket.OPEN) {
          sock.send('{"type":"ping"}');
          pongDue = pongDue || Date.now() + 10000;
        }
      }, 15000);
    };
  };
  const retry = () => {
    setStatus(navigator.onLine === false ? 'offline' : 'reconnecting');
    clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 10000);
  };
  const wake = () => {
    if (ws && ws.readyState === WebSocket.OPEN) {
      // The socket may have survived the outage; a ping proves it (or closes it).
      setStatus('online');
      ws.send('{"type":"ping"}');
      pongDue = Date.now() + 10000;
    } else if (!ws || ws.readyState > WebSocket.OPEN) { backoff = 500; clearTimeout(reconnectTimer); connect(); }
  };
  window.addEventListener('online', wake);
  const offline = () => setStatus('offline');
  window.addEventListener('offline', offline);
  onLeave(() => {
    closing = true;
    clearTimeout(reconnectTimer);
    clearInterval(pingTimer);
    window.removeEventListener('online', wake);
    window.removeEventListener('offline', offline);
    if (ws) ws.close(1000);
  });

  const form = h('form', {
    class: 'composer',
    onsubmit: (e) => {
      e.preventDefault();
      showErr('');
      const text = input.value.trim();
      if (!text) return;
      const clientId = Math.random().toString(36).slice(2);
      if (!send({ type: 'message', text, client_id: clientId })) return;
      const el = h('li', { class: 'msg learner', 'data-pending': '', 'data-client': clientId }, h('p', {}, text));
      el.dataset.text = text;
      log.append(el);
      el.scrollIntoView({ block: 'nearest' });
      input.value = '';
    },
  }, field(t('chat.message'), input, t('chat.keys')), err, h('div', { class: 'actions' }, status, sendBtn));
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
  });

  const rename = h('button', { type: 'button', class: 'link', onclick: async () => {
    const title = prompt(t('chat.renamePrompt'), conv.title);
    if (!title || !title.trim()) return;
    try { await api('PATCH', `/v1/conversations/${id}`, { title: title.trim() }); app.render(); } catch (e) { toast(explain(e), 'error'); }
  } }, t('chat.rename'));
  const remove = h('button', { type: 'button', class: 'link danger', onclick: async () => {
    if (!confirm(t('chat.deleteConfirm'))) return;
    try { await api('DELETE', `/v1/conversations/${id}`); navigate('/chat'); } catch (e) { toast(explain(e), 'error'); }
  } }, t('chat.delete'));

  setStatus('connecting');
  connect();
  return h('section', { class: 'chat-main' },
    h('div', { class: 'chat-head' },
      h('a', { href: '/chat', class: 'back' }, t('chat.back')),
      h('h1', {}, conv.title),
      h('p', { class: 'hint' }, [t(`mode.${conv.mode}`), tutor ? tutor.display_name : conv.personality, langName(conv.language)].join(' · ')),
      h('div', { class: 'actions' }, rename, remove)),
    earlier, log, form);
}

export async function chatPage({ params, onLeave }) {
  const id = params[0];
  const [side, main] = await Promise.all([conversationList(id), id ? thread(id, onLeave) : newConversation()]);
  if (!id) document.title = `${t('chat.newTitle')} · Penpal`;
  return h('div', { class: `chat ${id ? 'has-thread' : ''}` }, side, main);
}
