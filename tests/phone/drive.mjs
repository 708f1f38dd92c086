// The browser runtime's modules driven from the Python tests under Node:
// `node drive.mjs JOB < cases.json > results.json`, a job per module under test.
import { readFileSync } from "node:fs";

import { manifestProblem, sha256 } from "../../edge/phone/bundle.js";
import { parse } from "../../edge/phone/postprocess.js";
import { pixelValues } from "../../edge/phone/preprocess.js";
import { Streamer, Tokenizer } from "../../edge/phone/tokenizer.js";

const jobs = {
  // {tokenizer: tokenizer.json's object, texts: [...], sequences: [[id, ...], ...]}
  tokenize({ tokenizer, texts, sequences }) {
    const t = new Tokenizer(tokenizer);
    return {
      encoded: texts.map((text) => t.encode(text)),
      decoded: sequences.map((ids) => t.decode(ids)),
      streamed: sequences.map((ids) => {
        const streamer = new Streamer(t);
        return ids.map((id) => streamer.push(id)).join("");
      }),
    };
  },
  // {blobs: [base64, ...], manifests: [...]}: their sha256, and what the page says of each manifest
  bundle({ blobs, manifests }) {
    return { sha256: blobs.map((b) => sha256(new Uint8Array(Buffer.from(b, "base64")))),
      problems: manifests.map(manifestProblem) };
  },
  // {cases: [{rgba: base64, width, height, image: the manifest's}, ...]}: pixel values, base64 float32
  preprocess({ cases }) {
    return cases.map(({ rgba, width, height, image }) => {
      const values = pixelValues(new Uint8ClampedArray(Buffer.from(rgba, "base64")), width, height, image);
      return Buffer.from(values.buffer).toString("base64");
    });
  },
  // {cases: [{text, task, kind, size, config}, ...]}: parse's answer, or its error message
  parse({ cases }) {
    return cases.map(({ text, task, kind, size, config }) => {
      try {
        return parse(text, task, kind, size, config);
      } catch (error) {
        return { error: error.message };
      }
    });
  },
};

const [job] = process.argv.slice(2);
process.stdout.write(JSON.stringify(await jobs[job](JSON.parse(readFileSync(0, "utf8")))));
