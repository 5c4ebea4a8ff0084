// The ECG reading view (decision 0038): the 12 leads of a stored waveform
// (GET /api/v1/ecg/{instance}) drawn on standard ECG paper with a canvas —
// 1 mm minor and 5 mm major grid, 25 mm/s and 10 mm/mV by default, a 1 mV
// calibration pulse at the start of every row, the 3x4 layout (I II III /
// aVR aVL aVF / V1-V3 / V4-V6, 2.5 s each) and a 10 s rhythm strip of II;
// gain (5/10/20 mm/mV) and speed (25/50 mm/s) controls; calipers (two
// clicks give the interval in ms, the rate in bpm and the amplitude in mV);
// the measurements and interpretation of the object beside it. Read-only:
// the report is written elsewhere (pages/reader.js).
import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { t, addMessages } from '../i18n.js';
import { get, seg } from '../api.js';

if (!document.getElementById('ecg-css')) {
  const link = document.createElement('link');
  link.id = 'ecg-css';
  link.rel = 'stylesheet';
  link.href = new URL('./ecg.css', import.meta.url).pathname;
  document.head.appendChild(link);
}

addMessages({
  'zh-CN': {
    'ecg.title': '心电图',
    'ecg.loading': '正在载入心电波形…',
    'ecg.none': '该检查没有心电波形对象',
    'ecg.gain': '增益',
    'ecg.speed': '走纸速度',
    'ecg.mmPerMv': '{v} mm/mV',
    'ecg.mmPerS': '{v} mm/s',
    'ecg.calipers': '测量尺',
    'ecg.caliperHint': '在波形上点击两点测量间期、心率与振幅',
    'ecg.caliperFirst': '已选第一点，请点击第二点',
    'ecg.caliper': '间期 {ms} ms · 心率 {bpm} 次/分 · 振幅 {mv} mV',
    'ecg.clear': '清除',
    'ecg.measurements': '测量值',
    'ecg.interpretation': '自动分析',
    'ecg.noMeasurements': '无测量值',
    'ecg.acquired': '采集时间',
    'ecg.group': '{label}：{fs} Hz，{n} 个采样，{c} 导联',
  },
  en: {
    'ecg.title': 'ECG',
    'ecg.loading': 'Loading the ECG waveform…',
    'ecg.none': 'This exam has no ECG waveform object',
    'ecg.gain': 'Gain',
    'ecg.speed': 'Speed',
    'ecg.mmPerMv': '{v} mm/mV',
    'ecg.mmPerS': '{v} mm/s',
    'ecg.calipers': 'Calipers',
    'ecg.caliperHint': 'Click two points on the tracing to measure interval, rate and amplitude',
    'ecg.caliperFirst': 'First point set; click the second',
    'ecg.caliper': 'Interval {ms} ms · rate {bpm} bpm · amplitude {mv} mV',
    'ecg.clear': 'Clear',
    'ecg.measurements': 'Measurements',
    'ecg.interpretation': 'Interpretation',
    'ecg.noMeasurements': 'No measurements',
    'ecg.acquired': 'Acquired',
    'ecg.group': '{label}: {fs} Hz, {n} samples, {c} leads',
  },
});

export const WAVEFORM_CLASS = '1.2.840.10008.5.1.4.1.1.9.';
export const LAYOUT = [
  ['I', 'aVR', 'V1', 'V4'],
  ['II', 'aVL', 'V2', 'V5'],
  ['III', 'aVF', 'V3', 'V6'],
];
export const RHYTHM_LEAD = 'II';
export const COLOURS = { paper: '#fff7f5', minor: '#f6c9c4', major: '#e38b82', trace: '#101010', caliper: '#1565c0' };

const PX_PER_MM = 4; // CSS pixels per millimetre of paper
const MARGIN_MM = 10; // left margin holding the calibration pulse
const CELL_S = 2.5; // seconds per cell of the 3x4 layout
const RHYTHM_S = 10;
const ROW_MV = 4; // a row spans 4 mV at any gain (rows grow with gain)

// Is this exam (GET /api/v1/exams/{study}, a worklist item or a recognition
// result) an ECG? Modality ECG (any of a multi-valued one) or a waveform
// SOP class when the object says so.
export function isEcgExam(ex) {
  if (!ex) return false;
  const mods = String(ex.modality || '').toUpperCase().split(/[\\,\s]+/);
  if (mods.includes('ECG')) return true;
  const cls = ex.sop_class || ex.sop_classes || '';
  return (Array.isArray(cls) ? cls : [cls]).some((c) => String(c).startsWith(WAVEFORM_CLASS));
}

// The first waveform instance of a study (QIDO-RS), or '' when none.
export async function findWaveformInstance(study) {
  const list = await get(`/dicomweb/studies/${seg(study)}/instances?includefield=00080016`, { accept: 'application/dicom+json' });
  for (const it of list || []) {
    const cls = it['00080016'] && it['00080016'].Value ? it['00080016'].Value[0] : '';
    const sop = it['00080018'] && it['00080018'].Value ? it['00080018'].Value[0] : '';
    if (sop && String(cls).startsWith(WAVEFORM_CLASS)) return sop;
  }
  return '';
}

// The group to draw: the longest one holding lead II (a rhythm group),
// else the longest.
function pickGroup(ecg) {
  let best = null;
  const dur = (g) => g.samples / g.sampling_frequency;
  for (const g of ecg.groups || []) {
    const hasII = g.channels.some((c) => c.lead === RHYTHM_LEAD);
    const score = (hasII ? 1e6 : 0) + dur(g);
    if (!best || score > best.score) best = { g, score };
  }
  return best ? best.g : null;
}

// Geometry of the paper in CSS pixels for gain (mm/mV) and speed (mm/s).
export function paperLayout(gain, speed) {
  const rowMm = ROW_MV * gain;
  const cellMm = CELL_S * speed;
  const width = Math.round((MARGIN_MM + 4 * cellMm + 2) * PX_PER_MM);
  const rowPx = rowMm * PX_PER_MM;
  const height = Math.round(4 * rowPx + 2 * PX_PER_MM);
  const cells = [];
  for (let r = 0; r < 3; r++)
    for (let c = 0; c < 4; c++)
      cells.push({
        lead: LAYOUT[r][c], row: r, col: c, t0: c * CELL_S, t1: (c + 1) * CELL_S,
        x: Math.round((MARGIN_MM + c * cellMm) * PX_PER_MM), y: Math.round(r * rowPx),
        w: Math.round(cellMm * PX_PER_MM), h: Math.round(rowPx),
      });
  cells.push({
    lead: RHYTHM_LEAD, row: 3, col: 0, t0: 0, t1: RHYTHM_S, rhythm: true,
    x: Math.round(MARGIN_MM * PX_PER_MM), y: Math.round(3 * rowPx),
    w: Math.round(4 * cellMm * PX_PER_MM), h: Math.round(rowPx),
  });
  return { width, height, rowPx, cells, pxPerMm: PX_PER_MM };
}

function drawGrid(ctx, w, h) {
  ctx.fillStyle = COLOURS.paper;
  ctx.fillRect(0, 0, w, h);
  for (const [step, colour, lw] of [[1, COLOURS.minor, 1], [5, COLOURS.major, 1]]) {
    ctx.strokeStyle = colour;
    ctx.lineWidth = lw;
    ctx.beginPath();
    for (let mm = 0; mm * PX_PER_MM <= w; mm += step) {
      const x = Math.round(mm * PX_PER_MM) + 0.5;
      ctx.moveTo(x, 0);
      ctx.lineTo(x, h);
    }
    for (let mm = 0; mm * PX_PER_MM <= h; mm += step) {
      const y = Math.round(mm * PX_PER_MM) + 0.5;
      ctx.moveTo(0, y);
      ctx.lineTo(w, y);
    }
    ctx.stroke();
  }
}

// Draws the tracing on ctx; returns the layout (cells with their baselines).
export function drawEcg(canvas, ecg, gain, speed) {
  const lay = paperLayout(gain, speed);
  canvas.width = lay.width;
  canvas.height = lay.height;
  canvas.style.width = lay.width + 'px';
  canvas.style.height = lay.height + 'px';
  const ctx = canvas.getContext('2d');
  drawGrid(ctx, lay.width, lay.height);
  const g = pickGroup(ecg);
  if (!g) return lay;
  const pxPerUv = (gain * PX_PER_MM) / 1000; // gain mm per mV
  const pxPerS = speed * PX_PER_MM;
  ctx.strokeStyle = COLOURS.trace;
  ctx.fillStyle = COLOURS.trace;
  ctx.lineWidth = 1.4;
  ctx.lineJoin = 'round';
  ctx.font = '12px sans-serif';
  for (let r = 0; r < 4; r++) {
    // the 1 mV calibration pulse at the start of the row: 0.2 s wide
    const base = Math.round(r * lay.rowPx + lay.rowPx / 2) + 0.5;
    const x0 = 2 * PX_PER_MM, up = 1000 * pxPerUv, wPulse = 0.2 * pxPerS;
    ctx.beginPath();
    ctx.moveTo(x0 - PX_PER_MM, base);
    ctx.lineTo(x0, base);
    ctx.lineTo(x0, base - up);
    ctx.lineTo(x0 + Math.min(wPulse, 6 * PX_PER_MM), base - up);
    ctx.lineTo(x0 + Math.min(wPulse, 6 * PX_PER_MM), base);
    ctx.lineTo(x0 + Math.min(wPulse, 6 * PX_PER_MM) + PX_PER_MM, base);
    ctx.stroke();
  }
  for (const cell of lay.cells) {
    const ch = g.channels.find((c) => c.lead === cell.lead);
    cell.base = Math.round(cell.y + cell.h / 2);
    ctx.fillText(cell.lead, cell.x + 4, cell.y + 14);
    if (!ch) continue;
    const fs = g.sampling_frequency;
    const s0 = Math.floor(cell.t0 * fs), s1 = Math.min(ch.data.length, Math.ceil(cell.t1 * fs));
    if (s1 <= s0) continue;
    ctx.beginPath();
    for (let s = s0; s < s1; s++) {
      const x = cell.x + ((s - s0) / fs) * pxPerS;
      const y = cell.base - ch.data[s] * pxPerUv;
      if (s === s0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    }
    ctx.stroke();
    // a short separator tick between cells, as printed ECGs have
    if (!cell.rhythm && cell.col > 0) {
      ctx.beginPath();
      ctx.moveTo(cell.x + 0.5, cell.base - 3 * PX_PER_MM);
      ctx.lineTo(cell.x + 0.5, cell.base + 3 * PX_PER_MM);
      ctx.stroke();
    }
  }
  return lay;
}

// Interval (ms), rate (bpm) and amplitude (mV) between two points in CSS px.
export function caliperValues(a, b, gain, speed) {
  const ms = (Math.abs(b.x - a.x) / (speed * PX_PER_MM)) * 1000;
  const mv = (a.y - b.y) / (gain * PX_PER_MM);
  return { ms: Math.round(ms), bpm: ms > 0 ? Math.round(60000 / ms) : 0, mv: Math.round(mv * 100) / 100 };
}

function Calipers({ points }) {
  if (!points.length) return html`<span class="hint" id="ecg-caliper-hint">${t('ecg.caliperHint')}</span>`;
  if (points.length === 1) return html`<span class="hint" id="ecg-caliper-hint">${t('ecg.caliperFirst')}</span>`;
  return null;
}

// The view: study (finds its first waveform instance) or instance.
export function EcgView({ study, instance }) {
  const [ecg, setEcg] = useState(null);
  const [error, setError] = useState('');
  const [none, setNone] = useState(false);
  const [gain, setGain] = useState(10);
  const [speed, setSpeed] = useState(25);
  const [points, setPoints] = useState([]);
  const canvas = useRef(null);
  const overlay = useRef(null);
  const layout = useRef(null);
  const [cells, setCells] = useState('');
  useEffect(() => {
    let live = true;
    setEcg(null);
    setError('');
    setNone(false);
    setPoints([]);
    (async () => {
      const sop = instance || (await findWaveformInstance(study));
      if (!sop) {
        if (live) setNone(true);
        return;
      }
      const d = await get(`/api/v1/ecg/${seg(sop)}`);
      if (live) setEcg(d);
    })().catch((e) => live && setError(e.message));
    return () => {
      live = false;
    };
  }, [study, instance]);
  useEffect(() => {
    if (!ecg || !canvas.current) return;
    layout.current = drawEcg(canvas.current, ecg, gain, speed);
    const ov = overlay.current;
    ov.width = layout.current.width;
    ov.height = layout.current.height;
    ov.style.width = layout.current.width + 'px';
    ov.style.height = layout.current.height + 'px';
    setCells(JSON.stringify(layout.current.cells));
    setPoints([]);
  }, [ecg, gain, speed]);
  useEffect(() => {
    const ov = overlay.current;
    if (!ov) return;
    const ctx = ov.getContext('2d');
    ctx.clearRect(0, 0, ov.width, ov.height);
    ctx.strokeStyle = COLOURS.caliper;
    ctx.fillStyle = COLOURS.caliper;
    ctx.lineWidth = 1;
    for (const p of points) {
      ctx.beginPath();
      ctx.moveTo(p.x + 0.5, 0);
      ctx.lineTo(p.x + 0.5, ov.height);
      ctx.stroke();
      ctx.beginPath();
      ctx.arc(p.x, p.y, 3, 0, 2 * Math.PI);
      ctx.fill();
    }
    if (points.length === 2) {
      const y = Math.min(points[0].y, points[1].y) - 8;
      ctx.beginPath();
      ctx.moveTo(points[0].x, y);
      ctx.lineTo(points[1].x, y);
      ctx.stroke();
    }
  }, [points]);
  const click = (e) => {
    const r = e.currentTarget.getBoundingClientRect();
    const p = { x: Math.round(e.clientX - r.left), y: Math.round(e.clientY - r.top) };
    setPoints((old) => (old.length >= 2 ? [p] : [...old, p]));
  };
  if (error) return html`<div class="ecg-view" id="ecg-view"><p class="error" id="ecg-error">${error}</p></div>`;
  if (none) return html`<div class="ecg-view" id="ecg-view"><p class="hint" id="ecg-none">${t('ecg.none')}</p></div>`;
  if (!ecg) return html`<div class="ecg-view" id="ecg-view"><p class="hint">${t('ecg.loading')}</p></div>`;
  const cv = points.length === 2 ? caliperValues(points[0], points[1], gain, speed) : null;
  const g = pickGroup(ecg);
  return html`<div class="ecg-view" id="ecg-view" data-instance=${ecg.instance}>
    <div class="toolbar ecg-tools">
      <label>${t('ecg.gain')}<select id="ecg-gain" value=${gain} onChange=${(e) => setGain(Number(e.target.value))}>
        ${[5, 10, 20].map((v) => html`<option value=${v}>${t('ecg.mmPerMv', { v })}</option>`)}</select></label>
      <label>${t('ecg.speed')}<select id="ecg-speed" value=${speed} onChange=${(e) => setSpeed(Number(e.target.value))}>
        ${[25, 50].map((v) => html`<option value=${v}>${t('ecg.mmPerS', { v })}</option>`)}</select></label>
      <span class="ecg-caliper-box"><strong>${t('ecg.calipers')}</strong>
        ${cv ? html`<span id="ecg-caliper" data-ms=${cv.ms} data-bpm=${cv.bpm} data-mv=${cv.mv}>${t('ecg.caliper', cv)}</span>` : html`<${Calipers} points=${points} />`}
        ${points.length ? html`<button type="button" class="link" id="ecg-caliper-clear" onClick=${() => setPoints([])}>${t('ecg.clear')}</button>` : null}</span>
    </div>
    <div class="ecg-body">
      <div class="ecg-paper">
        <canvas id="ecg-canvas" ref=${canvas} data-gain=${gain} data-speed=${speed}
          data-cells=${cells} data-px-per-mm=${PX_PER_MM}></canvas>
        <canvas id="ecg-overlay" ref=${overlay} onClick=${click}></canvas>
      </div>
      <aside class="ecg-side" id="ecg-side">
        <p class="hint">${ecg.patient && ecg.patient.name ? ecg.patient.name + ' · ' : ''}${t('ecg.acquired')} ${ecg.acquired || '-'}</p>
        ${g ? html`<p class="hint" id="ecg-group">${t('ecg.group', { label: g.label || '-', fs: g.sampling_frequency, n: g.samples, c: g.channels.length })}</p>` : null}
        <h4>${t('ecg.measurements')}</h4>
        ${ecg.measurements && ecg.measurements.length
          ? html`<table class="grid" id="ecg-measurements"><tbody>
              ${ecg.measurements.map((m) => html`<tr data-name=${m.name}><td>${m.name}</td><td>${m.value} ${m.unit}</td></tr>`)}</tbody></table>`
          : html`<p class="hint">${t('ecg.noMeasurements')}</p>`}
        <h4>${t('ecg.interpretation')}</h4>
        <ul id="ecg-interpretation">${(ecg.interpretation || []).map((s) => html`<li>${s}</li>`)}</ul>
      </aside>
    </div>
  </div>`;
}
