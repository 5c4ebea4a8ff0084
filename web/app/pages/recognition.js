// 结果互认: the receiving doctor at another hospital (decision 0027). Search a
// person by national ID or health card (GET /api/v1/recognition), list the
// recognizable results (HR mark, scope, validity end, issuing center) and,
// apart, those not recognizable with the reason; open one: the report text
// (GET /api/v1/reports/{id}, readable through the lookup's grant), its
// signature checked by huren (GET .../versions/{n}/verify), the images in
// the viewer, the PDF; record accept or reject with a reason code (free text
// for "other"): POST /api/v1/recognition/{result}/decision. Lab results
// (lookup's lab_results, decision 0041): value, unit, range, validity, the
// reason when not recognizable; a recognizable one opens in the lab result
// view (its lab report is granted by the lookup) with the same decision form.
import { useEffect, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { t, addMessages, fmtTime } from '../i18n.js';
import { get, post, download, seg } from '../api.js';
import { EcgView, isEcgExam } from '../ecg/ecg.js';
import { LabView } from '../lab/lab.js';
import { registerPage } from '../router.js';

const REASONS = [
  'condition_changed', 'fast_changing_value', 'before_major_procedure', 'emergency',
  'forensic_or_disability_assessment', 'patient_request', 'issuer_failed_eqa', 'too_old',
  'physician_judgement', 'other',
];

addMessages({
  'zh-CN': {
    'nav.recognition': '结果互认',
    'recognition.title': '检查结果互认',
    'recognition.idType': '证件类型',
    'recognition.idType.national_id': '居民身份证',
    'recognition.idType.health_card': '居民健康卡',
    'recognition.id': '证件号码',
    'recognition.search': '查询',
    'recognition.searching': '查询中…',
    'recognition.none': '未查到该患者的可互认结果。',
    'recognition.recognizable': '可互认结果（{n}）',
    'recognition.notRecognizable': '不可互认结果（{n}）',
    'recognition.item': '检查项目',
    'recognition.mark': '互认标识',
    'recognition.scope': '互认范围',
    'recognition.validUntil': '有效期至',
    'recognition.center': '出具机构',
    'recognition.studyDate': '检查日期',
    'recognition.source': '检查医院',
    'recognition.reason': '原因',
    'recognition.open': '查看',
    'recognition.scope.community': '医共体内',
    'recognition.scope.city': '市域',
    'recognition.scope.province': '省域',
    'recognition.why.expired': '已超过有效期',
    'recognition.why.superseded': '已被修订报告取代',
    'recognition.why.entered-in-error': '报告已撤回',
    'recognition.why.qc_lapsed': '出具机构质控未覆盖该项目',
    'recognition.why.preliminary': '报告尚未审核',
    'recognition.why.not_in_catalogue': '不在互认目录内',
    'recognition.grantUntil': '可查阅至 {when}',
    'recognition.report': '诊断报告',
    'recognition.findings': '检查所见',
    'recognition.impression': '诊断意见',
    'recognition.signers': '签名医师',
    'recognition.images': '在阅片器中打开影像',
    'recognition.pdf': '下载 PDF',
    'recognition.verify.checking': '正在验证签名…',
    'recognition.verify.ok': '电子签名验证通过',
    'recognition.verify.bad': '电子签名验证失败',
    'recognition.verify.unknown': '无法验证签名',
    'recognition.decision': '互认结论',
    'recognition.accept': '认可（不重复检查）',
    'recognition.reject': '不认可（需重新检查）',
    'recognition.rejectReason': '不认可原因',
    'recognition.chooseReason': '请选择原因',
    'recognition.text': '说明',
    'recognition.textRequired': '选择“其他”时必须填写说明',
    'recognition.submit': '提交结论',
    'recognition.saved': '已记录：{what}',
    'recognition.history': '已记录的结论',
    'recognition.close': '关闭',
    'recognition.r.condition_changed': '病情变化',
    'recognition.r.fast_changing_value': '指标变化快，需复查',
    'recognition.r.before_major_procedure': '重大手术或治疗前需复查',
    'recognition.r.emergency': '急诊、急救',
    'recognition.r.forensic_or_disability_assessment': '司法鉴定、伤残鉴定等',
    'recognition.r.patient_request': '患者要求',
    'recognition.r.issuer_failed_eqa': '出具机构质控不合格',
    'recognition.r.too_old': '结果时间过久',
    'recognition.r.physician_judgement': '医师专业判断需复查',
    'recognition.r.other': '其他',
    'recognition.lab': '检验结果（{n}）',
    'recognition.labItem': '检验项目',
    'recognition.labValue': '结果',
    'recognition.labUnit': '单位',
    'recognition.labRange': '参考范围',
    'recognition.labFlag': '提示',
    'recognition.labObserved': '检测日期',
    'recognition.labState': '互认',
    'recognition.labYes': '可互认',
    'recognition.labTownship': '乡镇检验（未经县级审核）',
    'recognition.why.not_final': '结果尚未审核',
    'recognition.why.recognizable': '可互认',
  },
  en: {
    'nav.recognition': 'Recognition',
    'recognition.title': 'Mutual recognition of results',
    'recognition.idType': 'ID type',
    'recognition.idType.national_id': 'National ID',
    'recognition.idType.health_card': 'Health card',
    'recognition.id': 'Number',
    'recognition.search': 'Search',
    'recognition.searching': 'Searching…',
    'recognition.none': 'No recognizable result found for this person.',
    'recognition.recognizable': 'Recognizable results ({n})',
    'recognition.notRecognizable': 'Not recognizable ({n})',
    'recognition.item': 'Item',
    'recognition.mark': 'HR mark',
    'recognition.scope': 'Scope',
    'recognition.validUntil': 'Valid until',
    'recognition.center': 'Issued by',
    'recognition.studyDate': 'Study date',
    'recognition.source': 'Hospital',
    'recognition.reason': 'Reason',
    'recognition.open': 'Open',
    'recognition.scope.community': 'Medical community',
    'recognition.scope.city': 'City',
    'recognition.scope.province': 'Province',
    'recognition.why.expired': 'Expired',
    'recognition.why.superseded': 'Superseded by an amendment',
    'recognition.why.entered-in-error': 'Report retracted',
    'recognition.why.qc_lapsed': 'The issuer\'s quality control does not cover the item',
    'recognition.why.preliminary': 'Not yet co-signed',
    'recognition.why.not_in_catalogue': 'Not in the catalogue',
    'recognition.grantUntil': 'Readable until {when}',
    'recognition.report': 'Report',
    'recognition.findings': 'Findings',
    'recognition.impression': 'Impression',
    'recognition.signers': 'Signed by',
    'recognition.images': 'Open the images in the viewer',
    'recognition.pdf': 'Download PDF',
    'recognition.verify.checking': 'Checking the signature…',
    'recognition.verify.ok': 'Signature verified',
    'recognition.verify.bad': 'Signature invalid',
    'recognition.verify.unknown': 'Cannot check the signature',
    'recognition.decision': 'Decision',
    'recognition.accept': 'Accept (no repeat exam)',
    'recognition.reject': 'Reject (repeat the exam)',
    'recognition.rejectReason': 'Reason',
    'recognition.chooseReason': 'Choose a reason',
    'recognition.text': 'Note',
    'recognition.textRequired': 'A note is required with "other"',
    'recognition.submit': 'Record',
    'recognition.saved': 'Recorded: {what}',
    'recognition.history': 'Decisions recorded',
    'recognition.close': 'Close',
    'recognition.r.condition_changed': 'Condition changed',
    'recognition.r.fast_changing_value': 'Fast-changing value',
    'recognition.r.before_major_procedure': 'Before a major procedure',
    'recognition.r.emergency': 'Emergency',
    'recognition.r.forensic_or_disability_assessment': 'Forensic or disability assessment',
    'recognition.r.patient_request': 'Patient request',
    'recognition.r.issuer_failed_eqa': 'Issuer failed quality control',
    'recognition.r.too_old': 'Too old',
    'recognition.r.physician_judgement': 'Physician\'s judgement',
    'recognition.r.other': 'Other',
    'recognition.lab': 'Lab results ({n})',
    'recognition.labItem': 'Test',
    'recognition.labValue': 'Result',
    'recognition.labUnit': 'Unit',
    'recognition.labRange': 'Reference range',
    'recognition.labFlag': 'Flag',
    'recognition.labObserved': 'Observed',
    'recognition.labState': 'Recognition',
    'recognition.labYes': 'Recognizable',
    'recognition.labTownship': 'Township lab (not reviewed)',
    'recognition.why.not_final': 'Result not final',
    'recognition.why.recognizable': 'Recognizable',
  },
});

const day = (s) => (/^\d{8}$/.test(s || '') ? `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6)}` : s || '');
const isoMs = (s) => (s ? Date.parse(s) : 0);

function VerifyBadge({ report, version }) {
  const [st, setSt] = useState({ s: 'checking' });
  useEffect(() => {
    let live = true;
    setSt({ s: 'checking' });
    get(`/api/v1/reports/${seg(report)}/versions/${version}/verify`).then(
      (v) => live && setSt({ s: v.ok ? 'ok' : 'bad', v }),
      (e) => live && setSt({ s: 'unknown', e })
    );
    return () => {
      live = false;
    };
  }, [report, version]);
  const cls = st.s === 'ok' ? 'ok' : st.s === 'bad' ? 'bad' : '';
  const title = st.v ? [st.v.signer, st.v.why].filter(Boolean).join('\n') : '';
  return html`<span class=${'badge ' + cls} id="rec-verify" data-verify=${st.s} title=${title}>
    ${st.s === 'ok' ? '✔ ' : st.s === 'bad' ? '✘ ' : ''}${t('recognition.verify.' + st.s)}</span>`;
}

function Decision({ result, onDone }) {
  const [choice, setChoice] = useState('');
  const [reason, setReason] = useState('');
  const [text, setText] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (ev) => {
    ev.preventDefault();
    setError('');
    if (choice === 'reject' && reason === 'other' && !text.trim()) {
      setError(t('recognition.textRequired'));
      return;
    }
    const body = { decision: choice };
    if (choice === 'reject') body.reason = reason;
    if (text.trim()) body.text = text.trim();
    setBusy(true);
    try {
      const d = await post(`/api/v1/recognition/${seg(result.result)}/decision`, body);
      onDone(d);
      setChoice('');
      setReason('');
      setText('');
    } catch (e) {
      setError(e.message);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="panel" id="rec-decision" onSubmit=${submit} noValidate>
    <h3>${t('recognition.decision')}</h3>
    <label><input type="radio" name="decision" id="rec-accept" value="accept" checked=${choice === 'accept'}
      onChange=${() => setChoice('accept')} /> ${t('recognition.accept')}</label>
    <label><input type="radio" name="decision" id="rec-reject" value="reject" checked=${choice === 'reject'}
      onChange=${() => setChoice('reject')} /> ${t('recognition.reject')}</label>
    ${choice === 'reject'
      ? html`<label>${t('recognition.rejectReason')}
          <select id="rec-reason" value=${reason} onChange=${(e) => setReason(e.target.value)} required>
            <option value="">${t('recognition.chooseReason')}</option>
            ${REASONS.map((r) => html`<option value=${r}>${t('recognition.r.' + r)}</option>`)}
          </select></label>`
      : null}
    ${choice
      ? html`<label>${t('recognition.text')}
          <textarea id="rec-text" rows="2" maxlength="1000" value=${text} onInput=${(e) => setText(e.target.value)}
            required=${choice === 'reject' && reason === 'other'}></textarea></label>`
      : null}
    ${error ? html`<p class="error" id="rec-decision-error" role="alert">${error}</p>` : null}
    <button type="submit" class="primary" id="rec-submit"
      disabled=${busy || !choice || (choice === 'reject' && !reason)}>${t('recognition.submit')}</button>
  </form>`;
}

function Detail({ result, onClose }) {
  const [rep, setRep] = useState(null);
  const [error, setError] = useState('');
  const [decisions, setDecisions] = useState([]);
  const [saved, setSaved] = useState(null);
  useEffect(() => {
    get(`/api/v1/reports/${seg(result.report)}`).then(setRep, (e) => setError(e.message));
    get(`/api/v1/recognition/${seg(result.result)}/decisions`).then(
      (d) => setDecisions(d.decisions || []),
      () => setDecisions([])
    );
  }, [result.result]);
  const content = rep && rep.signed ? rep.signed.content : null;
  const done = (d) => {
    setSaved(d);
    setDecisions((old) => [...old, d]);
  };
  const what = (d) =>
    d.decision === 'accept' ? t('recognition.accept') : `${t('recognition.reject')} · ${t('recognition.r.' + d.reason)}${d.text ? ' · ' + d.text : ''}`;
  return html`<section class="panel" id="rec-detail" data-result=${result.result}>
    <div class="toolbar">
      <h3>${result.name} <span class="badge ok">${result.hr_mark}</span></h3>
      <button type="button" class="link" id="rec-close" onClick=${onClose}>${t('recognition.close')}</button>
    </div>
    <p>${result.source_hospital_name || result.source_hospital} · ${result.modality} · ${day(result.study_date)}
      · ${t('recognition.validUntil')} ${result.valid_until}</p>
    <h4>${t('recognition.report')} <${VerifyBadge} report=${result.report} version=${result.version} /></h4>
    ${error ? html`<p class="error">${error}</p>` : null}
    ${content
      ? html`<dl>
          <dt>${t('recognition.findings')}</dt><dd id="rec-findings" style="white-space:pre-wrap">${content.findings}</dd>
          <dt>${t('recognition.impression')}</dt><dd id="rec-impression" style="white-space:pre-wrap">${content.impression}</dd>
          <dt>${t('recognition.signers')}</dt>
          <dd>${(result.signers || []).map((s) => `${s.name || s.user} (${fmtTime(isoMs(s.signed_at))})`).join('，')}</dd>
        </dl>`
      : null}
    ${isEcgExam(result) ? html`<${EcgView} study=${result.study} />` : null}
    <div class="toolbar">
      <a class="button" id="rec-viewer" target="_blank" rel="noopener"
        href=${`/viewer/viewer?StudyInstanceUIDs=${encodeURIComponent(result.study)}`}>${t('recognition.images')}</a>
      <button type="button" id="rec-pdf"
        onClick=${() => download(`/api/v1/reports/${seg(result.report)}/versions/${result.version}/pdf`, `${result.report}-v${result.version}.pdf`).catch((e) => setError(e.message))}>
        ${t('recognition.pdf')}</button>
    </div>
    ${decisions.length
      ? html`<h4>${t('recognition.history')}</h4>
          <ul id="rec-history">${decisions.map((d) => html`<li data-decision=${d.decision} data-reason=${d.reason || ''}>
            ${fmtTime(d.at_ms)} · ${d.doctor || d.user} · ${what(d)}</li>`)}</ul>`
      : null}
    ${saved ? html`<p class="info" id="rec-saved">${t('recognition.saved', { what: what(saved) })}</p>` : null}
    <${Decision} result=${result} onDone=${done} />
  </section>`;
}

// A lab result opened: the lab report (granted by the lookup), the
// decisions on it, the decision form.
function LabDetail({ result, onClose }) {
  const [decisions, setDecisions] = useState([]);
  const [saved, setSaved] = useState(null);
  useEffect(() => {
    get(`/api/v1/recognition/${seg(result.result)}/decisions`).then(
      (d) => setDecisions(d.decisions || []),
      () => setDecisions([])
    );
  }, [result.result]);
  const done = (d) => {
    setSaved(d);
    setDecisions((old) => [...old, d]);
  };
  const what = (d) =>
    d.decision === 'accept' ? t('recognition.accept') : `${t('recognition.reject')} · ${t('recognition.r.' + d.reason)}${d.text ? ' · ' + d.text : ''}`;
  return html`<section class="panel" id="rec-detail" data-result=${result.result} data-kind="lab">
    <div class="toolbar">
      <h3>${result.name} <span class="badge ok">${result.hr_mark}</span></h3>
      <button type="button" class="link" id="rec-close" onClick=${onClose}>${t('recognition.close')}</button>
    </div>
    <p>${result.display || result.code}: <strong id="rec-lab-value">${result.value} ${result.unit}</strong>
      (${result.range}) · ${t('recognition.labObserved')} ${result.observed} · ${t('recognition.validUntil')} ${result.valid_until}</p>
    <${LabView} uid=${result.study} />
    ${decisions.length
      ? html`<h4>${t('recognition.history')}</h4>
          <ul id="rec-history">${decisions.map((d) => html`<li data-decision=${d.decision} data-reason=${d.reason || ''}>
            ${fmtTime(d.at_ms)} · ${d.doctor || d.user} · ${what(d)}</li>`)}</ul>`
      : null}
    ${saved ? html`<p class="info" id="rec-saved">${t('recognition.saved', { what: what(saved) })}</p>` : null}
    <${Decision} result=${result} onDone=${done} />
  </section>`;
}

function LabResults({ rows, open, setOpen }) {
  return html`<div class="panel">
    <h3>${t('recognition.lab', { n: rows.length })}</h3>
    <table class="grid" id="rec-lab">
      <thead><tr>
        <th>${t('recognition.labItem')}</th><th>${t('recognition.labValue')}</th><th>${t('recognition.labUnit')}</th>
        <th>${t('recognition.labRange')}</th><th>${t('recognition.labFlag')}</th><th>${t('recognition.labObserved')}</th>
        <th>${t('recognition.validUntil')}</th><th>${t('recognition.center')}</th><th>${t('recognition.labState')}</th><th></th>
      </tr></thead>
      <tbody>${rows.map((r, i) => {
        const flags = (r.flags || []).filter((f) => f && f !== 'N');
        const hi = flags.some((f) => f.startsWith('H') || f === '>');
        const lo = flags.some((f) => f.startsWith('L') || f === '<');
        return html`<tr data-result=${r.result} data-reason=${r.reason} class=${open && open.result === r.result ? 'selected' : ''}>
          <td>${r.name}<div class="hint">${r.display || ''} ${r.code}</div></td>
          <td class="num" style=${hi ? 'color:var(--bad);font-weight:600' : lo ? 'color:#1d4ed8;font-weight:600' : ''}>${r.value}</td>
          <td>${r.unit}</td><td>${r.range}</td><td>${flags.join(' ')}</td><td>${r.observed}</td><td>${r.valid_until}</td>
          <td>${r.center || t('recognition.labTownship')}</td>
          <td>${r.recognizable
            ? html`<span class="badge ok">${t('recognition.labYes')}</span>`
            : html`<span class="badge warn">${t('recognition.why.' + r.reason)}</span>`}</td>
          <td>${r.recognizable ? html`<button type="button" data-open-lab=${i} onClick=${() => setOpen(r)}>${t('recognition.open')}</button>` : null}</td>
        </tr>`;
      })}</tbody>
    </table></div>`;
}

function Recognition() {
  const [idType, setIdType] = useState('national_id');
  const [id, setId] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const [data, setData] = useState(null);
  const [open, setOpen] = useState(null);
  const search = async (ev) => {
    ev.preventDefault();
    setError('');
    setOpen(null);
    setBusy(true);
    try {
      setData(await get(`/api/v1/recognition?id_type=${seg(idType)}&id=${seg(id.trim())}`));
    } catch (e) {
      setData(null);
      setError(e.message);
    } finally {
      setBusy(false);
    }
  };
  const ok = data ? data.results : [];
  const notOk = data ? data.not_recognizable : [];
  const lab = data && data.lab_results ? data.lab_results : [];
  return html`<section>
    <h2>${t('recognition.title')}</h2>
    <form class="panel toolbar" id="rec-search-form" onSubmit=${search}>
      <label>${t('recognition.idType')}
        <select id="rec-id-type" value=${idType} onChange=${(e) => setIdType(e.target.value)}>
          <option value="national_id">${t('recognition.idType.national_id')}</option>
          <option value="health_card">${t('recognition.idType.health_card')}</option>
        </select></label>
      <label>${t('recognition.id')}
        <input id="rec-id" value=${id} onInput=${(e) => setId(e.target.value)} autocomplete="off" spellcheck=${false}
          maxlength="64" required /></label>
      <button type="submit" class="primary" id="rec-search" disabled=${busy}>
        ${busy ? t('recognition.searching') : t('recognition.search')}</button>
    </form>
    ${error ? html`<p class="error" id="rec-error" role="alert">${error}</p>` : null}
    ${data && !ok.length && !notOk.length && !lab.length ? html`<p class="info" id="rec-none">${t('recognition.none')}</p>` : null}
    ${data && ok.length
      ? html`<div class="panel">
          <h3>${t('recognition.recognizable', { n: ok.length })}
            ${data.grant && data.grant.until_ms ? html` <small>${t('recognition.grantUntil', { when: fmtTime(data.grant.until_ms) })}</small>` : null}</h3>
          <table class="grid" id="rec-results">
            <thead><tr>
              <th>${t('recognition.item')}</th><th>${t('recognition.mark')}</th><th>${t('recognition.scope')}</th>
              <th>${t('recognition.validUntil')}</th><th>${t('recognition.center')}</th>
              <th>${t('recognition.studyDate')}</th><th></th>
            </tr></thead>
            <tbody>${ok.map((r, i) => html`<tr data-result=${r.result} class=${open && open.result === r.result ? 'selected' : ''}>
              <td>${r.name}</td><td><span class="badge ok">${r.hr_mark}</span></td>
              <td>${t('recognition.scope.' + r.scope)}</td><td>${r.valid_until}</td>
              <td>${r.center_name || r.center}${r.issuing_hospital_name ? ` · ${r.issuing_hospital_name}` : ''}</td>
              <td>${day(r.study_date)}</td>
              <td><button type="button" data-open=${i} onClick=${() => setOpen(r)}>${t('recognition.open')}</button></td>
            </tr>`)}</tbody>
          </table></div>`
      : null}
    ${open && open.kind !== 'lab' ? html`<${Detail} key=${open.result} result=${open} onClose=${() => setOpen(null)} />` : null}
    ${data && lab.length ? html`<${LabResults} rows=${lab} open=${open} setOpen=${setOpen} />` : null}
    ${open && open.kind === 'lab' ? html`<${LabDetail} key=${open.result} result=${open} onClose=${() => setOpen(null)} />` : null}
    ${data && notOk.length
      ? html`<div class="panel">
          <h3>${t('recognition.notRecognizable', { n: notOk.length })}</h3>
          <table class="grid" id="rec-not">
            <thead><tr>
              <th>${t('recognition.item')}</th><th>${t('recognition.reason')}</th><th>${t('recognition.center')}</th>
              <th>${t('recognition.studyDate')}</th><th>${t('recognition.validUntil')}</th>
            </tr></thead>
            <tbody>${notOk.map((r) => html`<tr data-result=${r.result} data-reason=${r.reason}>
              <td>${r.name}</td><td><span class="badge warn">${t('recognition.why.' + r.reason)}</span></td>
              <td>${r.center_name || r.center}</td><td>${day(r.study_date)}</td><td>${r.valid_until}</td>
            </tr>`)}</tbody>
          </table></div>`
      : null}
  </section>`;
}

registerPage({
  path: '/recognition',
  roles: ['external', 'reader', 'auditor'],
  nav: 'nav.recognition',
  order: 40,
  component: Recognition,
});
