// 本院检查: the township technician's exams (GET /api/v1/exams), their state
// and turnaround, the report when it comes back (text, PDF, JWS, signature
// check), thumbnails, and upload of DICOM files or a folder (STOW-RS, one
// request per file, progress and errors per file).
import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { t, addMessages, fmtTime, fmtDuration } from '../i18n.js';
import { get, download, seg } from '../api.js';
import { EcgView, isEcgExam } from '../ecg/ecg.js';
import { LabView, isLabExam, obsFlags, flagClass, fmtFhirTime } from '../lab/lab.js';
import { registerPage, navigate, href } from '../router.js';

addMessages({
  'zh-CN': {
    'township.title': '本院检查',
    'township.upload': '上传 DICOM 文件',
    'township.uploadFolder': '上传文件夹',
    'township.uploadHint': '选择 DICOM 文件或整个文件夹，逐个上传到区域中心。',
    'township.uploads': '上传记录',
    'township.clearUploads': '清除记录',
    'township.file': '文件',
    'township.size': '大小',
    'township.progress': '进度',
    'township.result': '结果',
    'township.up.queued': '等待上传',
    'township.up.sending': '上传中',
    'township.up.stored': '已接收',
    'township.up.warning': '已接收（有警告）',
    'township.up.failed': '失败',
    'township.up.summary': '共 {n} 个文件：{ok} 个已接收，{failed} 个失败',
    'township.reason.0110': '处理失败',
    'township.reason.A700': '服务器空间或资源不足',
    'township.reason.A900': '数据与 SOP 类不符',
    'township.reason.C000': '无法解析（不是有效的 DICOM 文件）',
    'township.reason.0122': '不支持的 SOP 类',
    'township.reason.0124': '拒收：该检查属于其他医院',
    'township.reason.B000': '患者信息与该检查已有信息不一致（已保存并标记）',
    'township.reason.http': '上传失败（{status}）：{detail}',
    'township.reason.network': '网络中断',
    'township.filter': '状态',
    'township.all': '全部',
    'township.empty': '暂无检查',
    'township.patient': '患者',
    'township.accession': '检查号',
    'township.modality': '类型',
    'township.studyDate': '检查日期',
    'township.instances': '图像数',
    'township.state': '状态',
    'township.turnaround': '周转时间',
    'township.arrived': '接收时间',
    'township.due': '应完成',
    'township.overdue': '已超时',
    'township.conflict': '患者信息冲突',
    'township.changed': '报告后有新图像',
    'township.refused': '有被拒收的图像',
    'township.status.received': '已接收',
    'township.status.waiting': '等待阅片',
    'township.status.being_read': '阅片中',
    'township.status.reported': '已出报告',
    'township.status.amended': '报告已修订',
    'township.status.retracted': '报告已撤回',
    'township.detail': '检查详情',
    'township.tabExams': '检查',
    'township.tabLab': '检验结果',
    'township.labTitle': '本院检验结果',
    'township.labEmpty': '暂无检验结果',
    'township.labOrder': '检验项目',
    'township.labObserved': '采样时间',
    'township.labStatus': '报告状态',
    'township.labAbnormal': '异常提示',
    'township.labAbnormalN': '{n} 项异常',
    'township.labCritical': '危急值（{n} 项异常）',
    'township.more': '加载更多',
    'township.report': '诊断报告',
    'township.noReport': '报告尚未返回',
    'township.findings': '检查所见',
    'township.impression': '诊断意见',
    'township.critical': '危急值',
    'township.signedBy': '签名：{who}，{when}',
    'township.version': '第 {n} 版（{status}）',
    'township.pdf': '下载 PDF',
    'township.jws': '下载签名文件 (JWS)',
    'township.share': '分享给患者（云胶片）',
    'township.verify.ok': '签名有效',
    'township.verify.bad': '签名无效',
    'township.verify.checking': '正在验证签名…',
    'township.verify.unknown': '无法验证签名',
    'township.center': '诊断中心',
    'township.priority': '优先级',
    'township.close': '关闭',
    'township.reportStatus.draft': '草稿',
    'township.reportStatus.preliminary': '初步报告（待审核）',
    'township.reportStatus.final': '正式报告',
    'township.reportStatus.amended': '修订报告',
    'township.reportStatus.corrected': '更正报告',
    'township.reportStatus.entered_in_error': '已撤回',
    'nav.township': '本院检查',
  },
  en: {
    'township.title': 'Our exams',
    'township.upload': 'Upload DICOM files',
    'township.uploadFolder': 'Upload a folder',
    'township.uploadHint': 'Choose DICOM files or a whole folder; each file is sent to the regional center.',
    'township.uploads': 'Uploads',
    'township.clearUploads': 'Clear',
    'township.file': 'File',
    'township.size': 'Size',
    'township.progress': 'Progress',
    'township.result': 'Result',
    'township.up.queued': 'Queued',
    'township.up.sending': 'Sending',
    'township.up.stored': 'Stored',
    'township.up.warning': 'Stored with a warning',
    'township.up.failed': 'Failed',
    'township.up.summary': '{n} files: {ok} stored, {failed} failed',
    'township.reason.0110': 'Processing failure',
    'township.reason.A700': 'The server is out of space or resources',
    'township.reason.A900': 'The data set does not match its SOP class',
    'township.reason.C000': 'Cannot be understood (not a valid DICOM file)',
    'township.reason.0122': 'SOP class not supported',
    'township.reason.0124': 'Refused: the study belongs to another hospital',
    'township.reason.B000': 'Patient data differ from the study\'s (stored and flagged)',
    'township.reason.http': 'Upload failed ({status}): {detail}',
    'township.reason.network': 'Network error',
    'township.filter': 'State',
    'township.all': 'All',
    'township.empty': 'No exams yet',
    'township.patient': 'Patient',
    'township.accession': 'Accession',
    'township.modality': 'Modality',
    'township.studyDate': 'Study date',
    'township.instances': 'Images',
    'township.state': 'State',
    'township.turnaround': 'Turnaround',
    'township.arrived': 'Received',
    'township.due': 'Due',
    'township.overdue': 'Overdue',
    'township.conflict': 'Patient conflict',
    'township.changed': 'New images after reading',
    'township.refused': 'Refused images',
    'township.status.received': 'Received',
    'township.status.waiting': 'Waiting',
    'township.status.being_read': 'Being read',
    'township.status.reported': 'Reported',
    'township.status.amended': 'Amended',
    'township.status.retracted': 'Retracted',
    'township.detail': 'Exam',
    'township.tabExams': 'Exams',
    'township.tabLab': 'Lab results',
    'township.labTitle': 'Our lab results',
    'township.labEmpty': 'No lab results yet',
    'township.labOrder': 'Order',
    'township.labObserved': 'Collected',
    'township.labStatus': 'Report status',
    'township.labAbnormal': 'Abnormal',
    'township.labAbnormalN': '{n} abnormal',
    'township.labCritical': 'Critical ({n} abnormal)',
    'township.more': 'Load more',
    'township.report': 'Report',
    'township.noReport': 'No report yet',
    'township.findings': 'Findings',
    'township.impression': 'Impression',
    'township.critical': 'Critical finding',
    'township.signedBy': 'Signed by {who}, {when}',
    'township.version': 'Version {n} ({status})',
    'township.pdf': 'Download PDF',
    'township.jws': 'Download signature (JWS)',
    'township.share': 'Share with the patient',
    'township.verify.ok': 'Signature valid',
    'township.verify.bad': 'Signature invalid',
    'township.verify.checking': 'Checking the signature…',
    'township.verify.unknown': 'Cannot check the signature',
    'township.center': 'Center',
    'township.priority': 'Priority',
    'township.close': 'Close',
    'township.reportStatus.draft': 'Draft',
    'township.reportStatus.preliminary': 'Preliminary (awaiting co-sign)',
    'township.reportStatus.final': 'Final',
    'township.reportStatus.amended': 'Amended',
    'township.reportStatus.corrected': 'Corrected',
    'township.reportStatus.entered_in_error': 'Retracted',
    'nav.township': 'Our exams',
  },
});

const REFRESH_MS = 10000;
const PARALLEL = 2; // files sent at once
const FILE_MAX = 2 * 1024 * 1024 * 1024; // what a browser sends in one request, at most

const STATUS_BADGE = {
  received: '',
  waiting: 'accent',
  being_read: 'accent',
  reported: 'ok',
  amended: 'warn',
  retracted: 'bad',
};

// ---- STOW-RS, one file per request ----

const hex4 = (n) => n.toString(16).toUpperCase().padStart(4, '0');
const firstValue = (item, tag) => {
  const e = item && item[tag];
  return e && e.Value && e.Value.length ? e.Value[0] : undefined;
};

// The outcome of one file from the STOW response (PS3.18 10.5.3):
// {state: 'stored' | 'warning' | 'failed', reason, study}.
function stowOutcome(xhr) {
  let doc = null;
  try {
    doc = JSON.parse(xhr.responseText);
  } catch (_) {
    /* not JSON */
  }
  if (xhr.status !== 200 && xhr.status !== 202 && xhr.status !== 409) {
    let detail = (doc && (doc.detail || doc.error)) || xhr.statusText || '';
    return { state: 'failed', reason: t('township.reason.http', { status: xhr.status, detail }) };
  }
  const ok = (doc && doc['00081199'] && doc['00081199'].Value) || [];
  const failed = (doc && doc['00081198'] && doc['00081198'].Value) || [];
  const url = firstValue(doc, '00081190');
  const study = url ? decodeURIComponent(String(url).split('/studies/')[1] || '').split('/')[0] : '';
  if (failed.length) {
    const code = hex4(firstValue(failed[0], '00081197') || 0x0110);
    const r = t('township.reason.' + code);
    return { state: 'failed', reason: r.startsWith('township.') ? code : r, code, study };
  }
  if (!ok.length) return { state: 'failed', reason: t('township.reason.0110') };
  const warn = firstValue(ok[0], '00081196');
  if (warn) {
    const code = hex4(warn);
    const header = xhr.getResponseHeader('Warning') || '';
    const r = t('township.reason.' + code);
    return { state: 'warning', reason: r.startsWith('township.') ? header || code : r, code, study };
  }
  return { state: 'stored', reason: '', study };
}

// Sends one file; onProgress(loaded, total); resolves to stowOutcome.
function stowFile(file, onProgress) {
  return new Promise((resolve) => {
    const boundary = 'huren-' + Math.random().toString(16).slice(2) + Date.now().toString(16);
    const body = new Blob([
      `--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`,
      file,
      `\r\n--${boundary}--\r\n`,
    ]);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/dicomweb/studies');
    xhr.withCredentials = true;
    xhr.setRequestHeader('Content-Type', `multipart/related; type="application/dicom"; boundary=${boundary}`);
    xhr.setRequestHeader('Accept', 'application/dicom+json');
    xhr.setRequestHeader('X-Requested-With', 'huren');
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : body.size);
    xhr.onload = () => resolve(stowOutcome(xhr));
    xhr.onerror = () => resolve({ state: 'failed', reason: t('township.reason.network') });
    xhr.onabort = xhr.onerror;
    xhr.send(body);
  });
}

// A DICOM person name for display: "李^四" -> "李四", "Doe^John" -> "Doe John".
export function fmtName(pn) {
  if (!pn) return '';
  const groups = String(pn).split('='); // alphabetic=ideographic=phonetic
  const g = groups[1] ? groups[1] : groups[0];
  const parts = g.split('^').filter(Boolean);
  return /[\u3400-\u9fff]/.test(g) ? parts.join('') : parts.join(' ');
}

// "ISSUER|ID" -> "ID" (the index keys a patient by issuer and id).
const fmtPid = (p) => String(p || '').split('|').pop();

function fmtSize(n) {
  if (n < 1024) return n + ' B';
  if (n < 1024 * 1024) return (n / 1024).toFixed(1) + ' KB';
  return (n / 1024 / 1024).toFixed(1) + ' MB';
}

function Uploads({ uploads, onClear }) {
  if (!uploads.length) return null;
  const ok = uploads.filter((u) => u.state === 'stored' || u.state === 'warning').length;
  const failed = uploads.filter((u) => u.state === 'failed').length;
  return html`<div class="panel" id="uploads">
    <div class="toolbar">
      <h3 style="margin:0">${t('township.uploads')}</h3>
      <span class="hint" id="upload-summary">${t('township.up.summary', { n: uploads.length, ok, failed })}</span>
      <span style="flex:1"></span>
      <button type="button" onClick=${onClear} id="upload-clear">${t('township.clearUploads')}</button>
    </div>
    <table class="grid">
      <thead><tr><th>${t('township.file')}</th><th>${t('township.size')}</th><th>${t('township.progress')}</th><th>${t('township.result')}</th></tr></thead>
      <tbody>
        ${uploads.map(
          (u) => html`<tr class=${u.state === 'failed' ? 'flagged' : ''} data-upload=${u.name} data-state=${u.state}>
            <td>${u.name}</td>
            <td class="num">${fmtSize(u.size)}</td>
            <td><progress max=${u.size || 1} value=${u.loaded}></progress></td>
            <td>
              <span class=${'badge ' + (u.state === 'stored' ? 'ok' : u.state === 'warning' ? 'warn' : u.state === 'failed' ? 'bad' : '')}>
                ${t('township.up.' + u.state)}</span>
              ${u.reason ? html` <span class="upload-reason">${u.reason}</span>` : null}
            </td>
          </tr>`
        )}
      </tbody>
    </table>
  </div>`;
}

// ---- the report of an exam ----

function VerifyBadge({ report, version }) {
  const [state, setState] = useState({ s: 'checking' });
  useEffect(() => {
    let live = true;
    get(`/api/v1/reports/${seg(report)}/versions/${version}/verify`).then(
      (v) => live && setState({ s: v.ok ? 'ok' : 'bad', v }),
      (e) => live && setState({ s: e.status === 404 ? 'unknown' : 'unknown', e })
    );
    return () => {
      live = false;
    };
  }, [report, version]);
  const cls = state.s === 'ok' ? 'ok' : state.s === 'bad' ? 'bad' : '';
  const title = state.v ? [state.v.signer, ...(state.v.why ? [state.v.why] : [])].join('\n') : '';
  return html`<span class=${'badge ' + cls} id="verify-badge" data-verify=${state.s} title=${title}>
    ${state.s === 'ok' ? '✔ ' : state.s === 'bad' ? '✘ ' : ''}${t('township.verify.' + state.s)}</span>`;
}

function ReportView({ rep, study }) {
  const shown = rep.current || (rep.versions.length ? rep.versions[rep.versions.length - 1].version : 0);
  const ver = rep.versions.find((v) => v.version === shown);
  const content = rep.signed && rep.signed.content ? rep.signed.content : null;
  const [error, setError] = useState('');
  const dl = async (what) => {
    setError('');
    try {
      await download(ver.links[what], `${rep.id}-v${shown}.${what === 'pdf' ? 'pdf' : 'jws'}`);
    } catch (e) {
      setError(e.message);
    }
  };
  const signers = ver && ver.signers && ver.signers.length ? ver.signers.map((s) => s.name || s.user || s.sub || '').filter(Boolean).join('、') : ver ? ver.signer : '';
  return html`<div class="report-box" data-report=${rep.id} data-report-status=${rep.status}>
    <div class="toolbar">
      <strong>${t('township.version', { n: shown, status: t('township.reportStatus.' + (rep.signed ? rep.signed.status : rep.status)) })}</strong>
      ${ver ? html`<${VerifyBadge} report=${rep.id} version=${shown} />` : null}
      ${content && content.critical ? html`<span class="badge bad" id="critical">${t('township.critical')}</span>` : null}
    </div>
    ${ver ? html`<p class="hint">${t('township.signedBy', { who: signers, when: fmtTime(ver.signed_ms) })}</p>` : null}
    ${content
      ? html`<h4>${t('township.findings')}</h4><pre class="report" id="report-findings">${content.findings || ''}</pre>
          <h4>${t('township.impression')}</h4><pre class="report" id="report-impression">${content.impression || ''}</pre>`
      : null}
    ${ver
      ? html`<div class="actions">
          <a class="button" href=${ver.links.pdf} target="_blank" rel="noopener" id="report-pdf" data-href=${ver.links.pdf}>${t('township.pdf')}</a>
          <button type="button" id="report-jws" onClick=${() => dl('jws')}>${t('township.jws')}</button>
          ${['final', 'amended', 'corrected'].includes(rep.signed ? rep.signed.status : rep.status)
            ? html`<a class="button" id="report-share" href=${'#/share/' + rep.id.replace(/^r[0-9]+-/, '')}>${t('township.share')}</a>`
            : null}
        </div>`
      : null}
    ${error ? html`<p class="error">${error}</p>` : null}
  </div>`;
}

function ExamDetail({ study, onClose }) {
  const [exam, setExam] = useState(null);
  const [error, setError] = useState('');
  useEffect(() => {
    let live = true;
    setExam(null);
    setError('');
    const load = () =>
      get(`/api/v1/exams/${seg(study)}`).then(
        (d) => live && setExam(d),
        (e) => live && setError(e.message)
      );
    load();
    const timer = setInterval(load, REFRESH_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [study]);
  const shown = exam ? exam.reports.filter((r) => r.signed) : [];
  const latest = shown.length ? shown[shown.length - 1] : null;
  // turnaround: arrival to the first signed version of the first report
  const firstSigned = exam && exam.reports.length && exam.reports[0].versions.length ? exam.reports[0].versions[0].signed_ms : 0;
  return html`<aside class="panel" id="exam-detail" data-study=${study}>
    <div class="toolbar">
      <h3 style="margin:0">${t('township.detail')}</h3>
      <span style="flex:1"></span>
      <button type="button" class="link" onClick=${onClose}>${t('township.close')}</button>
    </div>
    ${error ? html`<p class="error">${error}</p>` : null}
    ${!exam && !error ? html`<p class="hint">${t('app.loading')}</p>` : null}
    ${exam
      ? html`<dl class="kv">
          <dt>${t('township.patient')}</dt><dd>${fmtName(exam.patient_name)} (${fmtPid(exam.patient)})</dd>
          <dt>${t('township.accession')}</dt><dd>${exam.accession}</dd>
          <dt>${t('township.modality')}</dt><dd>${exam.modality} ${exam.procedure}</dd>
          <dt>${t('township.center')}</dt><dd>${exam.center_name || exam.center}</dd>
          <dt>${t('township.arrived')}</dt><dd>${fmtTime(exam.arrived_ms)}</dd>
          ${exam.due_ms ? html`<dt>${t('township.due')}</dt><dd>${fmtTime(exam.due_ms)}</dd>` : null}
          ${firstSigned && exam.arrived_ms
            ? html`<dt>${t('township.turnaround')}</dt><dd id="exam-turnaround">${fmtDuration(firstSigned - exam.arrived_ms)}</dd>`
            : null}
        </dl>
        ${isEcgExam(exam) ? html`<${EcgView} study=${study} />` : null}
        ${isLabExam(exam) ? html`<${LabView} uid=${study} />` : null}
        <h3>${t('township.report')}</h3>
        ${latest ? html`<${ReportView} rep=${latest} study=${study} />` : html`<p class="hint" id="no-report">${t('township.noReport')}</p>`}`
      : null}
  </aside>`;
}

// ---- the page ----

function turnaround(ex, now) {
  // open exams: time since arrival, ticking; reported ones: arrival to the
  // report (known once the report was opened) or blank
  if (!ex.arrived_ms) return '';
  if (ex.status === 'reported' || ex.status === 'amended' || ex.status === 'retracted') return '';
  return fmtDuration(Math.max(0, Math.max(now, Date.now()) - ex.arrived_ms));
}

function Township({ me, params }) {
  const [items, setItems] = useState(null);
  const [error, setError] = useState('');
  const [filter, setFilter] = useState('');
  const [uploads, setUploads] = useState([]);
  const [refusedStudies, setRefused] = useState({});
  const [now, setNow] = useState(Date.now());
  const uploadsRef = useRef([]);
  const selected = params.study ? decodeURIComponent(params.study) : '';

  const load = () =>
    get('/api/v1/exams?hospital=me&limit=200').then(
      (d) => {
        setItems(d.items);
        setError('');
      },
      (e) => setError(e.message)
    );

  useEffect(() => {
    load();
    const timer = setInterval(load, REFRESH_MS);
    const clock = setInterval(() => setNow(Date.now()), 30000);
    return () => {
      clearInterval(timer);
      clearInterval(clock);
    };
  }, []);

  const update = (i, patch) => {
    uploadsRef.current = uploadsRef.current.map((u, k) => (k === i ? { ...u, ...patch } : u));
    setUploads(uploadsRef.current);
  };

  const startUpload = async (fileList) => {
    const files = Array.from(fileList || []).filter((f) => !f.name.startsWith('.') && f.name !== 'DICOMDIR');
    if (!files.length) return;
    const base = uploadsRef.current.length;
    uploadsRef.current = uploadsRef.current.concat(
      files.map((f) => ({ name: f.webkitRelativePath || f.name, size: f.size, loaded: 0, state: 'queued', reason: '' }))
    );
    setUploads(uploadsRef.current);
    let next = 0;
    const worker = async () => {
      while (next < files.length) {
        const k = next++;
        const f = files[k];
        if (f.size > FILE_MAX) {
          update(base + k, { state: 'failed', reason: t('error.http413') });
          continue;
        }
        update(base + k, { state: 'sending' });
        const res = await stowFile(f, (loaded) => update(base + k, { loaded }));
        update(base + k, { state: res.state, reason: res.reason, loaded: f.size });
        if (res.state === 'failed' && res.study) setRefused((m) => ({ ...m, [res.study]: (m[res.study] || 0) + 1 }));
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, files.length) }, worker));
    load();
  };

  const shown = items ? items.filter((ex) => !filter || ex.status === filter) : [];
  const open = (study) => navigate('/township/' + encodeURIComponent(study));

  return html`<section id="township">
    <${Tabs} current="exams" />
    <div class="toolbar">
      <h2 style="margin:0 12px 0 0">${t('township.title')}</h2>
      <label class="button primary" for="upload-files">${t('township.upload')}</label>
      <input type="file" id="upload-files" multiple hidden onChange=${(e) => {
        startUpload(e.target.files);
        e.target.value = '';
      }} />
      <label class="button" for="upload-folder">${t('township.uploadFolder')}</label>
      <input type="file" id="upload-folder" webkitdirectory multiple hidden onChange=${(e) => {
        startUpload(e.target.files);
        e.target.value = '';
      }} />
      <span class="hint">${t('township.uploadHint')}</span>
      <span style="flex:1"></span>
      <label>${t('township.filter')}
        <select id="status-filter" value=${filter} onChange=${(e) => setFilter(e.target.value)}>
          <option value="">${t('township.all')}</option>
          ${['received', 'waiting', 'being_read', 'reported', 'amended'].map((s) => html`<option value=${s}>${t('township.status.' + s)}</option>`)}
        </select></label>
      <button type="button" id="refresh" onClick=${load}>${t('common.refresh')}</button>
    </div>
    <${Uploads} uploads=${uploads} onClear=${() => {
      uploadsRef.current = [];
      setUploads([]);
    }} />
    ${error ? html`<p class="error" id="exams-error">${error}</p>` : null}
    <div class=${selected ? 'split' : ''}>
      <div>
        ${items === null && !error ? html`<p class="hint">${t('app.loading')}</p>` : null}
        ${items && !shown.length ? html`<p class="hint" id="exams-empty">${t('township.empty')}</p>` : null}
        ${shown.length
          ? html`<table class="grid" id="exams">
              <thead><tr>
                <th style="width:72px"></th><th>${t('township.patient')}</th><th>${t('township.accession')}</th><th>${t('township.modality')}</th>
                <th>${t('township.studyDate')}</th><th class="num">${t('township.instances')}</th><th>${t('township.state')}</th>
                <th>${t('township.turnaround')}</th><th>${t('township.arrived')}</th>
              </tr></thead>
              <tbody>
                ${shown.map((ex) => {
                  const refused = refusedStudies[ex.study] || 0;
                  const flagged = ex.patient_conflict || refused > 0;
                  const cls = [ex.study === selected ? 'selected' : '', flagged ? 'flagged' : ''].join(' ').trim();
                  return html`<tr class=${cls} data-study=${ex.study} data-status=${ex.status} data-flagged=${flagged ? '1' : '0'}
                      onClick=${() => open(ex.study)} style="cursor:pointer">
                    <td>${isLabExam(ex) ? html`<span class="thumb-empty"></span>` : html`<${Thumb} study=${ex.study} />`}</td>
                    <td><a href=${href('/township/' + encodeURIComponent(ex.study))}>${fmtName(ex.patient_name) || '—'}</a>
                      <div class="hint" title=${ex.patient}>${fmtPid(ex.patient)}</div></td>
                    <td>${ex.accession}</td>
                    <td>${ex.modality}</td>
                    <td>${ex.study_date}</td>
                    <td class="num">${ex.instances}</td>
                    <td>
                      <span class=${'badge ' + (STATUS_BADGE[ex.status] || '')} data-badge="status">${t('township.status.' + ex.status)}</span>
                      ${ex.overdue ? html` <span class="badge bad">${t('township.overdue')}</span>` : null}
                      ${ex.patient_conflict ? html` <span class="badge warn" data-badge="conflict">${t('township.conflict')}</span>` : null}
                      ${ex.changed_after_ready ? html` <span class="badge warn">${t('township.changed')}</span>` : null}
                      ${refused ? html` <span class="badge bad" data-badge="refused">${t('township.refused')} (${refused})</span>` : null}
                    </td>
                    <td class="num" data-clock=${ex.study}>${turnaround(ex, now)}</td>
                    <td>${fmtTime(ex.arrived_ms)}</td>
                  </tr>`;
                })}
              </tbody>
            </table>`
          : null}
      </div>
      ${selected ? html`<${ExamDetail} study=${selected} onClose=${() => navigate('/township')} />` : null}
    </div>
  </section>`;
}

// The study's thumbnail (PS3.18 rendered resource, study level: one request
// per row, no QIDO); hidden when the hub does not render it.
function Thumb({ study }) {
  const [failed, setFailed] = useState(false);
  if (failed) return html`<span class="thumb-empty"></span>`;
  return html`<img class="thumb" src=${`/dicomweb/studies/${seg(study)}/thumbnail`} alt="" loading="lazy"
    onError=${() => setFailed(true)} />`;
}

// ---- the hospital's lab results (检验结果, decision 0041) ----

function Tabs({ current }) {
  return html`<div class="toolbar township-tabs" id="township-tabs">
    <a class=${'button' + (current === 'exams' ? ' primary' : '')} id="tab-exams" href=${href('/township')}>${t('township.tabExams')}</a>
    <a class=${'button' + (current === 'lab' ? ' primary' : '')} id="tab-lab" href=${href('/township/lab')}>${t('township.tabLab')}</a>
  </div>`;
}

// The hospital's lab reports, newest first (GET /api/v1/lab-reports?hospital=me,
// FHIR Bundle), final at the township or reviewed at the county alike; one
// opens in the lab result view beside the list.
function TownshipLab({ params }) {
  const [entries, setEntries] = useState(null);
  const [next, setNext] = useState('');
  const [error, setError] = useState('');
  const selected = params.uid ? decodeURIComponent(params.uid) : '';
  const load = (cursor) =>
    get('/api/v1/lab-reports?hospital=me&limit=50' + (cursor ? '&cursor=' + seg(cursor) : ''), { accept: 'application/fhir+json' }).then(
      (b) => {
        const got = (b.entry || []).map((e) => e.resource);
        setEntries((old) => (cursor ? (old || []).concat(got) : got));
        setNext(b.next_cursor || '');
        setError('');
      },
      (e) => setError(e.message)
    );
  useEffect(() => {
    load('');
    const timer = setInterval(() => load(''), REFRESH_MS);
    return () => clearInterval(timer);
  }, []);
  const open = (uid) => navigate('/township/lab/' + encodeURIComponent(uid));
  return html`<section id="township-lab">
    <${Tabs} current="lab" />
    <div class="toolbar">
      <h2 style="margin:0 12px 0 0">${t('township.labTitle')}</h2>
      <span style="flex:1"></span>
      <button type="button" id="lab-refresh" onClick=${() => load('')}>${t('common.refresh')}</button>
    </div>
    ${error ? html`<p class="error" id="lab-list-error">${error}</p>` : null}
    <div class=${selected ? 'split' : ''}>
      <div>
        ${entries === null && !error ? html`<p class="hint">${t('app.loading')}</p>` : null}
        ${entries && !entries.length ? html`<p class="hint" id="lab-list-empty">${t('township.labEmpty')}</p>` : null}
        ${entries && entries.length
          ? html`<table class="grid" id="lab-reports">
              <thead><tr><th>${t('township.patient')}</th><th>${t('township.labOrder')}</th><th>${t('township.labObserved')}</th>
                <th>${t('township.labStatus')}</th><th>${t('township.labAbnormal')}</th></tr></thead>
              <tbody>${entries.map((dr) => {
                const obs = dr.contained || [];
                const abnormal = obs.filter((o) => obsFlags(o).length);
                const crit = abnormal.some((o) => flagClass(obsFlags(o)).crit);
                const subj = dr.subject || {};
                return html`<tr class=${dr.id === selected ? 'selected' : ''} data-lab=${dr.id} style="cursor:pointer" onClick=${() => open(dr.id)}>
                  <td><a href=${href('/township/lab/' + encodeURIComponent(dr.id))}>${fmtName(subj.display) || '—'}</a>
                    <div class="hint">${subj.identifier ? subj.identifier.value : ''}</div></td>
                  <td>${(dr.code && dr.code.text) || ''}</td>
                  <td>${fmtFhirTime(dr.effectiveDateTime)}</td>
                  <td><span class="badge">${t('lab.st.' + dr.status)}</span></td>
                  <td>${abnormal.length
                    ? html`<span class=${'badge ' + (crit ? 'bad' : 'warn')} data-abnormal=${abnormal.length} data-critical=${crit ? '1' : '0'}>
                        ${crit ? t('township.labCritical', { n: abnormal.length }) : t('township.labAbnormalN', { n: abnormal.length })}</span>`
                    : ''}</td>
                </tr>`;
              })}</tbody></table>
            ${next ? html`<button type="button" id="lab-more" onClick=${() => load(next)}>${t('township.more')}</button>` : null}`
          : null}
      </div>
      ${selected
        ? html`<aside class="panel" id="lab-detail" data-lab=${selected}>
            <div class="toolbar"><span style="flex:1"></span>
              <button type="button" class="link" onClick=${() => navigate('/township/lab')}>${t('township.close')}</button></div>
            <${LabView} uid=${selected} />
          </aside>`
        : null}
    </div>
  </section>`;
}

const ROLES = ['technician', 'admin'];
// before '/township/:study' (the first match wins; same order, registered first)
registerPage({ path: '/township/lab', roles: ROLES, order: 10, component: TownshipLab });
registerPage({ path: '/township/lab/:uid', roles: ROLES, order: 10, component: TownshipLab });
registerPage({ path: '/township', roles: ROLES, nav: 'nav.township', order: 10, component: Township });
registerPage({ path: '/township/:study', roles: ROLES, order: 10, component: Township });
