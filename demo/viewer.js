// The Explore tab's viewer: draws every view of an explanation the page already holds.
//
// The server sends an explanation once (core/payload.py): raw class maps at each stage's grid,
// guided backprop at display size as 12-bit levels, the original as lossless WebP. Layer, class,
// opacity, colormap and counterfactual are then drawn here, in the frame after the control moves,
// with no request. Each drawing function mirrors the server's (core/engine.py, core/views.py,
// core/render.py) step for step, in the same order, because the page's pixels are tested against
// the server's. Colour tables and titles come from core when the page is built (GRADCAM).
//
// A switch must fit in one frame (16 ms), so what does not depend on opacity or colormap is
// computed once and kept (each map over the picture and its colour levels, each guided picture,
// each Guided Grad-CAM), mostly while the page is idle, and a canvas is put again only when
// what it shows changed: a layer switch leaves the strip alone, opacity leaves the guided panels.
(() => {
  "use strict";
  const GRADCAM = window.GRADCAM;

  // ----- pure drawing functions ------------------------------------------------------------

  /** numpy's rint: halves go to the even neighbour (Math.round sends them up). */
  function rint(x) {
    const r = Math.round(x);
    return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
  }

  /** Taps and weights along one axis: core/resample.py's axis_taps, the same operations in the same order. */
  function axisWeights(inLen, outLen) {
    const scale = inLen / outLen;
    const support = scale >= 1 ? scale : 1;
    const invscale = scale >= 1 ? 1 / scale : 1;
    const taps = [];
    for (let i = 0; i < outLen; i++) {
      const center = scale * (i + 0.5);
      const first = Math.max(Math.trunc(center - support + 0.5), 0);
      const last = Math.min(Math.trunc(center + support + 0.5), inLen);
      const weights = [];
      let total = 0;
      for (let j = first; j < last; j++) {
        const w = Math.max(0, 1 - Math.abs((j - center + 0.5) * invscale));
        weights.push(w);
        total = total + w;
      }
      taps.push({ first, weights: weights.map((w) => (total > 0 ? w / total : 0)) });
    }
    return taps;
  }

  /** A (h, w) map resized to (outH, outW) in float64, columns then rows: core/resample.py's resize. */
  function resize(map, w, h, outW, outH) {
    let values = Float64Array.from(map);
    if (outW !== w) {
      const xs = axisWeights(w, outW);
      const out = new Float64Array(h * outW);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < outW; x++) {
          const { first, weights } = xs[x];
          let v = 0;
          for (let k = 0; k < weights.length; k++) v = v + weights[k] * values[y * w + Math.min(first + k, w - 1)];
          out[y * outW + x] = v;
        }
      }
      values = out;
    }
    if (outH !== h) {
      const ys = axisWeights(h, outH);
      const out = new Float64Array(outH * outW);
      for (let y = 0; y < outH; y++) {
        const { first, weights } = ys[y];
        for (let x = 0; x < outW; x++) {
          let v = 0;
          for (let k = 0; k < weights.length; k++) v = v + weights[k] * values[Math.min(first + k, h - 1) * outW + x];
          out[y * outW + x] = v;
        }
      }
      values = out;
    }
    return values;
  }

  /** A map over the model input brought over the picture at size [w, h]: core.engine._over_picture. */
  function overPicture(map, grid, size, input, box) {
    const [gh, gw] = grid;
    if (!box) return resize(map, gw, gh, size[0], size[1]);
    const [inW, inH] = input;
    const [left, top, bw, bh] = box;
    const full = resize(map, gw, gh, inW, inH);
    const cropped = new Float64Array(bw * bh);
    for (let y = 0; y < bh; y++) cropped.set(full.subarray((top + y) * inW + left, (top + y) * inW + left + bw), y * bw);
    return resize(cropped, bw, bh, size[0], size[1]);
  }

  /** Min-max scaled to [0, 1] in float64, then float32; an all-zero map stays zero (core.engine._normalise01). */
  function normalise01(map) {
    let lo = Infinity;
    for (const v of map) lo = Math.min(lo, v);
    const shifted = new Float64Array(map.length);
    let hi = -Infinity;
    for (let i = 0; i < map.length; i++) hi = Math.max(hi, (shifted[i] = map[i] - lo));
    const out = new Float32Array(map.length);
    if (hi > 0) for (let i = 0; i < out.length; i++) out[i] = shifted[i] / hi;
    return out;
  }

  /** cam01's colour levels, rint(clip(cam01, 0, 1)·255) in float32 (core.render.heatmap). */
  function levels(cam01) {
    const out = new Uint8Array(cam01.length);
    for (let i = 0; i < cam01.length; i++) out[i] = rint(Math.fround(Math.min(1, Math.max(0, cam01[i])) * 255));
    return out;
  }

  /** A 256-entry RGB table as one RGBA word per level (little-endian, as every browser's
   *  ImageData is laid out): a heatmap pixel is then one load and one store. */
  function packLut(lut) {
    const out = new Uint32Array(256);
    for (let l = 0; l < 256; l++) out[l] = (lut[3 * l] | (lut[3 * l + 1] << 8) | (lut[3 * l + 2] << 16) | 0xff000000) >>> 0;
    return out;
  }

  /** Colour levels through a packed table, as RGBA (core.render.heatmap). */
  function heatmap(levels, packedLut) {
    const out = new Uint32Array(levels.length);
    for (let i = 0; i < levels.length; i++) out[i] = packedLut[levels[i]];
    return new Uint8ClampedArray(out.buffer);
  }

  /** rint((1 − opacity)·b + opacity·h) for every image byte b and heatmap byte h, at index b·256 + h:
   *  core.render.overlay's float64 blend, computed once per opacity instead of once per pixel. */
  function blendTable(opacity) {
    const a = Math.min(1, Math.max(0, opacity));
    const out = new Uint8Array(65536);
    for (let b = 0; b < 256; b++) for (let h = 0; h < 256; h++) out[(b << 8) | h] = rint(b * (1 - a) + h * a);
    return out;
  }

  /** The levels' heatmap blended onto the RGBA image through a blendTable (core.render.overlay),
   *  a pixel as one word: the heatmap itself is never stored. */
  function overlay(base, levels, packedLut, table) {
    const image = new Uint32Array(base.buffer, base.byteOffset, levels.length);
    const out = new Uint32Array(levels.length);
    for (let i = 0; i < levels.length; i++) {
      const b = image[i];
      const h = packedLut[levels[i]];
      out[i] = (table[((b & 0xff) << 8) | (h & 0xff)] | (table[(b & 0xff00) | ((h >> 8) & 0xff)] << 8) | (table[((b >> 8) & 0xff00) | ((h >> 16) & 0xff)] << 16) | 0xff000000) >>> 0;
    }
    return new Uint8ClampedArray(out.buffer);
  }

  /** The value at a fraction q of the sorted values, linearly interpolated (numpy.percentile).
   *  Reorders ``values``. */
  function percentileInPlace(a, q) {
    const position = q * (a.length - 1);
    const k = Math.floor(position);
    const below = select(a, k);
    if (k + 1 >= a.length) return below;
    let above = Infinity;
    for (let i = k + 1; i < a.length; i++) above = Math.min(above, a[i]);
    return below + (position - k) * (above - below);
  }

  /** Hoare's quickselect: the k-th smallest, leaving smaller values before it and larger after. */
  function select(a, k) {
    let lo = 0;
    let hi = a.length - 1;
    while (hi > lo) {
      const pivot = a[(lo + hi) >> 1];
      let i = lo;
      let j = hi;
      while (i <= j) {
        while (a[i] < pivot) i++;
        while (a[j] > pivot) j--;
        if (i <= j) {
          const t = a[i];
          a[i++] = a[j];
          a[j--] = t;
        }
      }
      if (k <= j) hi = j;
      else if (k >= i) lo = i;
      else break;
    }
    return a[k];
  }

  /** A signed (h, w, 3) gradient at mid-grey, ±its 99th-percentile spread to 0 and 255, as RGBA
   *  (core.render.gradient_image). */
  function gradientImage(values) {
    const n = values.length;
    let sum = 0;
    for (let i = 0; i < n; i++) sum += values[i];
    const mean = Math.fround(sum / n);
    const centred = new Float32Array(n);
    const magnitudes = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const c = Math.fround(values[i] - mean);
      centred[i] = c;
      magnitudes[i] = Math.abs(c);
    }
    const spread = percentileInPlace(magnitudes, 0.99);
    const shown = spread > 0 && Number.isFinite(spread);
    const out = new Uint8ClampedArray((n / 3) * 4);
    for (let p = 0, i = 0; i < n; p += 4, i += 3) {
      for (let c = 0; c < 3; c++) {
        const v = shown ? Math.min(1, Math.max(0, Math.fround(0.5 + Math.fround(0.5 * Math.fround(centred[i + c] / spread))))) : 0.5;
        out[p + c] = rint(Math.fround(v * 255));
      }
      out[p + 3] = 255;
    }
    return out;
  }

  /** Guided backprop × the map, per channel: Guided Grad-CAM before it is shown. */
  function guidedTimesMap(guided, cam01) {
    const out = new Float32Array(guided.length);
    for (let i = 0; i < guided.length; i++) out[i] = guided[i] * cam01[(i / 3) | 0];
    return out;
  }

  /** base64 of zlib-deflated bytes, inflated. */
  async function inflate(encoded) {
    const packed = Uint8Array.from(atob(encoded), (ch) => ch.charCodeAt(0));
    const stream = new Blob([packed]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  /** An array from core.payload.pack_array: base64 of deflated byte planes, little-endian. */
  async function unpackArray(encoded, Type) {
    const planes = await inflate(encoded);
    const size = Type.BYTES_PER_ELEMENT;
    const count = planes.length / size;
    const bytes = new Uint8Array(planes.length);
    for (let b = 0; b < size; b++) for (let i = 0; i < count; i++) bytes[i * size + b] = planes[b * count + i];
    return new Type(bytes.buffer);
  }

  /** (height, width, channels) levels from core.payload.pack_levels: each level less the mean of
   *  its left and upper neighbours (0 outside), zigzagged, one byte each below 255; for each 255,
   *  in order, the value − 255 follows the last pixel's byte: all their low bytes, then high. */
  async function unpackLevels(encoded, width, height, channels) {
    const bytes = await inflate(encoded);
    const row = width * channels;
    const out = new Uint16Array(row * height);
    const escapes = (bytes.length - out.length) / 2;
    for (let i = 0, low = out.length; i < out.length; i++) {
      let z = bytes[i];
      if (z === 255) {
        z = 255 + (bytes[low] | (bytes[low + escapes] << 8));
        low++;
      }
      const left = i % row >= channels ? out[i - channels] : 0;
      const up = i >= row ? out[i - row] : 0;
      out[i] = ((left + up) >> 1) + (z & 1 ? -((z + 1) >> 1) : z >> 1);
    }
    return out;
  }

  /** The paper's localisation (core/localise.py): the bounding box [left, top, right, bottom),
   *  right and bottom exclusive, of the largest 8-connected region where cam01 > t·max; null
   *  for a blank map. Regions are found in raster order, so a tie goes to the first, as OpenCV's. */
  function localise(cam01, w, h, threshold) {
    let peak = 0;
    for (const v of cam01) peak = Math.max(peak, v);
    if (!(peak > 0)) return null;
    const cut = Math.fround(threshold * peak);
    const seen = new Uint8Array(w * h);
    const stack = new Int32Array(w * h);
    let best = null;
    for (let start = 0; start < w * h; start++) {
      if (seen[start] || !(cam01[start] > cut)) continue;
      let size = 0;
      let top = 0;
      const box = [w, h, 0, 0];
      stack[top++] = start;
      seen[start] = 1;
      while (top) {
        const i = stack[--top];
        const x = i % w;
        const y = (i / w) | 0;
        size++;
        box[0] = Math.min(box[0], x);
        box[1] = Math.min(box[1], y);
        box[2] = Math.max(box[2], x + 1);
        box[3] = Math.max(box[3], y + 1);
        for (let dy = -1; dy <= 1; dy++) {
          for (let dx = -1; dx <= 1; dx++) {
            const nx = x + dx;
            const ny = y + dy;
            const n = ny * w + nx;
            if (nx >= 0 && nx < w && ny >= 0 && ny < h && !seen[n] && cam01[n] > cut) {
              seen[n] = 1;
              stack[top++] = n;
            }
          }
        }
      }
      if (!best || size > best.size) best = { size, box };
    }
    return best.box;
  }

  /** A copy of the RGBA picture with the box outlined: core.render.draw_box's white line on a black rim. */
  function drawBox(rgba, w, h, box) {
    const out = new Uint8ClampedArray(rgba);
    if (!box) return out;
    const [left, top, right, bottom] = box;
    const line = Math.max(2, rint(Math.min(w, h) / 100));
    // Pillow's rectangle of width n: the n pixels inside each edge of [x0, x1] × [y0, y1], inclusive.
    const rectangle = (x0, y0, x1, y1, width, value) => {
      for (let y = y0; y <= y1; y++) {
        for (let x = x0; x <= x1; x++) {
          if (x - x0 < width || x1 - x < width || y - y0 < width || y1 - y < width) out.set([value, value, value], 4 * (y * w + x));
        }
      }
    };
    rectangle(left, top, right - 1, bottom - 1, line + 2, 0);
    if (right - left > 2 && bottom - top > 2) rectangle(left + 1, top + 1, right - 2, bottom - 2, line, 255);
    return out;
  }

  /** Levels back to float32: lo + (hi − lo)·q / (2^bits − 1) (core.payload.from_levels). */
  function fromLevels(levels, lo, hi, bits) {
    const top = 2 ** bits - 1;
    const out = new Float32Array(levels.length);
    for (let i = 0; i < levels.length; i++) out[i] = lo + ((hi - lo) * levels[i]) / top;
    return out;
  }

  async function decodePicture(url) {
    const blob = await (await fetch(url)).blob();
    const bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const context = canvas.getContext("2d");
    context.drawImage(bitmap, 0, 0);
    return context.getImageData(0, 0, bitmap.width, bitmap.height).data;
  }

  // ----- the viewer: what the page holds, and drawing the view the controls ask for ----------

  class Viewer {
    constructor(element, trigger) {
      this.element = element;
      this.trigger = trigger;
      this.view = { layer: 4, classIdx: null, colormap: "jet", opacity: 0.5, counterfactual: false, method: "gradcam", box: false, threshold: 0.15 };
      this.held = null; // {key, size, input, box, stages, labels, predictions, original, maps: {}, guided: {}}
      this.cams = new Map(); // "method/class/cf/layer" → {cam01, levels} at display size
      this.pictures = new Map(); // guided backprop per class, Guided Grad-CAM per map: RGBA
      this.luts = new Map(); // colormap → packed table
      this.blend = { opacity: NaN, table: null };
      this.shown = new WeakMap(); // canvas → what it shows, so that an unchanged one is not put again
      this.requested = new Set();
      this.frame = 0; // the animation frame that will draw, if one is asked
      this.drewThisFrame = 0; // set from a draw in an event until the next frame
      this.drawn = 0; // draws so far: a test waits for the next one
    }

    /** Merges a payload or a piece of one; a new key starts a new explanation. */
    async receive(payload) {
      if (!payload || !payload.key) return;
      // The same first view again (the image control fires its change event twice when a photo
      // replaces another) brings nothing new, and starting over would drop the classes held since.
      if (payload.original && this.held && this.held.key === payload.key && this.view.method === payload.method) return;
      if (!payload.original && (!this.held || this.held.key !== payload.key)) return; // a piece of an explanation the page has left
      const [w, h] = payload.original ? payload.size : this.held.size;
      // Side by side, so that the picture's decoding and the inflating of the maps overlap.
      const [original, maps, guided] = await Promise.all([
        payload.original ? decodePicture(payload.original) : null,
        Promise.all(Object.entries(payload.maps || {}).map(async ([name, stages]) => [name, await Promise.all(stages.map(async (s) => s && { grid: s.grid, values: await unpackArray(s.values, Float32Array) }))])),
        Promise.all(Object.entries(payload.guided || {}).map(async ([c, g]) => [c, fromLevels(await unpackLevels(g.levels, w, h, 3), g.lo, g.hi, GRADCAM.guidedBits)])),
      ]);
      if (original) {
        this.held = { ...payload, maps: {}, guided: {}, original };
        this.cams.clear();
        this.pictures.clear();
        this.requested.clear();
        this.view.classIdx = payload.predictions.length ? payload.predictions[0].index : null;
        this.view.method = payload.method;
      }
      const held = this.held;
      for (const [name, stages] of maps) {
        const before = held.maps[name] || [];
        held.maps[name] = stages.map((stage, n) => stage || before[n] || null); // a later piece fills the stages the first lacked
      }
      for (const [c, values] of guided) held.guided[c] = values;
      // Only the answer to a method change switches the view's method: a piece of the rest stream
      // that arrives after it still carries the method the explanation was first drawn with.
      if (payload.switchMethod) this.view.method = payload.method;
      this.schedule();
      this.warm();
    }

    /** When the page is idle, prepares what a switch will need (each map over the picture, each
     *  guided picture and Guided Grad-CAM), so that the switch itself only colours, blends and puts. */
    warm() {
      const held = this.held;
      const jobs = [];
      const maps = Object.entries(held.maps);
      for (const [name, stages] of maps) stages.forEach((stage, n) => stage && jobs.push(() => this.cam(name, n + 1)));
      for (const c of Object.keys(held.guided)) jobs.push(() => this.guidedPicture(c));
      for (const [name, stages] of maps) stages.forEach((stage, n) => stage && held.guided[this.classOf(name)] && jobs.push(() => this.product(name, n + 1)));
      const step = (deadline) => {
        while (jobs.length && this.held === held && deadline.timeRemaining() > 2) jobs.shift()();
        if (jobs.length && this.held === held) requestIdleCallback(step);
      };
      requestIdleCallback(step);
    }

    /** Changes the view and draws it in the control's own event, so that the coming frame shows
     *  it; changes faster than frames (a drag) are drawn once more, in the next frame, not queued. */
    set(change) {
      Object.assign(this.view, change);
      if (this.frame || this.drewThisFrame) return this.schedule();
      this.drewThisFrame = requestAnimationFrame(() => (this.drewThisFrame = 0));
      this.draw();
    }

    schedule() {
      if (!this.frame) this.frame = requestAnimationFrame(() => this.draw());
    }

    mapName(classIdx, counterfactual) {
      const cf = counterfactual && GRADCAM.counterfactualMethods.includes(this.view.method);
      return `${this.view.method}/${classIdx}/${cf ? 1 : 0}`;
    }

    classOf(name) {
      return name.split("/")[1];
    }

    cam(name, layer) {
      const id = `${name}/${layer}`;
      if (!this.cams.has(id)) {
        const { grid, values } = this.held.maps[name][layer - 1];
        const cam01 = normalise01(overPicture(values, grid, this.held.size, this.held.input, this.held.box));
        this.cams.set(id, { cam01, levels: levels(cam01) });
      }
      return this.cams.get(id);
    }

    picture(id, make) {
      if (!this.pictures.has(id)) this.pictures.set(id, make());
      return this.pictures.get(id);
    }

    guidedPicture(classIdx) {
      return this.picture(`guided/${classIdx}`, () => gradientImage(this.held.guided[classIdx]));
    }

    /** Guided Grad-CAM of the map at the layer: its own mean and spread, so one per map. */
    product(name, layer) {
      return this.picture(`product/${name}/${layer}`, () => gradientImage(guidedTimesMap(this.held.guided[this.classOf(name)], this.cam(name, layer).cam01)));
    }

    lut(colormap) {
      if (!this.luts.has(colormap)) this.luts.set(colormap, packLut(GRADCAM.colormaps[colormap]));
      return this.luts.get(colormap);
    }

    blendTable(opacity) {
      if (this.blend.opacity !== opacity) this.blend = { opacity, table: blendTable(opacity) };
      return this.blend.table;
    }

    /** The paper's box of a map, kept for the last threshold asked. */
    boxOf(cam, threshold) {
      if (!cam.box || cam.box.threshold !== threshold) cam.box = { threshold, value: localise(cam.cam01, this.held.size[0], this.held.size[1], threshold) };
      return cam.box.value;
    }

    /** Asks the server for maps the page cannot expect otherwise: a class outside the top-k, or a perturbation method's other class. */
    request(classIdx) {
      const key = `${this.view.method}/${classIdx}`;
      if (this.requested.has(key)) return;
      this.requested.add(key);
      this.trigger("select", { index: classIdx, value: this.view.method });
    }

    pending(classIdx) {
      const inTopK = this.held.predictions.some((p) => p.index === classIdx);
      return inTopK && !GRADCAM.perturbationMethods.includes(this.view.method);
    }

    draw() {
      this.frame = 0;
      const held = this.held;
      const v = this.view;
      const status = this.element.querySelector(".viewer-status");
      if (!held) return;
      const classIdx = v.classIdx;
      const label = held.labels[classIdx] || `class ${classIdx}`;
      const method = GRADCAM.methodNames[v.method] || v.method;
      const name = this.mapName(classIdx, v.counterfactual);
      const [w, h] = held.size;
      const canvases = this.element.querySelectorAll("canvas");
      for (const canvas of canvases) {
        if (canvas.width === w && canvas.height === h) continue;
        [canvas.width, canvas.height] = [w, h]; // which clears it
        this.shown.delete(canvas);
      }
      // A canvas is put only when its text or inputs changed; make() gives its RGBA, or null while it is being computed.
      const show = (n, inputs, text, make) => {
        const canvas = canvases[n];
        const shows = `${held.key}|${w}×${h}|${inputs}|${text}`;
        if (this.shown.get(canvas) === shows) return;
        this.shown.set(canvas, shows);
        const rgba = make && make();
        if (rgba) canvas.getContext("2d").putImageData(new ImageData(rgba, w, h), 0, 0);
        else canvas.getContext("2d").clearRect(0, 0, w, h);
        canvas.classList.toggle("viewer-waiting", !rgba);
        canvas.setAttribute("aria-label", text);
      };
      const computing = (what) => `${label} ${what}: still being computed`;
      const what = `${label}, layer${v.layer} (${held.stages[v.layer - 1]}), ${held.model}`;
      show(0, "original", `Original picture, ${held.model}`, () => held.original);
      const notes = [];
      if (v.counterfactual && !GRADCAM.counterfactualMethods.includes(v.method)) notes.push(`${method} has no counterfactual: it shows the class's own map.`);
      const maps = held.maps[name] || [];
      const stage = maps[v.layer - 1];
      const blend = `${v.colormap}/${v.opacity}/${v.box ? v.threshold : "no box"}`;
      const overlayAt = (layer) => () => {
        const cam = this.cam(name, layer);
        const picture = overlay(held.original, cam.levels, this.lut(v.colormap), this.blendTable(v.opacity));
        return v.box ? drawBox(picture, w, h, this.boxOf(cam, v.threshold)) : picture;
      };
      if (!maps.length && !this.pending(classIdx)) this.request(classIdx);
      if (stage) {
        show(1, `${name}/${v.layer}/${v.colormap}`, `${method} heatmap of ${what}`, () => heatmap(this.cam(name, v.layer).levels, this.lut(v.colormap)));
        show(2, `${name}/${v.layer}/${blend}`, `Overlay of the ${method} map of ${what}`, overlayAt(v.layer));
      } else {
        for (const n of [1, 2, 4]) show(n, "waiting", computing(`at layer${v.layer}`), null);
        notes.push(`⏳ ${label} · layer${v.layer}: ${held.words.computing}…`);
      }
      for (let layer = 1; layer <= 4; layer++) {
        if (maps[layer - 1]) show(4 + layer, `${name}/${layer}/${blend}`, `Overlay at layer${layer} (${held.stages[layer - 1]}) for ${label}`, overlayAt(layer));
        else show(4 + layer, "waiting", computing(`at layer${layer}`), null);
      }
      const guided = held.guided[classIdx];
      if (guided) show(3, "guided", `Guided backprop for ${label}`, () => this.guidedPicture(classIdx));
      else show(3, "waiting", `Guided backprop for ${label}: still being computed`, null);
      if (stage && guided) show(4, `${name}/${v.layer}`, `Guided ${method} of ${what}`, () => this.product(name, v.layer));
      else if (stage) show(4, "waiting", `Guided ${method} of ${what}: still being computed`, null);
      if (!guided) notes.push(`⏳ ${label} · guided backprop: ${held.words.computing}…`);
      // Text is set only when it differs: each write would make the browser lay the page out again.
      const setText = (node, text) => node.textContent !== text && (node.textContent = text);
      this.element.querySelectorAll(".viewer-panels figcaption").forEach((caption, n) => setText(caption, held.words.titles[n].replace("{method}", method)));
      setText(this.element.querySelector(".viewer-strip-title"), held.words.strip);
      this.element.querySelectorAll(".viewer-strip figcaption").forEach((caption, n) => setText(caption, `layer${n + 1} · ${held.stages[n]}`));
      setText(status, notes.join(" "));
      this.drawn++;
      this.element.dataset.drawn = String(this.drawn);
      const complete = maps.length === 4 && maps.every(Boolean) && Boolean(guided);
      // heatmap: the original, heatmap and overlay are drawn; drawn: all five panels; complete: the strip too.
      this.element.dataset.view = JSON.stringify({ ...v, key: held.key, heatmap: Boolean(stage), drawn: Boolean(stage && guided), complete });
    }
  }

  /** Called by the gr.HTML's js_on_load: one viewer per page. */
  function mount(element, props, watch, trigger) {
    const viewer = new Viewer(element, trigger);
    window.gradcamViewer = viewer;
    // One payload at a time, in arrival order: a piece must not overtake the first view it adds to.
    let queue = Promise.resolve();
    const receive = () => {
      const payload = typeof props.value === "string" && props.value ? JSON.parse(props.value) : props.value; // demo/viewer.py: ViewerHTML
      queue = queue.then(() => viewer.receive(payload)).catch((error) => console.error("viewer:", error));
    };
    watch("value", receive);
    receive();
    element.addEventListener("click", (event) => {
      const figure = event.target.closest("figure");
      if (figure) figure.classList.toggle("viewer-enlarged"); // a panel at the page's width, for a projector
    });
  }

  window.GradcamViewer = { mount, rint, axisWeights, resize, overPicture, normalise01, levels, packLut, heatmap, blendTable, overlay, percentileInPlace, gradientImage, guidedTimesMap, unpackArray, unpackLevels, fromLevels, localise, drawBox };
})();
