// The throughput chart: attempts per minute over time, drawn as SVG (no library).

import {svg, fmtInt} from "./dom.js";

const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400];

/**
 * Weighted events ([epochMs, count]) into at most `maxBuckets` equal time buckets ending at `end`.
 * Returns {seconds, buckets: [{start, count}]}, or null when there is nothing to draw.
 */
export function bucketize(events, end, maxBuckets = 60) {
  if (!events.length) return null;
  const first = Math.min(...events.map(([t]) => t));
  const last = Math.max(end, ...events.map(([t]) => t));
  const span = Math.max(1, (last - first) / 1000);
  const seconds = STEPS.find((s) => span / s <= maxBuckets) ?? STEPS[STEPS.length - 1];
  const width = seconds * 1000;
  const start = Math.floor(first / width) * width;
  const n = Math.max(1, Math.floor((last - start) / width) + 1);
  const buckets = Array.from({length: n}, (_, i) => ({start: start + i * width, count: 0}));
  for (const [t, count] of events) {
    const i = Math.min(n - 1, Math.max(0, Math.floor((t - start) / width)));
    buckets[i].count += count;
  }
  return {seconds, buckets};
}

/** Cumulative samples ([epochMs, total]) as events: each increase counted when it was seen. */
export function samplesToEvents(samples) {
  const events = [];
  for (let i = 1; i < samples.length; i++) {
    const delta = samples[i][1] - samples[i - 1][1];
    if (delta > 0) events.push([samples[i][0], delta]);
  }
  return events;
}

function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * power >= value) return m * power;
  return 10 * power;
}

function clock(ms, seconds) {
  const d = new Date(ms);
  return seconds < 60
    ? d.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: "2-digit"})
    : d.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
}

/** An <svg> of `series` (from bucketize) in attempts per minute; `caption` names the source. */
export function throughputChart(series, caption) {
  const W = 640, H = 200, left = 48, right = 12, top = 24, bottom = 28;
  const plotW = W - left - right, plotH = H - top - bottom;
  const perMinute = series.buckets.map((b) => (b.count * 60) / series.seconds);
  const peak = Math.max(...perMinute);
  const yMax = niceMax(peak);
  const x = (i) => left + (series.buckets.length === 1 ? plotW : (i / (series.buckets.length - 1)) * plotW);
  const y = (v) => top + plotH - (v / yMax) * plotH;
  const now = perMinute[perMinute.length - 1];
  const summary = `Throughput, ${caption}: peak ${fmtInt(peak)} per minute, latest ${fmtInt(now)} per minute,`
    + ` ${fmtInt(series.buckets.reduce((a, b) => a + b.count, 0))} attempts in ${series.buckets.length}`
    + ` buckets of ${series.seconds} s.`;
  const chart = svg("svg", {viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": summary,
    preserveAspectRatio: "none"});
  chart.append(svg("title", {}, summary));
  for (const fraction of [0, 0.5, 1]) {
    const v = yMax * fraction;
    chart.append(svg("line", {x1: left, x2: W - right, y1: y(v), y2: y(v), class: "grid"}));
    chart.append(svg("text", {x: left - 6, y: y(v) + 4, class: "axis", "text-anchor": "end"}, fmtInt(v)));
  }
  const points = perMinute.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
  if (perMinute.length === 1) points.unshift(`${left},${y(perMinute[0]).toFixed(1)}`);
  const baseline = y(0).toFixed(1);
  chart.append(svg("polygon", {points: `${left},${baseline} ${points.join(" ")} ${W - right},${baseline}`,
    class: "area"}));
  chart.append(svg("polyline", {points: points.join(" "), class: "line"}));
  const ticks = Math.min(5, series.buckets.length);
  for (let k = 0; k < ticks; k++) {
    const i = ticks === 1 ? 0 : Math.round((k / (ticks - 1)) * (series.buckets.length - 1));
    const anchor = k === 0 ? "start" : k === ticks - 1 ? "end" : "middle";
    chart.append(svg("text", {x: ticks === 1 ? left : x(i), y: H - 8, class: "axis", "text-anchor": anchor},
      clock(series.buckets[i].start, series.seconds)));
  }
  chart.append(svg("text", {x: left, y: 12, class: "axis unit"}, "attempts / min"));
  return chart;
}
