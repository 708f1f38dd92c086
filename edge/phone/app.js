// The phone page: the board's bundle, downloaded once and checked, answered on this phone's CPU
// with its camera (a stream where the page is a secure context, else a photo), shapes drawn as they
// decode. Tasks and text come from the address (/app/?tasks=CAPTION,OD&text=...), so a link opens
// it ready.

import { loadBundle } from "./bundle.js";
import { Florence2 } from "./model.js";
import { openPolygonChunk, parse } from "./postprocess.js";
import { normalizeTask } from "./prompts.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
// The smallest module with a SIMD instruction: LiteRT.js's WebAssembly needs SIMD.
const SIMD = Uint8Array.of(0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0,
  253, 15, 253, 98, 11);
let model = null;
let busy = false;

function say(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

function tasks() {
  return $("tasks").value.split(",").map((t) => t.trim()).filter(Boolean);
}

async function start() {
  $("tasks").value = params.get("tasks") ?? "CAPTION,OD";
  $("text").value = params.get("text") ?? "";
  if (!WebAssembly.validate(SIMD)) {
    say("this browser has no WebAssembly SIMD, which the model needs: use a current Chrome, Firefox or Safari", true);
    return;
  }
  try {
    const { manifest, files } = await loadBundle("./bundle", "", (done, total) =>
      say(`fetching the model: ${(done / 1e6).toFixed(0)} of ${(total / 1e6).toFixed(0)} MB (once; kept after)`));
    say("starting the model ...");
    model = await Florence2.load(manifest, files);
  } catch (error) {
    say(error.message, true);
    return;
  }
  $("answer").disabled = $("photo").disabled = false;
  await openCamera();
}

async function openCamera() {
  if (!navigator.mediaDevices?.getUserMedia) {
    say("ready: take a photo (a live camera needs the page over HTTPS or on this device)");
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    $("video").srcObject = stream;
    $("video").hidden = false;
    await $("video").play();
    say("ready: answer what the camera sees");
  } catch (error) {
    const refused = error.name === "NotAllowedError";
    say(refused ? "the camera was refused: allow it in this site's settings, or take a photo"
      : `no camera (${error.name}): take a photo`, refused);
  }
}

// The picture on `source` (a video or an image) as RGBA bytes, and drawn where answers go.
function grab(source, width, height) {
  const canvas = $("picture");
  [canvas.width, canvas.height] = [width, height];
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(source, 0, 0, width, height);
  if ($("video").hidden) canvas.hidden = false;
  return context.getImageData(0, 0, width, height).data;
}

async function answer(source, width, height) {
  if (busy || !model) return;
  busy = true;
  const begun = performance.now();
  try {
    const rgba = grab(source, width, height);
    const encoded = await model.encode(rgba, width, height);
    const overlay = $("overlay");
    [overlay.width, overlay.height] = [width, height];
    const answered = []; // the parsed answers of the tasks done so far
    const redraw = (...answers) => {
      overlay.getContext("2d").clearRect(0, 0, width, height);
      [...answered, ...answers].forEach((parsed, i) => draw(overlay, parsed, i * 3));
    };
    redraw();
    $("answers").replaceChildren();
    for (const task of tasks()) {
      const line = document.createElement("p");
      line.dataset.task = task.toUpperCase();
      line.innerHTML = `<b></b> `;
      line.firstChild.textContent = task;
      $("answers").append(line);
      const text = $("text").value.trim() || undefined;
      let sofar = "";
      for await (const event of model.stream(encoded, task, { text, numBeams: 1 })) {
        if (event.text) {
          line.append(event.text);
          sofar += event.text;
          redraw(settled(task, sofar, encoded.size));
        }
        if (event.result) {
          line.replaceChildren(line.firstChild, ` ${describe(event.result.parsed)}`);
          answered.push(event.result.parsed);
          redraw();
        }
      }
    }
    say(`answered in ${(performance.now() - begun).toFixed(0)} ms on this phone`);
  } catch (error) {
    say(error.message, true);
  } finally {
    busy = false;
  }
  if ($("continuous").checked && !$("video").hidden) requestAnimationFrame(fromCamera);
}

// What of a task's answer so far is settled, parsed: a box once its four <loc_N> are out; a polygon
// chunk that reaches the end of the text waits (a later <poly> may still drop it), as `live` draws.
function settled(task, text, size) {
  const key = normalizeTask(task);
  const kind = model.manifest.tasks[key]?.post_processing;
  if (!kind || kind === "pure_text") return {};
  const polygons = ["polygons", "description_with_polygons", "description_with_bboxes_or_polygons"].includes(kind);
  const done = polygons ? openPolygonChunk(text, kind === "polygons") ?? text : text;
  return parse(done, key, kind, size, model.manifest.post_processing);
}

function describe(parsed) {
  const answer = Object.values(parsed)[0];
  if (typeof answer === "string") return answer;
  const labels = answer.labels ?? answer.bboxes_labels ?? [];
  return labels.length ? labels.join(", ") : "(nothing found)";
}

// Boxes, quads and polygons of an answer, in the picture's pixels, drawn as the web view draws
// them: a dark edge under a coloured line, polygons filled faintly, labels on coloured plates.
const COLOURS = ["#e6194b", "#3cb44b", "#0082c8", "#f58230", "#911eb4", "#46f0f0", "#f032e6", "#d2f53c"];

function draw(canvas, parsed, firstColour = 0) {
  const answer = Object.values(parsed)[0];
  if (!answer || typeof answer === "string") return;
  const pen = canvas.getContext("2d");
  const unit = Math.max(1, canvas.width / 400);
  const boxLabels = answer.bboxes_labels ?? answer.labels ?? [];
  const polygonLabels = answer.polygons_labels ?? answer.labels ?? [];
  const shapes = [ // [points, filled, label]
    ...(answer.bboxes ?? []).map(([x1, y1, x2, y2], i) => [[x1, y1, x2, y1, x2, y2, x1, y2], false, boxLabels[i]]),
    ...(answer.quad_boxes ?? []).map((quad, i) => [quad, false, answer.labels[i]]),
    ...(answer.polygons ?? []).flatMap((instance, i) => instance.map((points, k) =>
      [points, true, k ? "" : polygonLabels[i]]))];
  pen.font = `${13 * unit}px sans-serif`;
  shapes.forEach(([points, filled, label], i) => {
    const colour = COLOURS[(firstColour + i) % COLOURS.length];
    pen.beginPath();
    for (let p = 0; p < points.length; p += 2) pen.lineTo(points[p], points[p + 1]);
    pen.closePath();
    pen.lineWidth = 4 * unit;
    pen.strokeStyle = "#000";
    pen.stroke();
    pen.lineWidth = 2 * unit;
    pen.strokeStyle = colour;
    pen.stroke();
    if (filled) {
      pen.globalAlpha = 0.3;
      pen.fillStyle = colour;
      pen.fill();
      pen.globalAlpha = 1;
    }
    if (!label) return;
    const x = Math.min(...points.filter((_, k) => k % 2 === 0));
    const y = Math.min(...points.filter((_, k) => k % 2 === 1));
    pen.fillStyle = colour;
    pen.fillRect(x, Math.max(0, y - 17 * unit), pen.measureText(label).width + 6 * unit, 17 * unit);
    pen.fillStyle = "#fff";
    pen.fillText(label, x + 3 * unit, Math.max(13 * unit, y - 4 * unit));
  });
}

function fromCamera() {
  const video = $("video");
  answer(video, video.videoWidth, video.videoHeight);
}

$("answer").addEventListener("click", () => ($("video").hidden ? $("photo").click() : fromCamera()));
$("photo").addEventListener("change", async () => {
  const file = $("photo").files[0];
  if (!file) return;
  const image = await createImageBitmap(file, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  answer(image, image.width, image.height);
});
start();
