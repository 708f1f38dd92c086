// Text <-> token ids with a bundle's tokenizer.json: BART's byte-level BPE, as `tokenizers` does it
// (edge/text.py). Added tokens (<s>, <loc_N>, ...) are matched first, longest wins; the rest is
// split by GPT-2's pattern, mapped to byte-level characters and merged by rank.

// Unicode's White_Space, as Oniguruma's \s in `tokenizers` (JavaScript's \s adds U+FEFF, lacks U+0085).
const WS = "\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const PATTERN = new RegExp(
  `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${WS}\\p{L}\\p{N}]+|[${WS}]+(?![^${WS}])|[${WS}]+`, "gu");
const STRIP = ["<s>", "</s>", "<pad>"]; // never in output text (transformers strips exactly these)

// GPT-2's table: every byte as a printable character, printable ASCII and Latin-1 as themselves.
function byteCharacters() {
  const bytes = [];
  for (let b = 33; b <= 126; b++) bytes.push(b);
  for (let b = 161; b <= 172; b++) bytes.push(b);
  for (let b = 174; b <= 255; b++) bytes.push(b);
  const chars = bytes.map((b) => b);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    if (!bytes.includes(b)) {
      bytes.push(b);
      chars.push(256 + extra++);
    }
  }
  const toChar = new Array(256);
  bytes.forEach((b, i) => { toChar[b] = String.fromCodePoint(chars[i]); });
  return toChar;
}

const BYTE_CHAR = byteCharacters();
const CHAR_BYTE = new Map(BYTE_CHAR.map((c, b) => [c, b]));
const encoder = new TextEncoder();
// Invalid bytes become U+FFFD, as from_utf8_lossy; a leading U+FEFF is text, not a byte-order mark.
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

export class Tokenizer {
  constructor(json) {
    const model = json.model;
    if (model?.type !== "BPE" || json.pre_tokenizer?.type !== "ByteLevel") {
      throw new Error("tokenizer.json is not a byte-level BPE tokenizer");
    }
    this.vocab = new Map(Object.entries(model.vocab));
    this.tokens = [];
    for (const [token, id] of this.vocab) this.tokens[id] = token;
    this.ranks = new Map(model.merges.map((m, rank) => [Array.isArray(m) ? m.join(" ") : m, rank]));
    this.added = new Map(json.added_tokens.map((t) => [t.content, t.id]));
    for (const [content, id] of this.added) this.tokens[id] = content;
    this.addedByLength = [...this.added.keys()].sort((a, b) => b.length - a.length);
    this.addedFirst = new Set(this.addedByLength.map((t) => t[0]));
    this.cache = new Map();
  }

  static async load(url) {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`cannot load ${url}: HTTP ${response.status}`);
    return new Tokenizer(await response.json());
  }

  encode(text) {
    const ids = [];
    for (const [piece, isAdded] of this.splitAdded(text)) {
      if (isAdded) ids.push(this.added.get(piece));
      else for (const word of piece.match(PATTERN) ?? []) ids.push(...this.word(word));
    }
    return ids;
  }

  // The text in runs of plain text and added tokens, the longest added token at the earliest place.
  splitAdded(text) {
    const out = [];
    let plain = "";
    for (let i = 0; i < text.length;) {
      const found = this.addedFirst.has(text[i]) ? this.addedByLength.find((t) => text.startsWith(t, i)) : undefined;
      if (found) {
        if (plain) out.push([plain, false]);
        out.push([found, true]);
        plain = "";
        i += found.length;
      } else {
        plain += text[i++];
      }
    }
    if (plain) out.push([plain, false]);
    return out;
  }

  word(word) {
    let ids = this.cache.get(word);
    if (ids) return ids;
    let parts = Array.from(encoder.encode(word), (b) => BYTE_CHAR[b]);
    while (parts.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < parts.length - 1; i++) {
        const rank = this.ranks.get(parts[i] + " " + parts[i + 1]);
        if (rank !== undefined && rank < bestRank) [best, bestRank] = [i, rank];
      }
      if (best < 0) break;
      parts = [...parts.slice(0, best), parts[best] + parts[best + 1], ...parts.slice(best + 2)];
    }
    ids = parts.map((p) => {
      const id = this.vocab.get(p);
      if (id === undefined) throw new Error(`tokenizer.json has no token for ${JSON.stringify(p)}`);
      return id;
    });
    this.cache.set(word, ids);
    return ids;
  }

  // Every token kept, <loc_N> included: decode(skip_special_tokens=False).
  decode(ids) {
    const bytes = [];
    for (const id of ids) {
      for (const c of this.tokens[id] ?? "") {
        const b = CHAR_BYTE.get(c);
        if (b !== undefined) bytes.push(b);
        else bytes.push(...encoder.encode(c));
      }
    }
    return decoder.decode(new Uint8Array(bytes));
  }

  outputText(ids) {
    let text = this.decode(ids);
    for (const token of STRIP) text = text.replaceAll(token, "");
    return text;
  }

  // `<s> prompt </s>` padded to the shortest prompt length it fits, and its mask.
  promptIds(prompt, lengths, pad) {
    const ids = this.encode(`<s>${prompt}</s>`);
    const length = [...lengths].sort((a, b) => a - b).find((n) => n >= ids.length);
    if (length === undefined) {
      throw new Error(`text input too long: the prompt is ${ids.length} tokens, this bundle takes at most ` +
        `${Math.max(...lengths)}`);
    }
    const out = new Int32Array(length).fill(pad);
    out.set(ids);
    const mask = new Int32Array(length);
    mask.fill(1, 0, ids.length);
    return { ids: out, mask, length };
  }
}

// Text pieces as tokens come, holding back bytes that do not yet form a character; a short window of
// recent tokens is decoded per token, so streaming stays O(1) a token.
export class Streamer {
  constructor(tokenizer) {
    this.tokenizer = tokenizer;
    this.ids = [];
    this.start = 0;
    this.done = 0;
  }

  push(token) {
    this.ids.push(token);
    const before = this.tokenizer.outputText(this.ids.slice(this.start, this.done));
    const text = this.tokenizer.outputText(this.ids.slice(this.start));
    if (text.endsWith("\ufffd") || text.length <= before.length) return "";
    [this.start, this.done] = [this.done, this.ids.length];
    return text.slice(before.length);
  }
}
