// Greedy and beam search over a one-token decoder step, as edge/decoding.py (and transformers'
// generate()) choose: the no-repeat n-gram rule, forced BOS and EOS, beams scored by
// sum(log p) / length ** length_penalty with early stopping. The model is reached through a stepper:
// `await stepper.step(tokens, position)` gives logits [hypotheses x vocab] (a Float32Array) and
// `stepper.reorder(source)` makes hypothesis i continue hypothesis source[i].

const NEG = -1.0e9; // transformers' "impossible" score for beams and finished slots

// settings: {maxNewTokens, numBeams, noRepeatNgramSize, decoderStartId, eosId, forcedBosId,
// forcedEosId, earlyStopping, lengthPenalty}
const maxLength = (s) => s.maxNewTokens + 1; // the decoder start token counts, as in generate()

// Tokens that followed the last n-1 tokens earlier in `seq`.
export function bannedTokens(seq, n) {
  const banned = new Set();
  if (n <= 0 || seq.length + 1 < n) return banned;
  const tail = seq.slice(seq.length - n + 1);
  for (let start = 0; start + n - 1 < seq.length; start++) {
    let hit = true;
    for (let k = 0; k < n - 1 && hit; k++) hit = seq[start + k] === tail[k];
    if (hit) banned.add(seq[start + n - 1]);
  }
  return banned;
}

const forcedAt = (length, s) => (s.forcedEosId != null && length === maxLength(s) - 1 ? s.forcedEosId
  : s.forcedBosId != null && length === 1 ? s.forcedBosId : null);

function argmax(values, from, to, banned) {
  let best = -1;
  let top = -Infinity;
  for (let i = from; i < to; i++) {
    if (values[i] > top && !banned.has(i - from)) [best, top] = [i - from, values[i]];
  }
  return best;
}

// Yields each token as it is chosen; the last is EOS unless the limit cut it.
export async function* greedy(stepper, s) {
  const seq = [s.decoderStartId];
  while (seq.length < maxLength(s)) {
    const logits = await stepper.step([seq.at(-1)], seq.length - 1);
    const forced = forcedAt(seq.length, s);
    const token = forced ?? argmax(logits, 0, logits.length, bannedTokens(seq, s.noRepeatNgramSize));
    seq.push(token);
    yield token;
    if (token === s.eosId) return;
  }
}

function logSoftmaxRows(logits, rows, vocab) {
  const out = new Float32Array(logits.length);
  for (let r = 0; r < rows; r++) {
    let top = -Infinity;
    for (let v = 0; v < vocab; v++) top = Math.max(top, logits[r * vocab + v]);
    let sum = 0;
    for (let v = 0; v < vocab; v++) sum += Math.exp(logits[r * vocab + v] - top);
    const lse = Math.fround(top + Math.log(sum));
    for (let v = 0; v < vocab; v++) out[r * vocab + v] = logits[r * vocab + v] - lse;
  }
  return out;
}

// The indices of the `count` largest of `values`, largest first, ties by index (a stable argsort's
// first `count`), in one pass: the vocabulary times the beams is 150,000 values a step.
function top(values, count) {
  const best = []; // indices, best first
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (best.length === count && !(v > values[best[count - 1]])) continue;
    let at = best.length;
    while (at > 0 && v > values[best[at - 1]]) at--;
    best.splice(at, 0, i);
    if (best.length > count) best.pop();
  }
  return best;
}

function commonPrefix(seqs) {
  let prefix = seqs[0];
  for (const seq of seqs.slice(1)) {
    let n = 0;
    while (n < Math.min(prefix.length, seq.length) && prefix[n] === seq[n]) n++;
    prefix = prefix.slice(0, n);
  }
  return prefix;
}

// Yields the best hypothesis' tokens, each as soon as every live beam and finished hypothesis
// shares it (the answer can only come from those).
export async function* beamSearch(stepper, s) {
  const k = s.numBeams;
  const keep = 2 * k; // one EOS token: enough candidates that k can always continue
  let running = Array.from({ length: k }, () => [s.decoderStartId]);
  let runningScores = new Float32Array(k).fill(NEG);
  runningScores[0] = 0;
  let finished = []; // [score, tokens]
  let improvable = true;
  let emitted = 0;
  for (;;) {
    const length = running[0].length;
    const logits = await stepper.step(running.map((row) => row.at(-1)), length - 1);
    const vocab = logits.length / k;
    const logProbs = logSoftmaxRows(logits, k, vocab);
    for (let row = 0; row < k; row++) { // process_scores, in generate()'s order
      for (const token of bannedTokens(running[row], s.noRepeatNgramSize)) logProbs[row * vocab + token] = -Infinity;
    }
    const forced = forcedAt(length, s);
    if (forced != null) {
      logProbs.fill(-Infinity);
      for (let row = 0; row < k; row++) logProbs[row * vocab + forced] = 0;
    }
    const total = new Float32Array(logProbs.length);
    for (let i = 0; i < total.length; i++) total[i] = logProbs[i] + runningScores[Math.floor(i / vocab)];
    const candidates = top(total, keep);
    const scores = candidates.map((c) => total[c]);
    const beams = candidates.map((c) => Math.floor(c / vocab));
    const tokens = candidates.map((c) => c % vocab);
    const hits = tokens.map((t) => t === s.eosId || length + 1 >= maxLength(s));
    if (improvable && !(finished.length === k && s.earlyStopping)) {
      for (let rank = 0; rank < k; rank++) {
        if (!hits[rank] || !(scores[rank] > NEG)) continue;
        // Length of the hypothesis without the decoder start token.
        const score = scores[rank] / length ** s.lengthPenalty;
        finished = [...finished, [score, [...running[beams[rank]].slice(1), tokens[rank]]]]
          .sort((a, b) => b[0] - a[0]).slice(0, k);
      }
    }
    const masked = Float32Array.from(scores, (v, rank) => v + (hits[rank] ? NEG : 0));
    const alive = top(masked, k);
    const source = alive.map((rank) => beams[rank]);
    running = alive.map((rank) => [...running[beams[rank]], tokens[rank]]);
    runningScores = Float32Array.from(alive, (rank) => masked[rank]);
    const settled = commonPrefix([...running.map((row) => row.slice(1)), ...finished.map(([, t]) => t)]);
    for (const token of running[0].slice(1 + emitted, 1 + settled.length)) yield token;
    emitted = Math.max(emitted, settled.length);
    if (hits.every(Boolean)) break;
    stepper.reorder(source);
    improvable = improvable && canImprove(runningScores, finished, k, running[0].length, s);
    if (!improvable || (finished.length === k && s.earlyStopping)) break;
  }
  for (const token of finished[0][1].slice(emitted)) yield token;
}

function canImprove(runningScores, finished, k, length, s) {
  if (finished.length < k) return true;
  const best = runningScores[0] / (length - 1) ** s.lengthPenalty;
  return best > Math.min(...finished.map(([score]) => score));
}
