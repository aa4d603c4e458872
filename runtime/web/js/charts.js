// Small SVG charts. Each has a text alternative (a title and a table for screen readers),
// and colours come from the stylesheet so both themes keep their contrast.

import { h } from './ui.js';

const W = 320;
const H = 140;
const PAD = 36;

function table(points, caption) {
  return h('table', { class: 'sr-only' }, h('caption', {}, caption),
    h('tbody', {}, points.map((p) => h('tr', {}, h('th', { scope: 'row' }, p.label), h('td', {}, p.value == null ? '—' : String(p.value))))));
}

function frame(caption, ...children) {
  return h('svg:svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': caption },
    h('svg:title', {}, caption), children);
}

/** Vertical bars, one per point: activity per day. */
export function barChart(points, caption) {
  const max = Math.max(1, ...points.map((p) => p.value || 0));
  const step = (W - PAD) / Math.max(1, points.length);
  const bars = points.map((p, i) => {
    const v = p.value || 0;
    const bh = ((H - PAD) * v) / max;
    return h('svg:rect', { class: 'bar', x: PAD + i * step + 1, y: H - PAD - bh, width: Math.max(1, step - 2), height: bh },
      h('svg:title', {}, `${p.label}: ${v}`));
  });
  const axis = [
    h('svg:line', { class: 'axis', x1: PAD, y1: H - PAD, x2: W, y2: H - PAD }),
    h('svg:text', { class: 'tick', x: PAD - 4, y: 12, 'text-anchor': 'end' }, String(max)),
    h('svg:text', { class: 'tick', x: PAD - 4, y: H - PAD, 'text-anchor': 'end' }, '0'),
    points.length ? h('svg:text', { class: 'tick', x: PAD, y: H - 6 }, points[0].label) : null,
    points.length ? h('svg:text', { class: 'tick', x: W, y: H - 6, 'text-anchor': 'end' }, points[points.length - 1].label) : null,
  ];
  return h('figure', {}, frame(caption, axis, bars), table(points, caption));
}

/** A line through the days that have a value (0 to 1): accuracy. */
export function lineChart(points, caption) {
  const step = (W - PAD) / Math.max(1, points.length - 1);
  const xy = points.map((p, i) => (p.value == null ? null : [PAD + i * step, (H - PAD) - (H - PAD - 8) * p.value]));
  const d = xy.filter(Boolean).map(([x, y], i) => `${i ? 'L' : 'M'}${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
  const pct = points.map((p) => ({ label: p.label, value: p.value == null ? null : `${Math.round(p.value * 100)} %` }));
  return h('figure', {}, frame(caption,
    h('svg:line', { class: 'axis', x1: PAD, y1: H - PAD, x2: W, y2: H - PAD }),
    h('svg:text', { class: 'tick', x: PAD - 4, y: 12, 'text-anchor': 'end' }, '100%'),
    h('svg:text', { class: 'tick', x: PAD - 4, y: H - PAD, 'text-anchor': 'end' }, '0'),
    d ? h('svg:path', { class: 'line', d }) : null,
    xy.filter(Boolean).map(([x, y]) => h('svg:circle', { class: 'dot', cx: x, cy: y, r: 3 }))), table(pct, caption));
}

/** Horizontal bars with labels: errors by category, vocabulary. */
export function hbarChart(items, caption) {
  const max = Math.max(1, ...items.map((i) => i.value));
  return h('figure', {}, h('ul', { class: 'hbars', 'aria-label': caption }, items.map((i) => {
    const bar = h('span', { class: 'hbar' });
    bar.style.width = `${(100 * i.value) / max}%`;
    return h('li', {}, h('span', { class: 'hlabel' }, i.label), h('span', { class: 'htrack' }, bar), h('span', { class: 'hvalue' }, String(i.value)));
  })));
}
