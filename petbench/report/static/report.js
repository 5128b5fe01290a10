// petbench report: sortable tables, the strip plots' links and the image viewer. Plain JS, no library,
// nothing fetched: the volumes are in the page (8-bit, zlib-deflated, base64; see petbench/report/volumes.py).
"use strict";

// -- sortable tables ------------------------------------------------------------------------------
function sortTable(table, column) {
  const head = table.tHead.rows[0].cells[column];
  const ascending = head.getAttribute("aria-sort") !== "ascending";
  for (const cell of table.tHead.rows[0].cells) cell.removeAttribute("aria-sort");
  head.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const key = (row) => {
    const cell = row.cells[column];
    const raw = cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent;
    const value = parseFloat(raw);
    return raw !== "" && !isNaN(value) && /^-?[0-9.eE+-]+$/.test(raw.trim()) ? value : raw.toLowerCase();
  };
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    const missing = (v) => v === "" || v === "–";
    if (missing(x) !== missing(y)) return missing(x) ? 1 : -1;  // empty cells last either way
    const order = typeof x === typeof y ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === "number" ? -1 : 1);
    return ascending ? order : -order;
  });
  for (const row of rows) body.appendChild(row);
}

function setUpTables() {
  for (const table of document.querySelectorAll("table.sortable")) {
    Array.from(table.tHead.rows[0].cells).forEach((cell, column) => {
      cell.tabIndex = 0;
      cell.title = "sort by this column";
      cell.addEventListener("click", () => sortTable(table, column));
      cell.addEventListener("keydown", (e) => { if (e.key === "Enter") sortTable(table, column); });
    });
  }
}

// -- image viewer ---------------------------------------------------------------------------------
const viewer = { data: null, subject: null, volumes: {}, state: {}, lut: null };

async function inflate(base64) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function el(id) { return document.getElementById(id); }

async function showSubject(id) {
  const subject = viewer.data.subjects.find((s) => s.id === id);
  const note = el("viewer-note");
  if (!subject) {
    note.textContent = `Subject ${id}: its images are not in this page (it holds ` +
      `${viewer.data.subjects.map((s) => s.id).join(", ") || "none"}); rebuild with --image-subjects ${id}.`;
    return false;
  }
  note.textContent = "";
  viewer.subject = subject;
  el("subject-select").value = id;
  viewer.volumes = {};
  for (const column of subject.columns) viewer.volumes[column.title] = await inflate(column.data);
  const [depth, height, width] = subject.shape;
  const s = viewer.state;
  s.z = Math.floor(depth / 2); s.y = Math.floor(height / 2); s.x = Math.floor(width / 2);
  if (subject.start) [s.z, s.y, s.x] = subject.start;
  s.zoom = parseInt(el("zoom").value, 10) || 1;
  s.lo = subject.window[0]; s.hi = subject.window[1];
  for (const [name, max] of [["z", depth - 1], ["y", height - 1], ["x", width - 1]]) {
    el(`slice-${name}`).max = max;
  }
  const scale = subject.scale;
  for (const name of ["window-lo", "window-hi", "error-hi"]) {
    el(name).max = scale; el(name).step = scale / 255;
  }
  el("window-lo").value = s.lo; el("window-hi").value = s.hi; el("error-hi").value = s.hi / 2;
  const lesions = el("lesion-select");
  lesions.innerHTML = "";
  lesions.disabled = subject.lesions.length === 0;
  const first = document.createElement("option");
  first.textContent = subject.lesions.length ? "jump to a lesion…" : "no known lesions";
  first.value = "";
  lesions.appendChild(first);
  subject.lesions.forEach((lesion, index) => {
    const option = document.createElement("option");
    option.value = String(index);
    option.textContent = `${lesion.name} (z ${lesion.z}, y ${lesion.y}, x ${lesion.x})`;
    lesions.appendChild(option);
  });
  buildGrid(subject);
  render();
  return true;
}

const VIEWS = ["axial", "coronal", "sagittal", "mip"];
const VIEW_TITLES = { axial: "axial", coronal: "coronal", sagittal: "sagittal", mip: "coronal MIP", error: "|error| vs SPET" };

function buildGrid(subject) {
  const grid = el("viewer-grid");
  grid.innerHTML = "";
  grid.style.gridTemplateColumns = `auto repeat(${subject.columns.length}, 152px)`;
  grid.appendChild(document.createElement("div"));
  for (const column of subject.columns) {
    const head = document.createElement("div");
    head.className = "column-title";
    head.textContent = column.title;
    head.title = column.run ? `run ${column.run}` : "from the dataset";
    grid.appendChild(head);
  }
  const hasSpet = subject.columns.some((c) => c.title === "SPET");
  for (const view of VIEWS.concat(hasSpet ? ["error"] : [])) {
    const label = document.createElement("div");
    label.className = "row-title";
    label.textContent = VIEW_TITLES[view];
    grid.appendChild(label);
    for (const column of subject.columns) {
      const canvas = document.createElement("canvas");
      canvas.dataset.view = view;
      canvas.dataset.column = column.title;
      canvas.className = "view";
      if (view === "error" && column.title === "SPET") {
        const cell = document.createElement("div");
        cell.className = "reference";
        cell.textContent = "reference";
        grid.appendChild(cell);
        continue;
      }
      canvas.addEventListener("click", (e) => pick(view, canvas, e));
      grid.appendChild(canvas);
    }
  }
}

// a click on a view moves the other two planes (and the zoom centre) to that point
function pick(view, canvas, event) {
  const [depth, height, width] = viewer.subject.shape;
  const s = viewer.state;
  const rect = canvas.getBoundingClientRect();
  const u = (event.clientX - rect.left) / rect.width, v = (event.clientY - rect.top) / rect.height;
  const box = zoomBox(view);
  const col = Math.floor(box.x0 + u * box.w), row = Math.floor(box.y0 + v * box.h);
  if (view === "axial" || view === "error") { s.x = col; s.y = row; }
  else if (view === "coronal" || view === "mip") { s.x = col; s.z = depth - 1 - row; }
  else if (view === "sagittal") { s.y = col; s.z = depth - 1 - row; }
  s.x = Math.max(0, Math.min(width - 1, s.x)); s.y = Math.max(0, Math.min(height - 1, s.y));
  s.z = Math.max(0, Math.min(depth - 1, s.z));
  render();
}

function planeSize(view) {
  const [depth, height, width] = viewer.subject.shape;
  if (view === "axial" || view === "error") return [width, height];
  if (view === "sagittal") return [height, depth];
  return [width, depth];
}

// the part of a view shown at the current zoom, centred on the current point
function zoomBox(view) {
  const s = viewer.state, [depth] = viewer.subject.shape;
  const [w, h] = planeSize(view);
  const centre = view === "axial" || view === "error" ? [s.x, s.y] : view === "sagittal" ? [s.y, depth - 1 - s.z]
    : [s.x, depth - 1 - s.z];
  const bw = w / s.zoom, bh = h / s.zoom;
  const x0 = Math.max(0, Math.min(w - bw, centre[0] + 0.5 - bw / 2));
  const y0 = Math.max(0, Math.min(h - bh, centre[1] + 0.5 - bh / 2));
  return { x0, y0, w: bw, h: bh };
}

function plane(volume, view) {
  const [depth, height, width] = viewer.subject.shape;
  const s = viewer.state;
  const [w, h] = planeSize(view);
  const out = new Uint8Array(w * h);
  if (view === "axial") {
    out.set(volume.subarray(s.z * height * width, (s.z + 1) * height * width));
  } else if (view === "coronal") {
    for (let z = 0; z < depth; z++) for (let x = 0; x < width; x++)
      out[(depth - 1 - z) * w + x] = volume[(z * height + s.y) * width + x];
  } else if (view === "sagittal") {
    for (let z = 0; z < depth; z++) for (let y = 0; y < height; y++)
      out[(depth - 1 - z) * w + y] = volume[(z * height + y) * width + s.x];
  } else if (view === "mip") {
    for (let z = 0; z < depth; z++) for (let x = 0; x < width; x++) {
      let best = 0;
      for (let y = 0; y < height; y++) best = Math.max(best, volume[(z * height + y) * width + x]);
      out[(depth - 1 - z) * w + x] = best;
    }
  }
  return out;
}

function draw(canvas, values, view, lo, hi, colours) {
  const [w, h] = planeSize(view);
  const scale = viewer.subject.scale / 255;
  const source = document.createElement("canvas");
  source.width = w; source.height = h;
  const context = source.getContext("2d");
  const image = context.createImageData(w, h);
  for (let i = 0; i < values.length; i++) {
    const t = Math.max(0, Math.min(1, (values[i] * scale - lo) / Math.max(hi - lo, 1e-12)));
    const [r, g, b] = colours(t);
    image.data[4 * i] = r; image.data[4 * i + 1] = g; image.data[4 * i + 2] = b; image.data[4 * i + 3] = 255;
  }
  context.putImageData(image, 0, 0);
  const box = zoomBox(view);
  const size = 150;
  canvas.width = size; canvas.height = Math.round(size * h / w);
  const target = canvas.getContext("2d");
  target.imageSmoothingEnabled = false;
  target.drawImage(source, box.x0, box.y0, box.w, box.h, 0, 0, canvas.width, canvas.height);
  // where the other planes cross this one
  const s = viewer.state, [depth] = viewer.subject.shape;
  const cross = view === "axial" || view === "error" ? [s.x, s.y] : view === "sagittal" ? [s.y, depth - 1 - s.z]
    : view === "coronal" ? [s.x, depth - 1 - s.z] : null;
  if (cross) {
    const cx = (cross[0] + 0.5 - box.x0) / box.w * canvas.width, cy = (cross[1] + 0.5 - box.y0) / box.h * canvas.height;
    target.strokeStyle = "rgba(220, 40, 40, 0.7)";
    target.lineWidth = 1;
    target.beginPath();
    target.moveTo(cx - 6, cy); target.lineTo(cx - 2, cy); target.moveTo(cx + 2, cy); target.lineTo(cx + 6, cy);
    target.moveTo(cx, cy - 6); target.lineTo(cx, cy - 2); target.moveTo(cx, cy + 2); target.lineTo(cx, cy + 6);
    target.stroke();
  }
}

const greyInverted = (t) => { const v = Math.round(255 * (1 - t)); return [v, v, v]; };
function errorColours(t) {
  const lut = viewer.data.error_lut, i = Math.round(t * (lut.length - 1));
  return lut[i];
}

function render() {
  const subject = viewer.subject, s = viewer.state;
  if (!subject) return;
  el("slice-z").value = s.z; el("slice-y").value = s.y; el("slice-x").value = s.x;
  const [depth, height, width] = subject.shape;
  el("slice-z-label").textContent = `${s.z} / ${depth - 1}`;
  el("slice-y-label").textContent = `${s.y} / ${height - 1}`;
  el("slice-x-label").textContent = `${s.x} / ${width - 1}`;
  const units = subject.units ? ` ${subject.units}` : "";
  el("window-label").textContent = `${s.lo.toPrecision(3)} – ${s.hi.toPrecision(3)}${units}`;
  const errorHi = parseFloat(el("error-hi").value);
  el("error-label").textContent = `0 – ${errorHi.toPrecision(3)}${units}`;
  const spet = viewer.volumes["SPET"];
  const spetPlane = spet ? plane(spet, "axial") : null;
  for (const canvas of document.querySelectorAll("#viewer-grid canvas.view")) {
    const view = canvas.dataset.view, volume = viewer.volumes[canvas.dataset.column];
    if (view === "error") {
      const mine = plane(volume, "axial");
      const diff = new Uint8Array(mine.length);
      for (let i = 0; i < mine.length; i++) diff[i] = Math.abs(mine[i] - spetPlane[i]);
      draw(canvas, diff, "axial", 0, errorHi, errorColours);
    } else {
      draw(canvas, plane(volume, view), view, s.lo, s.hi, greyInverted);
    }
  }
  el("viewer").dataset.slice = String(s.z);
}

function setUpViewer() {
  const source = el("petbench-volumes");
  if (!source) return;
  viewer.data = JSON.parse(source.textContent);
  if (!viewer.data.subjects.length) return;
  const select = el("subject-select");
  for (const subject of viewer.data.subjects) {
    const option = document.createElement("option");
    option.value = subject.id; option.textContent = subject.id;
    select.appendChild(option);
  }
  select.addEventListener("change", () => showSubject(select.value));
  for (const name of ["z", "y", "x"]) {
    el(`slice-${name}`).addEventListener("input", (e) => { viewer.state[name] = parseInt(e.target.value, 10); render(); });
  }
  el("window-lo").addEventListener("input", (e) => { viewer.state.lo = parseFloat(e.target.value); render(); });
  el("window-hi").addEventListener("input", (e) => { viewer.state.hi = parseFloat(e.target.value); render(); });
  el("error-hi").addEventListener("input", render);
  el("zoom").addEventListener("change", (e) => { viewer.state.zoom = parseInt(e.target.value, 10); render(); });
  el("lesion-select").addEventListener("change", (e) => {
    if (e.target.value === "") return;
    const lesion = viewer.subject.lesions[parseInt(e.target.value, 10)];
    Object.assign(viewer.state, { z: lesion.z, y: lesion.y, x: lesion.x, zoom: 4 });
    el("zoom").value = "4";
    render();
  });
  showSubject(viewer.data.subjects[0].id).then(() => { el("viewer").dataset.ready = "1"; });
}

function setUpPoints() {
  for (const point of document.querySelectorAll("circle.point")) {
    const open = () => {
      if (!viewer.data) return;
      showSubject(point.dataset.subject).then((shown) => { if (shown) el("images").scrollIntoView(); });
    };
    point.addEventListener("click", open);
    point.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setUpTables();
  setUpViewer();
  setUpPoints();
});
