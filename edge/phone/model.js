// A bundle in the browser, as edge/model.py runs it on a board: the vision graph once per picture,
// each task's prompt through the text encoder, then the decoder one token a step over KV-cache
// buckets (smallest first), greedy or beam search, streamed, parsed. LiteRT.js runs the graphs on
// the CPU (WebAssembly with XNNPACK); inputs go by name (a graph's order is not the manifest's).

import { getGlobalLiteRt, loadAndCompile, loadLiteRt, Tensor } from "@litertjs/core";

import { beamSearch, greedy } from "./decoding.js";
import { parse } from "./postprocess.js";
import { pixelValues } from "./preprocess.js";
import { buildPrompt, normalizeTask, regionTokens } from "./prompts.js";
import { Streamer, Tokenizer } from "./tokenizer.js";

// LiteRT.js takes the build with relaxed SIMD where the browser has it, else the one without
// ("compat", what Safari runs: it has no relaxed SIMD).
const WASM = new URL("./vendor/", import.meta.url);
const MASKED = -1e9; // the additive attention bias of padding, as the converter's graphs use
const ROLES = ["vision", "encoder", "decoder"];
let runtime = null;

// `file` forces one build (e.g. "litert_wasm_compat_internal.js"); called before the first load.
export const loadRuntime = (file = "") => (runtime ??= loadLiteRt(new URL(file, WASM).href));

// A tensor's bytes in the WebAssembly heap, to write in place: a step changes one position of the
// cache, not the whole of it. `write(view)` gets a Float32Array over the tensor.
function inPlace(tensor, write) {
  const wasm = getGlobalLiteRt().liteRtWasm;
  const buffer = tensor.liteRtTensorBuffer;
  const at = buffer.lock(wasm.LiteRtTensorBufferLockMode.WRITE);
  try {
    write(new Float32Array(wasm.HEAPU8.buffer, at, buffer.packedSize() / 4));
  } finally {
    buffer.unlock();
  }
}

function zeros(details) {
  const size = details.shape.reduce((a, b) => a * b, 1);
  return new Tensor(details.dtype === "int32" ? new Int32Array(size) : new Float32Array(size), details.shape);
}

// One decoder signature (batch, cache size) as a stepper: its self-attention cache kept in tensors
// of its own, K stored transposed ([batch, heads, head_dim, position]) as the graph takes it. The
// graph holds such tensors flat; their real shapes come from the manifest (`spec`).
class DecoderSession {
  constructor(graph, name, spec, layers) {
    this.graph = graph;
    this.name = name;
    this.details = Object.fromEntries(graph.signatures[name].getInputDetails().map((d) => [d.name, d]));
    this.layers = layers;
    [this.batch, this.heads, this.headDim, this.size] = spec.inputs.self_k_0.shape;
    this.cache = {};
    for (let i = 0; i < layers; i++) {
      for (const kind of ["k", "v"]) this.cache[`self_${kind}_${i}`] = zeros(this.details[`self_${kind}_${i}`]);
    }
  }

  start(cross, crossBias) {
    this.cross = cross;
    this.crossBias = crossBias;
  }

  // Cache entry [b, h, p, d] of K (transposed) or V, as an index into the flat tensor.
  index(kind, b, h, p, d) {
    const [heads, headDim, size] = [this.heads, this.headDim, this.size];
    return kind === "k" ? ((b * heads + h) * headDim + d) * size + p : ((b * heads + h) * size + p) * headDim + d;
  }

  async step(tokens, position) {
    const inputs = { ...this.cross, ...this.cache, cross_bias: this.crossBias,
      token_ids: new Tensor(Int32Array.from(tokens), this.details.token_ids.shape),
      position: new Tensor(Int32Array.of(position), this.details.position.shape) };
    const outputs = await this.graph.run(this.name, inputs);
    inputs.token_ids.delete();
    inputs.position.delete();
    try {
      for (let i = 0; i < this.layers; i++) {
        for (const kind of ["k", "v"]) {
          const fresh = outputs[`new_${kind}_${i}`].toTypedArray(); // [batch, heads, 1, head_dim]
          inPlace(this.cache[`self_${kind}_${i}`], (cache) => {
            for (let b = 0; b < this.batch; b++) {
              for (let h = 0; h < this.heads; h++) {
                for (let d = 0; d < this.headDim; d++) {
                  cache[this.index(kind, b, h, position, d)] = fresh[(b * this.heads + h) * this.headDim + d];
                }
              }
            }
          });
        }
      }
      return outputs.logits.toTypedArray();
    } finally {
      for (const tensor of Object.values(outputs)) tensor.delete();
    }
  }

  // Hypothesis b continues hypothesis source[b]: whole rows copied (a row is one hypothesis' cache,
  // contiguous in both layouts), only the rows that change, from a snapshot of their sources. This
  // runs every beam step.
  reorder(source) {
    if (source.every((s, b) => s === b)) return;
    for (const tensor of Object.values(this.cache)) {
      inPlace(tensor, (mine) => {
        const row = mine.length / this.batch;
        const kept = new Map(source.filter((s, b) => s !== b).map((s) => [s, mine.slice(s * row, (s + 1) * row)]));
        source.forEach((s, b) => { if (s !== b) mine.set(kept.get(s), b * row); });
      });
    }
  }

  // Entries [0, length) of `other`'s cache, a smaller bucket's, into this one's (once per bucket).
  copyFrom(other, length) {
    for (const [name, tensor] of Object.entries(this.cache)) {
      const kind = name[5];
      const theirs = other.cache[name].toTypedArray();
      inPlace(tensor, (mine) => {
        for (let b = 0; b < this.batch; b++) {
          for (let h = 0; h < this.heads; h++) {
            for (let p = 0; p < length; p++) {
              for (let d = 0; d < this.headDim; d++) {
                mine[this.index(kind, b, h, p, d)] = theirs[other.index(kind, b, h, p, d)];
              }
            }
          }
        }
      });
    }
  }

}

// A stepper over one batch size's cache buckets: a sequence moves to the next bucket only when it
// fills the one it is in, so short answers never pay for the largest cache.
// It owns the prompt's cross-attention tensors.
class GrowingDecoder {
  constructor(sessions, cross, crossBias) {
    this.sessions = sessions; // functions giving the sessions, by increasing cache size
    this.index = 0;
    this.cross = cross;
    this.crossBias = crossBias;
    this.current = sessions[0]();
    this.current.start(cross, crossBias);
  }

  async step(tokens, position) {
    while (position >= this.current.size) {
      const bigger = this.sessions[++this.index]();
      bigger.start(this.cross, this.crossBias);
      bigger.copyFrom(this.current, position);
      this.current = bigger;
    }
    return this.current.step(tokens, position);
  }

  reorder(source) {
    this.current.reorder(source);
  }

  delete() {
    for (const tensor of [...Object.values(this.cross), this.crossBias]) tensor.delete();
  }
}

export class Florence2 {
  // `files`: the bundle's files by name, their checksums already checked (bundle.js).
  static async load(manifest, files) {
    await loadRuntime();
    const graphs = {};
    for (const role of ROLES) {
      graphs[role] = await loadAndCompile(files[manifest.graphs[role].file], { accelerator: "wasm" });
    }
    const tokenizer = new Tokenizer(JSON.parse(new TextDecoder().decode(files["tokenizer.json"])));
    return new Florence2(manifest, graphs, tokenizer);
  }

  constructor(manifest, graphs, tokenizer) {
    this.manifest = manifest;
    this.graphs = graphs;
    this.tokenizer = tokenizer;
    this.sessions = new Map(); // decoder sessions by signature, made on first use and kept
  }

  // RGBA bytes of a width x height picture -> its image features, once for every task.
  async encode(rgba, width, height) {
    const image = this.manifest.image;
    const [details] = this.graphs.vision.signatures.vision.getInputDetails();
    const start = performance.now();
    const pixels = new Tensor(pixelValues(rgba, width, height, image), details.shape);
    const outputs = await this.graphs.vision.run("vision", { pixel_values: pixels });
    pixels.delete();
    const features = outputs.image_features.toTypedArray();
    for (const tensor of Object.values(outputs)) tensor.delete();
    return { features, size: [width, height], visionMs: performance.now() - start };
  }

  settings({ numBeams, maxNewTokens } = {}) {
    const g = this.manifest.generation;
    const t = this.manifest.special_tokens;
    const largest = Math.max(...this.buckets().map(([, size]) => size));
    return { maxNewTokens: maxNewTokens ?? Math.min(g.max_new_tokens, largest), numBeams: numBeams ?? g.num_beams,
      noRepeatNgramSize: g.no_repeat_ngram_size, decoderStartId: t.decoder_start, eosId: t.eos,
      forcedBosId: g.forced_bos_token_id, forcedEosId: g.forced_eos_token_id, earlyStopping: g.early_stopping,
      lengthPenalty: g.length_penalty };
  }

  buckets() {
    return this.manifest.graphs.decoder.buckets.map(({ batch, cache }) => [batch, cache]);
  }

  // Text pieces as tokens are decoded ({text, token}), then {result}: the task's answer, parsed in the
  // picture's pixels. `region` [x1, y1, x2, y2] in pixels for REGION_TO_* tasks.
  async* stream(encoded, task, { text, region, numBeams, maxNewTokens } = {}) {
    const key = normalizeTask(task);
    const s = this.settings({ numBeams, maxNewTokens });
    const input = region ? regionTokens(region, encoded.size) : text;
    const start = performance.now();
    const decoder = await this.encodePrompt(encoded, key, input, s);
    const encoderMs = performance.now() - start;
    const tokens = [];
    const pieces = new Streamer(this.tokenizer);
    try {
      for await (const token of (s.numBeams === 1 ? greedy : beamSearch)(decoder, s)) {
        tokens.push(token);
        const piece = pieces.push(token);
        if (piece) yield { text: piece, token };
      }
    } finally {
      decoder.delete();
    }
    const kind = this.manifest.tasks[key].post_processing;
    const parsed = parse(this.tokenizer.decode(tokens), key, kind, encoded.size, this.manifest.post_processing);
    yield { result: { task: key, text: this.tokenizer.outputText(tokens), tokenIds: tokens, parsed,
      timings: { visionMs: encoded.visionMs, encoderMs, decodeMs: performance.now() - start - encoderMs } } };
  }

  async run(encoded, task, options) {
    let result;
    for await (const event of this.stream(encoded, task, options)) result = event.result ?? result;
    return result;
  }

  // The text encoder once for a task's prompt; a decoder holding its cross-attention K/V.
  async encodePrompt(encoded, task, input, s) {
    const m = this.manifest;
    const prompt = this.tokenizer.promptIds(buildPrompt(m.tasks, task, input), m.model.prompt_lens,
      m.special_tokens.pad);
    const name = `encode_p${prompt.length}`;
    const details = Object.fromEntries(this.graphs.encoder.signatures[name].getInputDetails().map((d) => [d.name, d]));
    const inputs = { image_features: new Tensor(encoded.features, details.image_features.shape),
      prompt_ids: new Tensor(prompt.ids, details.prompt_ids.shape),
      prompt_mask: new Tensor(prompt.mask, details.prompt_mask.shape) };
    const cross = await this.graphs.encoder.run(name, inputs);
    for (const tensor of Object.values(inputs)) tensor.delete();
    const bias = new Float32Array(m.model.image_tokens + prompt.length);
    prompt.mask.forEach((on, i) => { bias[m.model.image_tokens + i] = on ? 0 : MASKED; });
    const sizes = this.buckets().filter(([b]) => b === s.numBeams).map(([, size]) => size).sort((a, b) => a - b);
    if (!sizes.length) throw new Error(`this bundle has no decoder for ${s.numBeams} beams`);
    const needed = sizes.slice(0, sizes.findIndex((size) => size >= s.maxNewTokens) + 1 || sizes.length);
    const names = needed.map((size) => `decode_b${s.numBeams}_s${size}_p${prompt.length}`);
    const biasShape = this.graphs.decoder.signatures[names[0]].getInputDetails()
      .find((d) => d.name === "cross_bias").shape;
    const decoder = new GrowingDecoder(names.map((n) => () => this.session(n)), cross, new Tensor(bias, biasShape));
    return decoder;
  }

  session(name) {
    if (!this.sessions.has(name)) {
      const spec = this.manifest.graphs.decoder.signatures[name];
      this.sessions.set(name, new DecoderSession(this.graphs.decoder, name, spec, this.manifest.model.decoder_layers));
    }
    return this.sessions.get(name);
  }
}
