// lumachrome web app: upload, hints, options, colorize, before/after, explain, download.
// Plain JavaScript, no dependencies, no requests to other hosts.
"use strict";
const $ = (id) => document.getElementById(id);
const state = { upload: null, hints: [], limits: null, models: [] };

function status(text, isError) {
  const s = $("status");
  s.textContent = text || "";
  s.className = isError ? "error" : "";
}

async function api(path, options) {
  let resp;
  try {
    resp = await fetch(path, options);
  } catch (e) {
    throw new Error("the server cannot be reached (" + e.message + ")");
  }
  let body = null;
  try { body = await resp.json(); } catch (e) { /* not JSON */ }
  if (!resp.ok) throw new Error((body && body.error) || ("HTTP " + resp.status));
  return body;
}

async function loadModels() {
  const info = await api("/api/models");
  state.limits = info.limits;
  state.models = info.models;
  const sel = $("model");
  sel.innerHTML = "";
  for (const m of info.models) {
    const o = document.createElement("option");
    o.value = m.name;
    o.textContent = m.name + (m.hints ? " (takes hints)" : "") + (m.kind === "translate" ? " (translation)" : "");
    sel.appendChild(o);
  }
  if (info.default) sel.value = info.default;
  for (const t of info.transfer_methods) {
    const o = document.createElement("option");
    o.value = t; o.textContent = t;
    $("transfer").appendChild(o);
  }
  $("limits").textContent = "Up to " + info.limits.upload_mb + " MB and " + info.limits.megapixels + " megapixels per image.";
  if (!info.models.length) status("No models are installed on this server.", true);
  updateModelNote();
}

function updateModelNote() {
  const m = state.models.find((x) => x.name === $("model").value);
  const note = !m ? "" : m.hints ? "Hints are used by this model; without hints it colorizes automatically."
    : state.models.some((x) => x.name === m.name + "-hints") ? "With hints, " + m.name + "-hints is used."
    : "This model takes no hints.";
  $("model-note").textContent = note;
  $("flat-label").hidden = !(m && m.flat);
  if (!(m && m.flat)) $("flat").checked = false;
}

async function upload(file) {
  if (!file) return;
  if (state.limits && file.size > state.limits.upload_mb * 1048576) {
    status("'" + file.name + "' is too large: " + (file.size / 1048576).toFixed(1) + " MB (limit " + state.limits.upload_mb + " MB)", true);
    return;
  }
  status("Uploading " + file.name + " ...");
  $("run").disabled = true;
  const fd = new FormData();
  fd.append("file", file, file.name);
  try {
    const up = await api("/api/upload", { method: "POST", body: fd });
    state.upload = up;
    state.hints = [];
    const img = $("input-img");
    img.onload = () => { renderHints(); };
    img.src = up.preview;
    $("stage").hidden = false;
    $("image-info").textContent = up.filename + ": " + up.width + " x " + up.height + " px" + (up.was_gray ? "" : " (colour: only its lightness is used)");
    $("run").disabled = false;
    status("Ready. Click on the image to add colour hints, then Colorize.");
  } catch (e) {
    status(e.message, true);
  }
}

function addHint(ev) {
  if (!state.upload) return;
  const img = $("input-img");
  const r = img.getBoundingClientRect();
  const fx = (ev.clientX - r.left) / r.width, fy = (ev.clientY - r.top) / r.height;
  if (fx < 0 || fx >= 1 || fy < 0 || fy >= 1) return;
  // full-resolution pixel under the click
  const x = Math.min(state.upload.width - 1, Math.floor(fx * state.upload.width));
  const y = Math.min(state.upload.height - 1, Math.floor(fy * state.upload.height));
  state.hints.push({ x: x, y: y, color: $("color").value });
  renderHints();
}

function renderHints() {
  const markers = $("markers"), list = $("hints");
  markers.innerHTML = ""; list.innerHTML = "";
  if (!state.upload) return;
  state.hints.forEach((h, i) => {
    const m = document.createElement("div");
    m.className = "marker";
    m.style.left = ((h.x + 0.5) / state.upload.width * 100) + "%";
    m.style.top = ((h.y + 0.5) / state.upload.height * 100) + "%";
    m.style.background = h.color;
    markers.appendChild(m);
    const li = document.createElement("li");
    li.innerHTML = '<span class="swatch"></span><span></span><button type="button">remove</button>';
    li.children[0].style.background = h.color;
    li.children[1].textContent = h.color + " at " + h.x + ", " + h.y;
    li.children[2].onclick = () => { state.hints.splice(i, 1); renderHints(); };
    list.appendChild(li);
  });
}

async function run() {
  if (!state.upload) return;
  const fd = new FormData();
  fd.append("id", state.upload.id);
  fd.append("model", $("model").value);
  fd.append("hints", JSON.stringify(state.hints));
  fd.append("flat", $("flat").checked ? "1" : "0");
  fd.append("restore", $("restore").checked ? "1" : "0");
  fd.append("restore_skip", [...document.querySelectorAll("input[name=skip]:checked")].map((c) => c.value).join(","));
  if ($("reference").files[0]) fd.append("reference", $("reference").files[0]);
  if ($("palette").files[0]) fd.append("palette", $("palette").files[0]);
  fd.append("transfer", $("transfer").value);
  fd.append("strength", $("strength").value);
  fd.append("colour", $("colour").value);
  fd.append("explain", $("explain").checked ? "1" : "0");
  $("run").disabled = true;
  status("Colorizing ...");
  try {
    const res = await api("/api/colorize", { method: "POST", body: fd });
    showResult(res);
    status("Done in " + res.seconds.toFixed(1) + " s with " + res.model + (res.hints.length ? ", " + res.hints.length + " hint(s)" : "") +
      (res.restore_steps.length ? ". Restoration: " + res.restore_steps.join("; ") : "") +
      (res.notes && res.notes.length ? ". Note: " + res.notes.join("; ") : "") + ".");
  } catch (e) {
    status(e.message, true);
  } finally {
    $("run").disabled = false;
  }
}

function showResult(res) {
  $("right").hidden = false;
  $("after").src = res.preview;
  $("before").src = res.input_preview;
  const a = $("download");
  a.href = res.result;
  a.setAttribute("download", res.download_name);
  a.dataset.ready = "1";
  $("result-info").textContent = res.width + " x " + res.height + " px";
  setSlider();
  const ex = $("explain-view");
  ex.innerHTML = "";
  ex.hidden = !res.explain;
  if (res.explain) {
    if (res.explain.available) {
      const link = document.createElement("a");
      link.href = res.explain.index; link.target = "_blank"; link.textContent = "Open the explain view";
      ex.appendChild(link);
      const frame = document.createElement("iframe");
      frame.src = res.explain.index; frame.title = "explain view";
      ex.appendChild(frame);
    } else {
      ex.textContent = res.explain.message;
    }
  }
}

function setSlider() {
  const v = Number($("slider").value);
  $("before").style.clipPath = "inset(0 " + (100 - v) + "% 0 0)";
  $("divider").style.left = v + "%";
}

function init() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => upload(e.target.files[0]));
  ["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
  drop.addEventListener("drop", (e) => { if (e.dataTransfer.files.length) upload(e.dataTransfer.files[0]); });
  $("input-img").addEventListener("click", addHint);
  $("clear-hints").addEventListener("click", () => { state.hints = []; renderHints(); });
  $("run").addEventListener("click", run);
  $("slider").addEventListener("input", setSlider);
  $("model").addEventListener("change", updateModelNote);
  $("strength").addEventListener("input", () => { $("strength-out").textContent = $("strength").value; });
  $("colour").addEventListener("input", () => { $("colour-out").textContent = $("colour").value; });
  loadModels().catch((e) => status(e.message, true));
}

document.addEventListener("DOMContentLoaded", init);
