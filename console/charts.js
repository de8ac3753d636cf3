// Small SVG charts (no library): stacked bars per day, lines per day, horizontal bars. Each has
// a title, a legend and a text table for screen readers (the SVG itself is aria-hidden).

import { h } from "./ui.js";

const NS = "http://www.w3.org/2000/svg";
export const PALETTE = ["#3b5bdb", "#2f9e44", "#e8590c", "#ae3ec9", "#1098ad", "#f08c00", "#c2255c"];

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((m) => m >= v);
}

function frame(labels, max, height, unit) {
  const W = 720;
  const H = height;
  const pad = { l: 44, r: 10, t: 10, b: 28 };
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", "aria-hidden": "true" });
  const iw = W - pad.l - pad.r;
  const ih = H - pad.t - pad.b;
  for (let i = 0; i <= 4; i++) {
    const y = pad.t + ih - (ih * i) / 4;
    svg.append(s("line", { x1: pad.l, x2: W - pad.r, y1: y, y2: y, class: "grid" }));
    const v = (max * i) / 4;
    svg.append(s("text", { x: pad.l - 6, y: y + 4, "text-anchor": "end", class: "axis" }, `${Number.isInteger(v) ? v : v.toFixed(1)}${unit}`));
  }
  const step = Math.max(1, Math.ceil(labels.length / 10));
  labels.forEach((l, i) => {
    if (i % step) return;
    const x = pad.l + (iw * (i + 0.5)) / labels.length;
    svg.append(s("text", { x, y: H - 8, "text-anchor": "middle", class: "axis" }, l.slice(5)));
  });
  return { svg, x: (i) => pad.l + (iw * i) / labels.length, w: iw / labels.length, y: (v) => pad.t + ih - (ih * v) / max, ih, pad };
}

function legend(series) {
  return h("ul", { class: "legend" }, series.map((se, i) => h("li", {}, h("span", { class: "swatch", style: `background:${PALETTE[i % PALETTE.length]}` }), se.name)));
}

function table(title, labels, series) {
  return h(
    "table",
    { class: "visually-hidden" },
    h("caption", {}, title),
    h("thead", {}, h("tr", {}, h("th", {}, ""), series.map((se) => h("th", { scope: "col" }, se.name)))),
    h("tbody", {}, labels.map((l, i) => h("tr", {}, h("th", { scope: "row" }, l), series.map((se) => h("td", {}, String(se.values[i] ?? 0)))))),
  );
}

/** Stacked bars: `series` = [{name, values: [per label]}]. */
export function stackedBars(title, labels, series) {
  const totals = labels.map((_, i) => series.reduce((sum, se) => sum + (se.values[i] || 0), 0));
  const f = frame(labels, niceMax(Math.max(0, ...totals)), 220, "");
  labels.forEach((_, i) => {
    let base = 0;
    series.forEach((se, k) => {
      const v = se.values[i] || 0;
      if (!v) return;
      const y0 = f.y(base);
      const y1 = f.y(base + v);
      f.svg.append(s("rect", { x: f.x(i) + f.w * 0.15, y: y1, width: f.w * 0.7, height: y0 - y1, fill: PALETTE[k % PALETTE.length] }, s("title", {}, `${labels[i]} ${se.name}: ${v}`)));
      base += v;
    });
  });
  return h("figure", { class: "figure" }, h("figcaption", {}, title), f.svg, legend(series), table(title, labels, series));
}

/** Lines: `series` = [{name, values}] (null: no point). */
export function lines(title, labels, series, unit = "") {
  const all = series.flatMap((se) => se.values).filter((v) => v !== null && v !== undefined);
  const f = frame(labels, niceMax(Math.max(0, ...all)), 200, unit);
  series.forEach((se, k) => {
    const color = PALETTE[k % PALETTE.length];
    let d = "";
    se.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      const x = f.x(i) + f.w / 2;
      d += `${d ? "L" : "M"}${x.toFixed(1)},${f.y(v).toFixed(1)}`;
      f.svg.append(s("circle", { cx: x, cy: f.y(v), r: 3, fill: color }, s("title", {}, `${labels[i]} ${se.name}: ${v}${unit}`)));
    });
    if (d) f.svg.append(s("path", { d, fill: "none", stroke: color, "stroke-width": 2 }));
  });
  return h("figure", { class: "figure" }, h("figcaption", {}, title), f.svg, legend(series), table(title, labels, series));
}

/** Horizontal bars (a funnel): `rows` = [{label, value}], widths relative to the first. */
export function funnel(title, rows) {
  const max = Math.max(1, ...rows.map((r) => r.value));
  return h(
    "figure",
    { class: "figure funnel" },
    h("figcaption", {}, title),
    h(
      "ol",
      {},
      rows.map((r, i) =>
        h(
          "li",
          {},
          h("span", { class: "f-label" }, r.label),
          h("span", { class: "f-bar", style: `width:${Math.max(2, (100 * r.value) / max)}%;background:${PALETTE[i % PALETTE.length]}` }),
          h("span", { class: "f-value" }, String(r.value)),
        ),
      ),
    ),
  );
}
