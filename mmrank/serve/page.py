"""The results page: one server-rendered HTML document with a little JavaScript that calls ``POST /search``."""

from __future__ import annotations

from html import escape

_CSS = """
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;
color:#1f2328;background:#f6f8fa}header{background:#fff;border-bottom:1px solid #d0d7de;padding:14px 24px;
display:flex;align-items:baseline;gap:16px}header h1{font-size:19px;margin:0}header .meta{color:#57606a;
font-size:13px}main{max-width:1180px;margin:0 auto;padding:20px 24px}form{display:flex;flex-wrap:wrap;gap:10px;
align-items:center;background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:14px}
input[type=text]{flex:1 1 360px;padding:9px 11px;border:1px solid #d0d7de;border-radius:6px;font-size:15px}
input[type=number]{width:70px;padding:8px;border:1px solid #d0d7de;border-radius:6px}
button{background:#1f6feb;color:#fff;border:0;border-radius:6px;padding:9px 18px;font-size:15px;cursor:pointer}
button:disabled{opacity:.6}label{color:#57606a;font-size:13px}#status{margin:14px 2px;color:#57606a;
font-size:13px}#results{display:grid;grid-template-columns:repeat(auto-fill,minmax(190px,1fr));gap:14px}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;overflow:hidden;cursor:pointer;
display:flex;flex-direction:column}.card:hover{border-color:#1f6feb;box-shadow:0 1px 6px rgba(31,111,235,.2)}
.card img{width:100%;height:170px;object-fit:contain;background:#eaeef2}.card .body{padding:8px 10px}
.card .id{font-size:13px;font-weight:600;word-break:break-all}.card .score{font:12px ui-monospace,monospace;
color:#1a7f37}.card .text{font-size:13px;color:#424a53;margin-top:4px;max-height:5.8em;overflow:hidden}
.badge{display:inline-block;background:#ddf4ff;color:#0969da;border-radius:10px;padding:0 7px;font-size:11px;
margin-left:4px}#viewer{position:fixed;inset:0;background:rgba(0,0,0,.7);display:none;align-items:center;
justify-content:center;padding:30px}#viewer .box{background:#fff;border-radius:8px;max-width:92vw;max-height:92vh;
overflow:auto;padding:14px}#viewer img{max-width:88vw;max-height:78vh;display:block;margin:0 auto}
#viewer .cap{font-size:13px;color:#424a53;margin-top:8px;white-space:pre-wrap;max-width:80ch}
.error{color:#cf222e}
"""

_JS = """
const $ = (s) => document.querySelector(s);
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',
  "'":'&#39;'}[c]));
async function run(ev) {
  ev.preventDefault();
  const fd = new FormData($('#q'));
  if (!$('#file').files.length) fd.delete('image');
  if (!$('#rerank') || !$('#rerank').checked) fd.delete('rerank');
  $('#go').disabled = true; $('#status').textContent = 'searching\\u2026'; const t0 = performance.now();
  try {
    const res = await fetch('/search', {method: 'POST', body: fd});
    const data = await res.json();
    if (!res.ok) throw new Error(data.error || res.statusText);
    render(data, performance.now() - t0);
  } catch (e) {
    $('#status').innerHTML = '<span class="error">' + esc(e.message) + '</span>'; $('#results').innerHTML = '';
  } finally { $('#go').disabled = false; }
}
function render(data, ms) {
  const p = data.provenance;
  const an = data.modality === 'image' ? 'an' : 'a';
  $('#status').textContent = `${data.hits.length} results for ${an} ${data.modality} query in ${ms.toFixed(0)} ms` +
    ` \\u00b7 ${p.stage}` + (p.fallbacks.length ? ` \\u00b7 fallbacks: ${p.fallbacks.join('; ')}` : '');
  $('#results').innerHTML = data.hits.map((h) => {
    const page = h.page ? `<span class="badge">p. ${h.page.page}</span>` : '';
    const img = h.image_url ? `<img loading="lazy" src="${esc(h.image_url)}?size=256" alt="${esc(h.id)}">` : '';
    const txt = h.text ? `<div class="text">${esc(h.text)}</div>` : '';
    const title = h.page ? `${esc(h.page.doc_id)}${page}` : esc(h.title || h.id);
    return `<div class="card" data-id="${esc(h.id)}">${img}<div class="body"><div class="id">${h.rank}. ` +
      `${title}</div><div class="score">score ${h.score.toFixed(4)}</div>${txt}</div></div>`;
  }).join('');
  document.querySelectorAll('.card').forEach((c) => c.addEventListener('click', () => view(c.dataset.id)));
}
async function view(id) {
  const res = await fetch('/item/' + encodeURIComponent(id));
  const it = await res.json();
  if (!res.ok) return;
  const head = it.page ? `${esc(it.page.doc_id)}, page ${it.page.page}` : esc(it.title || it.id);
  $('#viewer .box').innerHTML = `<b>${head}</b>` +
    (it.image_url ? `<img src="${esc(it.image_url)}?size=1024" alt="${esc(it.id)}">` : '') +
    (it.text ? `<div class="cap">${esc(it.text)}</div>` : '');
  $('#viewer').style.display = 'flex';
}
$('#viewer').addEventListener('click', () => { $('#viewer').style.display = 'none'; });
$('#q').addEventListener('submit', run);
"""


def render_page(*, kind: str | None, index: str | None, reranker: str | None, can_ask: bool) -> str:
    """The HTML of ``GET /``."""
    meta = " \u00b7 ".join(
        x
        for x in (
            f"index <b>{escape(index)}</b> ({escape(kind or '?')})" if index else "no index (rerank only)",
            f"reranker <b>{escape(reranker)}</b>" if reranker else "",
            "page QA: POST /ask" if can_ask else "",
            '<a href="/docs">API</a>',
        )
        if x
    )
    rerank = '<label><input type="checkbox" id="rerank" name="rerank" value="true"> rerank</label>' if reranker else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>mmrank search</title><style>{_CSS}</style></head>
<body><header><h1>mmrank</h1><span class="meta">{meta}</span></header>
<main>
<form id="q" autocomplete="off">
  <input type="text" name="text" id="text" placeholder="Search text (with an image: what to change)">
  <label>image <input type="file" name="image" id="file" accept="image/*"></label>
  <label>k <input type="number" name="k" value="12" min="1" max="1000"></label>
  {rerank}
  <button id="go" type="submit">Search</button>
</form>
<div id="status">Type a query or choose an image.</div>
<div id="results"></div>
</main>
<div id="viewer"><div class="box"></div></div>
<script>{_JS}</script>
</body></html>"""
