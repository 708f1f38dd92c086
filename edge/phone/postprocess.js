// Generated text -> structured results, as edge/postprocess.py (and transformers' Florence-2
// processor) parse it: the same regular expressions, whitespace and truncation rules, so an answer
// is the same whichever side parsed it. Python's `.` is "not a newline" and its \s and strip() are
// str.isspace(), which JavaScript's own differ from: both are spelled out here.

const BINS = 1000;
export const KINDS = ["pure_text", "ocr", "description_with_bboxes", "bboxes", "phrase_grounding", "polygons",
  "description_with_polygons", "description_with_bboxes_or_polygons"];
const SPACE = "\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const DOT = "[^\\n]";
const LOC = "<loc_([0-9]+)>";
const ANY_LOC = "<loc_[0-9]+>";
const STOPS = "<od>|</od>|<box>|</box>|<bbox>|</bbox>|<loc_";
const LABEL = new RegExp(`^[${SPACE}]*(${DOT}*?)(?=${STOPS})`, "u");
const POLY_LABEL = new RegExp(`^[${SPACE}]*(${DOT}*?)(?=${STOPS}|<poly>)`, "u");
const BOX = new RegExp(LOC.repeat(4), "gu");
const POLY_TOKEN = `(?:${ANY_LOC}|<sep>|<poly>|</poly>)`;

const strip = (text) => text.replace(new RegExp(`^[${SPACE}]+|[${SPACE}]+$`, "gu"), "");
const clean = (text) => text.replaceAll("<s>", "").replaceAll("</s>", "").replaceAll("<pad>", "");
const ascii = (text) => text.replace(/[^\x00-\x7f]/gu, "");
const all = (pattern, text) => [...text.matchAll(new RegExp(pattern, "gu"))];

// Bins (x, y, x, y, ...) -> pixels of a (width, height) picture: int((bin + 0.5) * size / 1000) in
// float32, as the reference computes it, so the truncation lands the same.
export function dequantize(bins, [width, height]) {
  const scale = [Math.fround(width / BINS), Math.fround(height / BINS)];
  return bins.map((b, i) => Math.trunc(Math.fround(Math.fround(b + 0.5) * scale[i % 2])));
}

function label(regex, chunk) {
  const match = regex.exec(chunk);
  return match ? strip(match[0]) : null;
}

export const pureText = (text) => strip(text.replaceAll("<s>", "").replaceAll("</s>", ""));

function ocr(text, size, pattern, areaThreshold = 0) {
  const quads = [];
  const labels = [];
  for (const [, content, ...bins] of all(pattern ?? `(${DOT}+?)${LOC.repeat(8)}`, clean(text))) {
    const quad = dequantize(bins.map(Number), size);
    if (areaThreshold > 0 && quadArea(quad) < size[0] * size[1] * areaThreshold) continue;
    quads.push(quad);
    labels.push(strip(content));
  }
  return { quad_boxes: quads, labels };
}

// The reference's shoelace sum over the first three edges, kept as it is.
function quadArea(quad) {
  let sum = 0;
  for (let i = 0; i < 3; i++) sum += quad[2 * i] * quad[2 * i + 3] - quad[2 * i + 2] * quad[2 * i + 1];
  return 0.5 * Math.abs(sum);
}

const boxedChunks = (text, allowEmpty) => all(`${allowEmpty ? "" : "[^<]+"}(?:${ANY_LOC}){4,}`, clean(text))
  .map((m) => m[0]);

function boxes(text, size, { allowEmpty = false, banned = new Set() } = {}) {
  const bboxes = [];
  const labels = [];
  for (let chunk of boxedChunks(text, allowEmpty)) {
    chunk = chunk.replace("<ground>", "").replace("<obj>", "");
    const name = chunk || allowEmpty ? label(LABEL, chunk) : null;
    if (name === null || banned.has(name)) continue;
    for (const match of chunk.matchAll(BOX)) {
      bboxes.push(dequantize(match.slice(1).map(Number), size));
      labels.push(ascii(name));
    }
  }
  return { bboxes, labels };
}

const polygonChunks = (allowEmpty) => `${allowEmpty ? "" : "[^<]+"}${POLY_TOKEN}{4,}`;

// `text` (cleaned) up to its last polygon chunk if that chunk reaches the end, else null: such a
// chunk is not settled (a later <poly> can still drop runs of it).
export function openPolygonChunk(text, allowEmpty) {
  const cleaned = clean(text);
  const chunks = all(polygonChunks(allowEmpty), cleaned);
  const last = chunks.at(-1);
  return last && last.index + last[0].length === cleaned.length ? cleaned.slice(0, last.index) : null;
}

function polygonInstances(text, size, allowEmpty) {
  const instances = [];
  for (const [chunk] of all(polygonChunks(allowEmpty), clean(text))) {
    const stripped = chunk.replace(new RegExp(`^${ANY_LOC}`, "u"), "");
    if (!stripped && !allowEmpty) continue;
    const name = label(POLY_LABEL, stripped);
    if (name === null) continue;
    const parts = chunk.includes("<poly>") && chunk.includes("</poly>")
      ? all(`<poly>(${DOT}*?)</poly>`, chunk).map((m) => m[1]) : [chunk];
    for (const part of parts) {
      const runs = all(`((?:${ANY_LOC})+)(?:<sep>|$)`, part).map((m) => m[1]);
      if (!runs.length) continue;
      const polygons = runs.map((run) => {
        const bins = all(LOC, run).map((m) => Number(m[1]));
        return dequantize(bins.slice(0, bins.length - (bins.length % 2)), size);
      });
      instances.push([name, polygons]);
    }
  }
  return instances;
}

function polygons(text, size, allowEmpty = true) {
  const found = polygonInstances(text, size, allowEmpty);
  return { polygons: found.map(([, p]) => p), labels: found.map(([name]) => name) };
}

function boxesOrPolygons(text, size) {
  if (text.includes("<poly>")) {
    const found = polygonInstances(text, size, false);
    return { bboxes: [], bboxes_labels: [], polygons: found.map(([, p]) => p),
      polygons_labels: found.map(([name]) => name) };
  }
  const found = boxes(text, size);
  return { bboxes: found.bboxes, bboxes_labels: found.labels, polygons: [], polygons_labels: [] };
}

// {task: answer} for decoded text (special tokens kept); `kind` from the bundle's task table,
// `size` the picture's (width, height), `config` the manifest's post_processing.
export function parse(text, task, kind, size, config = {}) {
  const answers = {
    pure_text: () => pureText(text),
    // The reference reads upper-case keys, so the published lower-case ones never apply.
    ocr: () => ocr(text, size, config.ocr?.PATTERN, config.ocr?.AREA_THRESHOLD ?? 0),
    description_with_bboxes: () => boxes(text, size),
    bboxes: () => boxes(text, size, { allowEmpty: true }),
    phrase_grounding: () => boxes(text, size,
      { banned: new Set(config.phrase_grounding?.banned_grounding_tokens ?? []) }),
    polygons: () => polygons(text, size, true),
    description_with_polygons: () => polygons(text, size, false),
    description_with_bboxes_or_polygons: () => boxesOrPolygons(text, size),
  };
  if (!answers[kind]) throw new Error(`unknown post-processing type ${JSON.stringify(kind)}`);
  return { [task]: answers[kind]() };
}
