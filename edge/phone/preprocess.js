// A picture's RGBA pixels -> the model's input, the very numbers edge/preprocess.py makes: Pillow's
// resampling (two passes, horizontal first, each rounded to 8 bits with 22-bit fixed-point
// weights), a rescale in float64, then the normalisation in float32. A canvas' own scaling differs
// from Pillow's, so the browser does not resize the picture itself.

const PRECISION_BITS = 32 - 8 - 2;
const BICUBIC = 3; // Pillow's number for it: every Florence-2 processor resizes with it

function bicubic(x) {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

// Pillow's precompute_coeffs: for each output index, the first input index, how many, and the
// integer weights.
function coefficients(inSize, outSize, support = 2, weight = bicubic) {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const reach = support * filterScale;
  const size = Math.ceil(reach) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * size);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - reach + 0.5));
    const n = Math.min(inSize, Math.trunc(center + reach + 0.5)) - xmin;
    const w = new Float64Array(n);
    let total = 0;
    const ss = 1 / filterScale; // multiplied, not divided: Pillow's own rounding
    for (let x = 0; x < n; x++) total += (w[x] = weight((x + xmin - center + 0.5) * ss));
    for (let x = 0; x < n; x++) {
      const k = total !== 0 ? w[x] / total : w[x];
      weights[xx * size + x] = Math.trunc(k < 0 ? -0.5 + k * (1 << PRECISION_BITS) : 0.5 + k * (1 << PRECISION_BITS));
    }
    first[xx] = xmin;
    count[xx] = n;
  }
  return { first, count, weights, size };
}

const clip8 = (sum) => Math.min(255, Math.max(0, sum >> PRECISION_BITS));

// One pass over RGBA bytes: along rows (`horizontal`) or columns; `rows` x `cols` of the output, the
// input read from row `rowOffset` on.
function pass(src, srcWidth, rows, cols, c, horizontal, rowOffset = 0) {
  const out = new Uint8ClampedArray(rows * cols * 4);
  const half = 1 << (PRECISION_BITS - 1);
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < cols; x++) {
      const along = horizontal ? x : y;
      const start = c.first[along];
      const base = along * c.size;
      for (let channel = 0; channel < 3; channel++) {
        let sum = half;
        for (let i = 0; i < c.count[along]; i++) {
          const at = horizontal ? ((y + rowOffset) * srcWidth + start + i) : ((start + i) * srcWidth + x);
          sum += src[at * 4 + channel] * c.weights[base + i];
        }
        out[(y * cols + x) * 4 + channel] = clip8(sum);
      }
    }
  }
  return out;
}

// RGBA bytes of width x height -> RGBA bytes of outWidth x outHeight, as Pillow 13's resize(resample):
// the vertical pass first when the height shrinks by more than twice what the width does.
export function resize(rgba, width, height, outWidth, outHeight, resample = BICUBIC) {
  if (resample !== BICUBIC) {
    throw new Error(`this bundle resizes with Pillow's filter ${resample}; the browser runtime has bicubic (3) only`);
  }
  const across = outWidth !== width ? coefficients(width, outWidth) : null;
  const down = outHeight !== height ? coefficients(height, outHeight) : null;
  if (down && height - outHeight > 0 && height - outHeight > (width - outWidth) * 2) {
    const tall = pass(rgba, width, outHeight, width, down, false);
    if (!across) return tall;
    return pass(tall, width, outHeight, outWidth, across, true);
  }
  let src = rgba;
  let rowFirst = 0;
  if (across) {
    // Only the rows the vertical pass reads.
    rowFirst = down ? down.first[0] : 0;
    const rowLast = down ? down.first[outHeight - 1] + down.count[outHeight - 1] : height;
    src = pass(rgba, width, rowLast - rowFirst, outWidth, across, true, rowFirst);
  }
  if (!down) return src;
  return pass(src, outWidth, outHeight, outWidth, { ...down, first: down.first.map((f) => f - rowFirst) }, false);
}

// [1, 3, H, W] float32 from a picture's RGBA bytes, with the manifest's `image` settings.
export function pixelValues(rgba, width, height, image) {
  const { height: h, width: w, mean, std, resample, rescale_factor: rescale = 1 / 255 } = image;
  const resized = resize(rgba, width, height, w, h, resample);
  const out = new Float32Array(3 * h * w);
  for (let channel = 0; channel < 3; channel++) {
    const m = Math.fround(mean[channel]);
    const s = Math.fround(std[channel]);
    for (let i = 0; i < h * w; i++) {
      const scaled = Math.fround(resized[i * 4 + channel] * rescale);
      out[channel * h * w + i] = Math.fround(Math.fround(scaled - m) / s);
    }
  }
  return out;
}
