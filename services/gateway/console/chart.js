// Small inline SVG charts: built as DOM nodes (no innerHTML), each with a
// role="img" and a text alternative that says what the chart shows.
const NS = "http://www.w3.org/2000/svg";

function el(name, attrs = {}, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function frame(width, height, label) {
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": label });
  svg.append(el("title", {}, label));
  return svg;
}

// Horizontal bars: [{label, value, note}] scaled to the largest value.
export function barChart(rows, label, { format = (v) => v.toLocaleString() } = {}) {
  const barH = 20, gap = 8, left = 110, width = 380;
  const height = rows.length * (barH + gap) + gap;
  const svg = frame(width, height, label);
  const max = Math.max(1, ...rows.map((r) => r.value));
  rows.forEach((r, i) => {
    const y = gap + i * (barH + gap);
    const w = Math.max(2, ((width - left - 100) * r.value) / max);
    svg.append(el("text", { x: 0, y: y + 14 }, r.label.length > 15 ? `${r.label.slice(0, 14)}…` : r.label));
    svg.append(el("rect", { x: left, y, width: w, height: barH, rx: 3, fill: "#1d4ed8" }));
    svg.append(el("text", { x: left + w + 6, y: y + 14 }, r.note ?? format(r.value)));
  });
  return svg;
}

// A line over points [{label, value}] (oldest first).
export function lineChart(points, label, { min, max } = {}) {
  const width = 380, height = 160, pad = 30;
  const svg = frame(width, height, label);
  if (points.length === 0) return svg;
  const lo = min ?? Math.min(...points.map((p) => p.value));
  const hi = max ?? Math.max(...points.map((p) => p.value));
  const span = hi - lo || 1;
  const x = (i) => pad + (points.length === 1 ? 0 : (i * (width - 2 * pad)) / (points.length - 1));
  const y = (v) => height - pad - ((v - lo) * (height - 2 * pad)) / span;
  svg.append(el("line", { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, stroke: "#8a94a3" }));
  svg.append(el("text", { x: 0, y: y(hi) + 4 }, Math.round(hi)));
  svg.append(el("text", { x: 0, y: y(lo) + 4 }, Math.round(lo)));
  const d = points.map((p, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(p.value).toFixed(1)}`).join(" ");
  svg.append(el("path", { d, fill: "none", stroke: "#1d4ed8", "stroke-width": 2 }));
  points.forEach((p, i) => {
    const dot = el("circle", { cx: x(i), cy: y(p.value), r: 3, fill: "#1d4ed8" });
    dot.append(el("title", {}, `${p.label}: ${p.value}`));
    svg.append(dot);
  });
  svg.append(el("text", { x: pad, y: height - 8 }, points[0].label));
  svg.append(el("text", { x: width - pad - 64, y: height - 8 }, points[points.length - 1].label));
  return svg;
}

// A small Sankey: one column per step, a node per event (height by count),
// links as bands whose width is their count. Links: [{step, source, target, value}]
// from the event at `step` to the next one (analytics' Paths answer).
export function flowChart(links, label) {
  const steps = Math.max(...links.map((l) => l.step)) + 2;
  const colW = 150, width = Math.max(380, steps * colW), height = 240, pad = 16, nodeW = 8;
  const svg = frame(width, height, label);
  // A node is as tall as the larger of what flows in and what flows out.
  const ins = Array.from({ length: steps }, () => new Map());
  const outs = Array.from({ length: steps }, () => new Map());
  for (const l of links) {
    outs[l.step].set(l.source, (outs[l.step].get(l.source) || 0) + l.value);
    ins[l.step + 1].set(l.target, (ins[l.step + 1].get(l.target) || 0) + l.value);
  }
  const columns = ins.map((inCol, i) => {
    const col = new Map();
    for (const name of new Set([...inCol.keys(), ...outs[i].keys()])) col.set(name, Math.max(inCol.get(name) || 0, outs[i].get(name) || 0));
    return col;
  });
  const total = Math.max(1, ...columns.map((c) => [...c.values()].reduce((x, y) => x + y, 0)));
  const scale = (height - 2 * pad - 40) / total;
  const pos = columns.map((col, i) => {
    const out = new Map();
    let y = pad;
    for (const [name, v] of [...col.entries()].sort((p, q) => q[1] - p[1])) {
      const hgt = Math.max(2, v * scale);
      out.set(name, { x: pad + i * ((width - 2 * pad - nodeW - 90) / Math.max(1, steps - 1)), y, h: hgt, used: 0, usedIn: 0 });
      y += hgt + 8;
    }
    return out;
  });
  for (const l of [...links].sort((p, q) => q.value - p.value)) {
    const a = pos[l.step].get(l.source), b = pos[l.step + 1].get(l.target);
    if (!a || !b) continue;
    const w = Math.max(1, l.value * scale);
    const y1 = a.y + a.used + w / 2, y2 = b.y + b.usedIn + w / 2;
    a.used += w; b.usedIn += w;
    const x1 = a.x + nodeW, x2 = b.x, mid = (x1 + x2) / 2;
    const band = el("path", { d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`, fill: "none", stroke: "#93c5fd", "stroke-opacity": 0.7, "stroke-width": w });
    band.append(el("title", {}, `${l.source} → ${l.target}: ${l.value}`));
    svg.append(band);
  }
  pos.forEach((col) => col.forEach((n, name) => {
    svg.append(el("rect", { x: n.x, y: n.y, width: nodeW, height: n.h, fill: "#1d4ed8" }));
    svg.append(el("text", { x: n.x + nodeW + 3, y: n.y + Math.min(n.h, 14) - 2 }, name.length > 18 ? `${name.slice(0, 17)}…` : name));
  }));
  return svg;
}
