// The patient's share page (云胶片, decision 0032): served at /s/<token>; the
// token is the last path segment. Reads GET /api/v1/share/<token> (no login)
// and shows the report, the key images (thumbnails, full size on a tap) and
// the PDF link. Text is put with textContent only.

const SEX = { M: '男', F: '女', O: '其他' };
const FUNCTION = { author: '报告医师', authenticator: '审核医师' };

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

// "2026-12-03T07:00:00.123Z" -> "2026-12-03 15:00" (Beijing time)
function beijing(iso) {
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) return '';
  const f = new Intl.DateTimeFormat('zh-CN', {
    timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', hour12: false,
  }).formatToParts(d);
  const p = Object.fromEntries(f.map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
}

function studyDate(s) {
  return /^\d{8}$/.test(s || '') ? `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6)}` : s || '';
}

function personName(s) {
  return (s || '').split('=')[0].replace(/\^+/g, ' ').trim().replace(/(\p{Script=Han}) (?=\p{Script=Han})/gu, '$1');
}

function token() {
  const parts = location.pathname.split('/').filter(Boolean);
  return parts.length === 2 && parts[0] === 's' ? parts[1] : '';
}

function showState(text, error) {
  const main = document.getElementById('main');
  main.replaceChildren(el('p', { class: error ? 'state error' : 'state', id: 'state', text }));
}

function facts(rows) {
  const dl = el('dl', { class: 'facts' });
  for (const [k, v] of rows) if (v) dl.append(el('dt', { text: k }), el('dd', { text: v }));
  return dl;
}

function openViewer(img, n, total) {
  const v = document.getElementById('viewer');
  const im = document.getElementById('viewer-img');
  im.src = img.url;
  im.alt = `影像 ${n + 1}`;
  document.getElementById('viewer-caption').textContent = `影像 ${n + 1} / ${total}`;
  v.hidden = false;
}

function render(d) {
  const r = d.report;
  const main = document.getElementById('main');
  const head = el('section', { class: 'card', id: 'patient' },
    el('div', { class: 'patient' },
      el('span', { class: 'name', text: personName(d.patient.name) || '患者' }),
      SEX[d.patient.sex] ? el('span', { text: SEX[d.patient.sex] }) : null,
      el('span', { class: 'badge', id: 'status', text: r.status_label || r.status }),
      r.critical ? el('span', { class: 'badge crit', text: '危急值' }) : null),
    facts([
      ['检查医院', d.exam.hospital],
      ['诊断中心', d.exam.center],
      ['检查类型', d.exam.modality],
      ['检查项目', d.exam.procedure],
      ['检查日期', studyDate(d.exam.study_date)],
      ['检查号', d.exam.accession],
    ]));
  const signers = el('ul', { class: 'signers' });
  for (const s of r.signers || [])
    signers.append(el('li', { text: `${FUNCTION[s.function] || '医师'}：${s.name}　${beijing(s.signed_at)}` }));
  const report = el('section', { class: 'card', id: 'report' },
    el('h2', { text: '检查所见' }), el('p', { class: 'text', id: 'findings', text: r.findings || '无' }),
    el('h2', { text: '诊断意见' }), el('p', { class: 'text', id: 'impression', text: r.impression || '无' }),
    signers,
    el('p', { class: 'note', text: `报告时间：${beijing(r.signed_at)}（第${r.version}版）` }));
  const grid = el('div', { class: 'images', id: 'images' });
  (d.images || []).forEach((img, n) => {
    grid.append(el('button', { type: 'button', 'aria-label': `影像 ${n + 1}`, onclick: () => openViewer(img, n, d.images.length) },
      el('img', { src: img.thumb, alt: `影像 ${n + 1}`, loading: 'lazy' })));
  });
  const images = el('section', { class: 'card' },
    el('h2', { text: `关键影像（${(d.images || []).length}）` }),
    (d.images || []).length ? grid : el('p', { class: 'note', text: '本次检查无可显示的影像。' }),
    el('p', { class: 'note', text: '点击影像可放大查看。影像仅供参考，诊断以报告为准。' }));
  const actions = el('section', { class: 'card' },
    el('div', { class: 'actions' }, el('a', { href: d.pdf, id: 'pdf', target: '_blank', rel: 'noopener noreferrer', text: '查看PDF报告' })),
    el('p', { class: 'note', text: `链接有效期至 ${beijing(d.share.expires_at)}` }));
  main.replaceChildren(head, report, images, actions);
  document.title = `检查报告 · ${personName(d.patient.name)}`;
}

async function load() {
  const t = token();
  if (!t) {
    showState('链接无效：请使用医院提供的完整链接或二维码。', true);
    return;
  }
  let res;
  try {
    res = await fetch(`/api/v1/share/${encodeURIComponent(t)}`, { credentials: 'omit', cache: 'no-store' });
  } catch (e) {
    showState('网络连接失败，请稍后重试。', true);
    return;
  }
  if (res.status === 404) showState('链接无效、已过期或已被撤销。请联系检查医院获取新的链接。', true);
  else if (res.status === 429) showState('访问过于频繁，请稍后再试。', true);
  else if (!res.ok) showState('服务暂时不可用，请稍后重试。', true);
  else render(await res.json());
}

document.getElementById('viewer-close').addEventListener('click', () => {
  document.getElementById('viewer').hidden = true;
});
document.getElementById('viewer').addEventListener('click', (e) => {
  if (e.target.id === 'viewer') e.currentTarget.hidden = true;
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape') document.getElementById('viewer').hidden = true;
});
load();
