// Drop or choose a photo -> POST /api/classify -> draw each face box with its label; a face the
// model does not know is said so plainly ("not one of the N people this model knows" / "not sure"),
// never with a percentage. GET /api/model says who the model knows (readable names).
(function () {
  "use strict";
  const drop = document.getElementById("drop");
  const chooser = document.getElementById("file");
  const statusEl = document.getElementById("status");
  const answerEl = document.getElementById("answer");
  const result = document.getElementById("result");
  const photo = document.getElementById("photo");
  const boxes = document.getElementById("boxes");
  const caption = document.getElementById("caption");
  const facesList = document.getElementById("faces");
  const detailEl = document.getElementById("detail");
  const knownEl = document.getElementById("known");
  let people = [];          // [{label, name}] the model knows
  let collection = false;   // served with a face collection (--db): faces come with photos of their person
  const names = {};         // label -> readable name
  let current = 0;          // only the latest photo's answer is shown
  let objectUrl = null;

  function setStatus(text, kind) {
    statusEl.textContent = text;
    statusEl.className = "status" + (kind ? " " + kind : "");
    document.body.dataset.state = kind || "";
  }

  // A probability among the known people, in whole percent; never "100%" (rounding would claim certainty).
  function pct(p) { if (p == null) return ""; return p >= 0.995 ? ">99%" : (100 * p).toFixed(0) + "%"; }
  function nameOf(label) {
    return names[label] || String(label).replace(/[_-]+/g, " ").replace(/\b\w/g, (c) => c.toUpperCase());
  }
  function nobody() {
    if (collection) return "not anyone in this collection";
    return people.length ? "not one of the " + people.length + " people this model knows" : "not someone this model knows";
  }
  // "about 1 in 300 strangers come this close": what the face's stranger_rate means.
  function strangerText(rate) {
    if (rate == null) return "";
    return rate <= 0.001 ? "fewer than 1 in 1,000 strangers come this close"
      : "about 1 in " + Math.max(1, Math.round(1 / rate)).toLocaleString("en") + " strangers come this close";
  }

  fetch("/api/model").then((r) => (r.ok ? r.json() : null)).then((m) => {
    if (!m || !m.people) return;
    people = m.people;
    collection = !!m.collection;
    people.forEach((p) => { names[p.label] = p.name; });
    knownEl.textContent = (collection ? "This collection has " + people.length + " named people" : "This model knows "
      + people.length + " people") + (people.length ? ": " + people.map((p) => p.name).join(", ") : "") + ".";
  }, () => {});

  function showPhoto(file) {
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = URL.createObjectURL(file);
    boxes.replaceChildren();
    facesList.replaceChildren();
    answerEl.hidden = true;
    detailEl.hidden = true;
    answerEl.dataset.label = "";
    caption.textContent = file.name;
    photo.src = objectUrl;
    result.hidden = false;
    // Resolves once the browser has the size (boxes need it); undecodable formats just skip boxes.
    return photo.decode().then(() => true, () => { result.hidden = true; return false; });
  }

  function drawBoxes(faces, answer) {
    const W = photo.naturalWidth, H = photo.naturalHeight;
    // The face that gave the overall answer is drawn in green (the model decides which one it is).
    const main = answer == null ? -1 : faces.findIndex((f) => f.label === answer);
    faces.forEach((face, i) => {
      const [x, y, w, h] = face.box;
      const div = document.createElement("div");
      div.className = "box" + (i === main ? " main" : "");
      div.style.left = (100 * x / W) + "%";
      div.style.top = (100 * y / H) + "%";
      div.style.width = (100 * w / W) + "%";
      div.style.height = (100 * h / H) + "%";
      div.dataset.label = face.label == null ? "" : face.label;
      div.dataset.face = String(i + 1);
      boxes.appendChild(div);
      const tag = document.createElement("span");
      tag.className = "tag" + (i === main ? " main" : "");
      tag.dataset.face = String(i + 1);
      tag.dataset.text = (faces.length > 1 ? (i + 1) + " " : "") + shortText(face);
      boxes.appendChild(tag);
    });
    placeTags();
  }

  // Labels are placed in displayed pixels, inside the photo and never over one another: above the
  // box, else below it, else inside its top, else the free spot nearest the box. When none is free
  // (a small photo crowded with faces), the label shrinks to the face's number (the list below
  // the photo says who it is).
  function placeTags() {
    const Wd = boxes.clientWidth, Hd = boxes.clientHeight;
    const placed = [];
    const overlaps = (r) => placed.some((q) => r.x < q.x + q.w && q.x < r.x + r.w && r.y < q.y + q.h && q.y < r.y + r.h);
    const fits = (r) => r.x >= 0 && r.y >= 0 && r.x + r.w <= Wd && r.y + r.h <= Hd && !overlaps(r);
    function spot(tag, bx, by, bh) {
      // Measured at the left edge, then fixed: placed near the right edge it would wrap and grow.
      tag.style.width = "";
      tag.style.whiteSpace = "nowrap";  // its natural one-line width
      tag.style.left = "0px"; tag.style.top = "0px";
      const w = Math.min(Math.ceil(tag.getBoundingClientRect().width), Wd);
      tag.style.whiteSpace = "";
      tag.style.width = w + "px";
      const h = tag.offsetHeight;
      const x = Math.max(0, Math.min(bx, Wd - w));
      const first = [by - h, by + bh, by].map((y) => ({ x: x, y: y, w: w, h: h })).find(fits);
      if (first) return first;
      let best = null, bestCost = Infinity;
      for (let yy = 0; yy + h <= Hd; yy += 2) {
        for (let xx = 0; xx + w <= Wd; xx += 4) {
          const r = { x: xx, y: yy, w: w, h: h };
          const cost = Math.abs(xx - x) + Math.abs(yy - (by - h));
          if (cost < bestCost && !overlaps(r)) { best = r; bestCost = cost; }
        }
      }
      return best;
    }
    boxes.querySelectorAll(".box").forEach((box) => {
      const tag = boxes.querySelector('.tag[data-face="' + box.dataset.face + '"]');
      tag.textContent = tag.dataset.text;
      const bx = box.offsetLeft, by = box.offsetTop, bh = box.offsetHeight;
      let r = spot(tag, bx, by, bh);
      if (!r) { tag.textContent = box.dataset.face; r = spot(tag, bx, by, bh); }
      if (!r) r = { x: Math.max(0, Math.min(bx, Wd - tag.offsetWidth)), y: Math.max(0, by), w: tag.offsetWidth, h: tag.offsetHeight };
      tag.style.left = r.x + "px";
      tag.style.top = r.y + "px";
      placed.push(r);
    });
  }
  // Boxes are in % of the photo, labels in pixels: place them again whenever the photo's size
  // changes (window resize, a scroll bar appearing, the layout settling after decoding).
  if (window.ResizeObserver) new ResizeObserver(() => { if (!result.hidden) placeTags(); }).observe(boxes);
  else window.addEventListener("resize", () => { if (!result.hidden) placeTags(); });

  function known(face) { return face.label != null && face.label !== "unknown"; }
  // On the photo: the name and its percentage, or plainly that the model does not know the face.
  function shortText(face) {
    if (known(face)) return (nameOf(face.label) + " " + pct(face.probability)).trim();
    return face.verdict === "unsure" ? "not sure" : "not known";
  }
  // In the list: what the numbers mean. An unknown face carries no percentage (the model's guess
  // among its people says nothing about whether the face is one of them).
  function longText(face) {
    if (known(face)) {
      const close = strangerText(face.stranger_rate);
      if (face.probability == null) return nameOf(face.label) + (close ? " (" + close + ")" : "");
      return nameOf(face.label) + " (" + pct(face.probability) + " among the people it knows"
        + (close ? "; " + close : "") + ")";
    }
    if (face.verdict === "unsure") return "not sure: close to one of the people it knows, but not close enough to name";
    return nobody();
  }

  function render(data, canDraw) {
    const faces = data.faces || [];
    if (faces.length === 0) {
      setStatus("No face found in this photo. Try one where a face is clearly visible.", "noface");
      return;
    }
    if (canDraw) drawBoxes(faces, data.label);
    faces.forEach((face) => {
      const li = document.createElement("li");
      li.textContent = longText(face);
      if (face.photos) li.appendChild(strip(face));
      facesList.appendChild(li);
    });
    answerEl.hidden = false;
    detailEl.hidden = false;
    if (data.label == null) {
      const unsure = faces.some((f) => f.verdict === "unsure");
      answerEl.textContent = unsure ? "Not sure who this is." : "Not one of the " + (people.length || "")
        + (people.length ? " " : "") + "people this model knows.";
      detailEl.textContent = unsure ? "A face is close to someone it knows, but not close enough to name."
        : "No face here is close enough to anyone it knows.";
      answerEl.className = "answer unknown";
      answerEl.dataset.label = "";
    } else {
      const face = faces.find((f) => f.label === data.label);
      answerEl.textContent = nameOf(data.label);
      detailEl.textContent = face && face.stranger_rate != null ? "A close match: " + strangerText(face.stranger_rate) + "." : "";
      answerEl.className = "answer";
      answerEl.dataset.label = data.label;
    }
    const n = faces.length;
    setStatus(n === 1 ? "1 face found." : n + " faces found.", "done");
  }

  // The other photos of the face's person in the collection (or its nearest faces' photos), by id:
  // thumbnails the server makes from the originals.
  function strip(face) {
    const div = document.createElement("div");
    div.className = "strip";
    const title = document.createElement("p");
    title.className = "strip-title";
    const who = face.collection ? face.collection.person : face.person;
    title.textContent = face.photos.length === 0 ? "No other photo in the collection."
      : who != null ? "Other photos of this person in the collection:" : "The nearest faces in the collection:";
    div.appendChild(title);
    face.photos.forEach((p) => {
      const img = document.createElement("img");
      img.src = "/api/photo/" + encodeURIComponent(p.id) + "/thumb";
      img.alt = p.source;
      img.title = p.source;
      img.loading = "lazy";
      img.dataset.photo = String(p.id);
      div.appendChild(img);
    });
    return div;
  }

  async function classify(file) {
    const id = ++current;
    setStatus("Looking at " + file.name + "…", "busy");
    const shown = showPhoto(file);
    const form = new FormData();
    form.append("file", file, file.name);
    let data, ok;
    try {
      const response = await fetch("/api/classify", { method: "POST", body: form });
      ok = response.ok;
      try { data = await response.json(); } catch (e) { data = { error: "HTTP " + response.status }; }
    } catch (e) {
      ok = false;
      data = { error: "the server could not be reached (" + e.message + ")" };
    }
    const canDraw = await shown;
    if (id !== current) return;  // a newer photo was sent meanwhile
    if (!ok) {
      setStatus("Error: " + (data.error || "unknown error"), "error");
      return;
    }
    render(data, canDraw);
  }

  function firstFile(list) {
    if (!list || list.length === 0) { setStatus("Error: that was not a file.", "error"); return null; }
    return list[0];
  }

  drop.addEventListener("dragenter", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); e.dataTransfer.dropEffect = "copy"; });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const file = firstFile(e.dataTransfer && e.dataTransfer.files);
    if (file) classify(file);
  });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") chooser.click(); });
  // A click anywhere in the zone opens the chooser (the label already does it by itself).
  drop.addEventListener("click", (e) => { if (!e.target.closest("label, input")) chooser.click(); });
  // A photo pasted from the clipboard is sent like a dropped one.
  window.addEventListener("paste", (e) => {
    const files = e.clipboardData && e.clipboardData.files;
    if (files && files.length) classify(files[0]);
  });
  chooser.addEventListener("change", () => {
    const file = firstFile(chooser.files);
    if (file) classify(file);
    chooser.value = "";  // choosing the same file again still fires "change"
  });
  // A photo dropped beside the zone must not make the browser navigate away from the page.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
  setStatus("Drop a photo to start.", "");
})();
