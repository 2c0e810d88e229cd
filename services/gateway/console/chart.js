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
