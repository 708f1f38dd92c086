// A bundle fetched once and kept in the browser: every file checked against the manifest's sha256
// before it is kept or used, kept in IndexedDB by that sha256 (a newer bundle's changed files are
// fetched again, the rest reused). Plain HTTP from a board is no secure context: no crypto.subtle,
// no Cache Storage; IndexedDB and the SHA-256 below work in either.

const FORMAT = "florence-edge-bundle";
const FORMAT_VERSION = 4;
const RECIPES = ["int8"]; // what the tests run in a browser; others are refused by name
const STORE = "files";

// SHA-256 of bytes, hex (FIPS 180-4), for pages without crypto.subtle.
const K = Uint32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2]);

export function sha256(bytes) {
  const h = Uint32Array.from([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
    0x5be0cd19]);
  const padded = new Uint8Array(Math.ceil((bytes.length + 9) / 64) * 64);
  padded.set(bytes);
  padded[bytes.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(bytes.length / 2 ** 29));
  view.setUint32(padded.length - 4, (bytes.length * 8) >>> 0);
  const w = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let block = 0; block < padded.length; block += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(block + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      [hh, g, f, e, d, c, b, a] = [g, f, e, (d + t1) >>> 0, c, b, a, (t1 + t2) >>> 0];
    }
    [a, b, c, d, e, f, g, hh].forEach((v, i) => { h[i] = (h[i] + v) >>> 0; });
  }
  return Array.from(h, (v) => v.toString(16).padStart(8, "0")).join("");
}

async function digest(bytes) {
  if (!globalThis.crypto?.subtle) return sha256(bytes);
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
}

// What is wrong with a manifest for this page, in one line, or null.
export function manifestProblem(manifest) {
  if (manifest?.format !== FORMAT) return "this is not a florence-edge bundle (its manifest.json says otherwise)";
  if (manifest.format_version !== FORMAT_VERSION) {
    return `bundle format version ${manifest.format_version}; this page reads version ${FORMAT_VERSION}: ` +
      "convert the model again with this florence-edge";
  }
  const recipe = manifest.quantization?.name;
  if (!RECIPES.includes(recipe)) {
    return `this page runs ${RECIPES.join(", ")} bundles, not ${recipe}: convert with --quant int8 for phones`;
  }
  return null;
}

function openStore() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open("florence-edge", 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function stored(db, mode, act) {
  return new Promise((resolve, reject) => {
    const transaction = db.transaction(STORE, mode);
    const request = act(transaction.objectStore(STORE));
    transaction.oncomplete = () => resolve(request.result);
    transaction.onerror = transaction.onabort = () => reject(transaction.error ?? request.error);
  });
}

async function fetched(url, expectedBytes, onBytes) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`cannot fetch ${url}: HTTP ${response.status}`);
  const out = new Uint8Array(expectedBytes);
  let at = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (at + value.length > out.length) throw new Error(`${url} is larger than its manifest says`);
    out.set(value, at);
    at += value.length;
    onBytes(value.length);
  }
  if (at !== out.length) throw new Error(`${url} is shorter than its manifest says`);
  return out;
}

// The bundle at `base` (a URL without a trailing slash; `query` is added to every request, e.g. a
// token): {manifest, files}. `progress(done, total)` in bytes. Throws an Error with one line.
export async function loadBundle(base, query = "", progress = () => {}) {
  const response = await fetch(`${base}/manifest.json${query}`);
  if (!response.ok) throw new Error(`cannot fetch the bundle's manifest: HTTP ${response.status}`);
  const manifest = await response.json();
  const problem = manifestProblem(manifest);
  if (problem) throw new Error(problem);
  const entries = Object.entries(manifest.files);
  const total = entries.reduce((sum, [, entry]) => sum + entry.bytes, 0);
  let done = 0;
  const db = await openStore();
  const files = {};
  for (const [name, entry] of entries) {
    let bytes = await stored(db, "readonly", (store) => store.get(entry.sha256));
    if (!bytes || (await digest(bytes)) !== entry.sha256) {
      bytes = await fetched(`${base}/${name}${query}`, entry.bytes, (n) => progress(done += n, total));
      if ((await digest(bytes)) !== entry.sha256) {
        throw new Error(`${name} does not match the bundle's checksum: the board's copy is damaged ` +
          "(florence-edge check shows which); nothing of it was kept");
      }
      try {
        await stored(db, "readwrite", (store) => store.put(bytes, entry.sha256));
      } catch (error) {
        throw new Error(`the browser's storage is full (${error?.name ?? error}): free some, or use a smaller bundle`);
      }
    } else {
      progress(done += entry.bytes, total);
    }
    files[name] = bytes;
  }
  db.close();
  return { manifest, files };
}
