// Drop or choose a photo -> POST /api/classify -> draw each face box with its label and probability.
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
  let current = 0;          // only the latest photo's answer is shown
  let objectUrl = null;

  function setStatus(text, kind) {
    statusEl.textContent = text;
    statusEl.className = "status" + (kind ? " " + kind : "");
    document.body.dataset.state = kind || "";
  }

  function pct(p) { return (100 * p).toFixed(0) + "%"; }

  function showPhoto(file) {
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = URL.createObjectURL(file);
    boxes.replaceChildren();
    facesList.replaceChildren();
    answerEl.hidden = true;
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
      div.className = "box" + (i === main ? " main" : "") + (y < 0.08 * H ? " top" : "");
      div.style.left = (100 * x / W) + "%";
      div.style.top = (100 * y / H) + "%";
      div.style.width = (100 * w / W) + "%";
      div.style.height = (100 * h / H) + "%";
      div.dataset.label = face.label == null ? "" : face.label;
      const tag = document.createElement("span");
      tag.textContent = faceText(face, " ", "");
      div.appendChild(tag);
      boxes.appendChild(div);
    });
  }

  // An "unknown" face's probability is that of the guess the model turned down: showing it next to
  // "unknown" would read as "94% sure it is nobody".
  function faceText(face, open, close) {
    const known = face.label != null && face.label !== "unknown";
    return known ? face.label + open + pct(face.probability) + close : "unknown";
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
      li.textContent = faceText(face, " (", ")");
      facesList.appendChild(li);
    });
    answerEl.hidden = false;
    if (data.label == null) {
      answerEl.textContent = "Not sure who this is.";
      answerEl.className = "answer unknown";
      answerEl.dataset.label = "";
    } else {
      answerEl.textContent = data.label;
      answerEl.className = "answer";
      answerEl.dataset.label = data.label;
    }
    const n = faces.length;
    setStatus(n === 1 ? "1 face found." : n + " faces found.", "done");
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
