// Shared by the office and admin pages (statistics, audit, users,
// configuration): an ECharts chart component, date helpers, CSV download.
import { useEffect, useRef } from 'preact/hooks';
import { html } from 'htm/preact';
import * as echarts from 'echarts';
import { download } from '../api.js';

// A chart: option is an ECharts option object; redrawn when it changes,
// disposed on unmount, resized with the window.
export function Chart({ option, id, height = 300 }) {
  const el = useRef(null);
  const chart = useRef(null);
  useEffect(() => {
    chart.current = echarts.init(el.current, null, { renderer: 'canvas' });
    const onResize = () => chart.current && chart.current.resize();
    window.addEventListener('resize', onResize);
    return () => {
      window.removeEventListener('resize', onResize);
      chart.current.dispose();
      chart.current = null;
    };
  }, []);
  useEffect(() => {
    if (chart.current && option) chart.current.setOption(option, true);
  }, [option]);
  return html`<div class="chart" id=${id} ref=${el} style=${`height:${height}px`}></div>`;
}

// "YYYY-MM-DD" of a Date in local time.
export function isoDay(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

// {from, to} of the last n days (today included).
export function lastDays(n) {
  const to = new Date();
  const from = new Date(to.getTime() - (n - 1) * 86400000);
  return { from: isoDay(from), to: isoDay(to) };
}

// Downloads path (an API URL) as CSV with format=csv added.
export function downloadCsv(path, filename) {
  const sep = path.includes('?') ? '&' : '?';
  return download(`${path}${sep}format=csv`, filename);
}

// Milliseconds as minutes with one decimal ("" for null).
export function minutes(ms) {
  return ms === null || ms === undefined ? '' : (ms / 60000).toFixed(1);
}
