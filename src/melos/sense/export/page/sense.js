"use strict";
// The melos sense page. File mode: lanes of one track's analysis and haptic track on one time
// axis, a playhead on the audio element's clock, vibration with the haptic transients. Live mode
// (?live=ws://HOST:PORT): the last few seconds of a WebSocket event stream, vibrating as taps
// arrive. The data format is described in melos/sense/export/html.py.

const DATA = JSON.parse(document.getElementById("sense-data").textContent);
const CAN_VIBRATE = "vibrate" in navigator;
const COLOUR = {
  wave: "#8fb3d9", onset: "#ff6b6b", beat: "#5aa9ff", downbeat: "#d0b3ff", bed: "#ffb454",
  sharpness: "#6fe0c0", stems: ["#9ad17b", "#f28fb1", "#8fd3f2", "#e8d36b"], grid: "#262b35",
  text: "#9aa0ab", sections: ["#26364f", "#3a2d4f"], chords: ["#2c4a3e", "#3e3a5c"], loudness: "#e8e8ea",
};
const NO_SECTIONS = "no sections: run melos sense with --model ENCODER to split the track into sections";
const NO_SECTIONS_SHORT = "no sections (--model finds them)";
// Vibration: Chrome plays at most 99 pattern entries, so taps go in patterns of at most 49
// ([0, pause, pulse, pause, pulse, ...]) covering HORIZON seconds, each timed from the audio
// clock when it is sent, so the vibrator's own timer never drifts for long.
const VIBE = {horizon: 2.0, lead: 0.25, maxEntries: 99, minMs: 10, maxMs: 40, gapMs: 10};
const LIVE = {window: 6.0, keep: 20.0};

// ---- decoding -------------------------------------------------------------------------------
function bytes(b64) {
  const s = atob(b64), out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
function curve(c) {
  const b = bytes(c.bytes), v = new Float32Array(b.length);
  for (let i = 0; i < b.length; i++) v[i] = b[i] / 255 * c.scale;
  return {step: c.step, v};
}
function waveform(w) {
  const lo = new Int8Array(bytes(w.min).buffer), hi = new Int8Array(bytes(w.max).buffer);
  return {step: w.step, lo, hi};
}

// ---- small helpers --------------------------------------------------------------------------
const $ = (id) => document.getElementById(id);
const clamp = (x, lo, hi) => Math.min(Math.max(x, lo), hi);
function clock(t) {  // m:ss.s
  const tenths = Math.round(t * 10), m = Math.floor(tenths / 600), s = (tenths - 600 * m) / 10;
  return m + ":" + (s < 10 ? "0" : "") + s.toFixed(1);
}
function escape(text) {
  const div = document.createElement("div");
  div.textContent = text;
  return div.innerHTML;
}
function firstAtOrAfter(times, t) {  // binary search in sorted times
  let lo = 0, hi = times.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (times[mid] < t) lo = mid + 1; else hi = mid; }
  return lo;
}
function tapMs(intensity) { return Math.round(VIBE.minMs + (VIBE.maxMs - VIBE.minMs) * intensity); }
function vibrate(pattern) { if (CAN_VIBRATE) navigator.vibrate(pattern); }

// A canvas drawn in CSS pixels at the screen's resolution; lanes stacked top to bottom.
function sizeCanvas(canvas, labels, lanes) {
  const dpr = window.devicePixelRatio || 1, w = canvas.parentElement.clientWidth;
  const h = lanes.reduce((sum, lane) => sum + lane.height, 0);
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  canvas.style.height = h + "px";
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  labels.replaceChildren(...lanes.map((lane) => {
    const div = document.createElement("div");
    div.style.height = lane.height + "px";
    if (lane.name) div.dataset.lane = lane.name;
    div.innerHTML = `<span class="name">${lane.label || ""}</span>`;
    if (lane.axis) {  // [[height fraction (0 bottom), text]]: tick labels at the plot's left edge
      const axis = document.createElement("span");
      axis.className = "axis";
      axis.innerHTML = lane.axis.map(([f, text]) =>
        `<span class="tick" style="top:${clamp((1 - f) * lane.height, 6, lane.height - 6)}px">${text}</span>`).join("");
      div.append(axis);
    }
    return div;
  }));
  return {ctx, w, h};
}
function key(items) {  // a coloured legend line under a lane's label
  return "<small>" + items.map(([name, c]) => `<span style="color:${c}">${name}</span>`).join(" ") + "</small>";
}
function tickStep(span, w) {
  for (const s of [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600]) if (span / s <= w / 70) return s;
  return 1200;
}
function drawGrid(ctx, view, lanes, format) {  // lane separators, time grid and labels at the bottom
  const step = tickStep(view.t1 - view.t0, view.w), h = lanes.reduce((sum, lane) => sum + lane.height, 0);
  ctx.fillStyle = COLOUR.grid;
  let y = 0;
  for (const lane of lanes.slice(0, -1)) { y += lane.height; ctx.fillRect(0, y - 1, view.w, 1); }
  ctx.font = "11px system-ui, sans-serif";
  for (let k = Math.ceil(view.t0 / step - 1e-9); k * step <= view.t1 + 1e-9; k++) {
    const x = view.x(k * step), text = format(k * step, step);
    ctx.fillStyle = COLOUR.grid;
    ctx.fillRect(Math.round(x), 0, 1, h - 18);
    ctx.fillStyle = COLOUR.text;
    ctx.textAlign = x < 20 ? "left" : x > view.w - 20 ? "right" : "center";
    ctx.fillText(text, x, h - 4);
  }
}
function tick(t, step) {  // m:ss, with tenths when the grid is finer than a second
  const m = Math.floor(t / 60 + 1e-9), s = t - 60 * m;
  return m + ":" + (s < 9.95 ? "0" : "") + s.toFixed(step < 1 ? 1 : 0);
}
function drawStems(ctx, view, y, h, times, heights, colours) {  // a vertical line per event
  const i0 = firstAtOrAfter(times, view.t0), i1 = firstAtOrAfter(times, view.t1 + 1e-9);
  if (i1 - i0 > view.w / 4) {  // closer than 4 px on average: per pixel column the tallest, no caps
    const best = new Int32Array(Math.ceil(view.w)).fill(-1);
    for (let i = i0; i < i1; i++) {
      const px = clamp(Math.floor(view.x(times[i])), 0, best.length - 1);
      if (best[px] < 0 || heights(i) > heights(best[px])) best[px] = i;
    }
    best.forEach((i, px) => {
      if (i < 0) return;
      const top = y + h - Math.max(1, heights(i) * (h - 3));
      ctx.fillStyle = colours(i);
      ctx.fillRect(px, top, 1, y + h - top);
    });
    return;
  }
  for (let i = i0; i < i1; i++) {
    const x = Math.round(view.x(times[i])), top = y + h - Math.max(1, heights(i) * (h - 3));
    ctx.fillStyle = colours(i);
    ctx.fillRect(x - 0.75, top, 1.5, y + h - top);
    ctx.fillRect(x - 1.5, top, 3, 2);
  }
}
function pooled(c, view, w, reduce) {  // per pixel column, the max or mean of the curve under it
  const out = new Float32Array(w), per = (view.t1 - view.t0) / w;
  for (let px = 0; px < w; px++) {
    const a = view.t0 + px * per;
    const i0 = clamp(Math.floor(a / c.step), 0, c.v.length - 1);
    const i1 = clamp(Math.ceil((a + per) / c.step), i0 + 1, c.v.length);
    let m = 0, s = 0;
    for (let i = i0; i < i1; i++) { m = Math.max(m, c.v[i]); s += c.v[i]; }
    out[px] = reduce === "mean" ? s / (i1 - i0) : m;
  }
  return out;
}
function drawArea(ctx, values, y, h, top, colour, alpha) {  // values / top filled from the lane's floor
  ctx.globalAlpha = alpha;
  ctx.fillStyle = colour;
  ctx.beginPath();
  ctx.moveTo(0, y + h);
  values.forEach((v, px) => ctx.lineTo(px + 0.5, y + h - clamp(v / top, 0, 1) * (h - 2)));
  ctx.lineTo(values.length, y + h);
  ctx.fill();
  ctx.globalAlpha = 1;
}
function drawLine(ctx, values, y, h, colour) {
  ctx.strokeStyle = colour;
  ctx.lineWidth = 1.2;
  ctx.beginPath();
  values.forEach((v, px) => ctx.lineTo(px + 0.5, y + h - clamp(v, 0, 1) * (h - 2)));
  ctx.stroke();
}

// ---- file mode ------------------------------------------------------------------------------
function chordName(label) {  // Harte "A:min" -> "Am", "C:maj" -> "C", "N" -> ""
  if (!label || label === "N" || label === "X") return "";
  const [root, quality] = label.split(":");
  return root + ({maj: "", min: "m"}[quality || "maj"] ?? ":" + quality);
}
function hz(f) { return f >= 1000 ? f / 1000 + "k" : String(f); }
function fixed(x) { return x >= 10 ? x.toFixed(0) : String(Number(x.toPrecision(2))); }
function unitTicks(top, height) {  // a middle tick only where the lane has room for three
  return height >= 50 ? [[1, fixed(top)], [0.5, fixed(top / 2)], [0, "0"]] : [[1, fixed(top)], [0, "0"]];
}
function colourBar(palette, range) {  // a vertical colour scale for the spectrogram's label
  return `<span class="colour-bar" title="power, dB below the loudest bin">` +
    `<i style="background:linear-gradient(to top,${palette.join(",")})"></i>` +
    `<b>0 dB</b><b>-${range}</b></span>`;
}
function spectrogramLevels(spec, redraw) {  // each level's tiles as images, drawn once loaded
  return spec.levels.map((level) => ({step: level.step, tiles: level.tiles.map((tile) => {
    const image = new Image();
    image.onload = redraw;
    image.src = tile.png;
    return {column: tile.column, image};
  })}));
}
function pickLevel(levels, secondsPerPixel) {  // the coarsest level still as fine as a pixel
  let best = levels[0];
  for (const level of levels) if (level.step <= secondsPerPixel) best = level;
  return best;
}
function every(count, spanPx, minPx) {  // label every n-th of `count` marks spread over spanPx
  const gap = spanPx / Math.max(count, 1);
  for (const n of [1, 2, 4, 5, 10, 20, 50, 100, 200, 500]) if (gap * n >= minPx) return n;
  return 1000;
}

function fileMode() {
  const audio = $("audio"), plot = $("plot"), canvas = $("canvas"), playhead = $("playhead");
  const button = $("play"), zoom = $("zoom"), vibrateBox = $("vibrate");
  const duration = DATA.duration;
  const wave = waveform(DATA.waveform);
  const curves = Object.fromEntries(Object.entries(DATA.curves).map(([name, c]) => [name, curve(c)]));
  const stems = Object.keys(curves).filter((n) => n.startsWith("stem:"));
  const stemTop = Math.max(1e-9, ...stems.map((n) => DATA.curves[n].scale));
  const taps = DATA.transients, chords = DATA.chords, loud = DATA.loudness, spec = DATA.spectrogram;
  const levels = spectrogramLevels(spec, () => draw());
  const peak = DATA.waveform.peak;
  const LUFS = {top: 0, bottom: -60};

  const layerColour = (i) => COLOUR[taps.layer[i]] || COLOUR.onset;
  const lanes = [
    {name: "waveform", label: "waveform<br><small>amplitude (full scale 1)</small>", height: 60,
     axis: [[1, "+" + fixed(peak)], [0.5, "0"], [0, "-" + fixed(peak)]], draw: (ctx, view, y, h) => {
      const per = (view.t1 - view.t0) / view.w, mid = y + h / 2, scale = (h / 2 - 2) / 127;
      ctx.fillStyle = COLOUR.wave;
      for (let px = 0; px < view.w; px++) {
        const i0 = clamp(Math.floor((view.t0 + px * per) / wave.step), 0, wave.lo.length - 1);
        const i1 = clamp(Math.ceil((view.t0 + (px + 1) * per) / wave.step), i0 + 1, wave.lo.length);
        let lo = 127, hi = -127;
        for (let i = i0; i < i1; i++) { lo = Math.min(lo, wave.lo[i]); hi = Math.max(hi, wave.hi[i]); }
        ctx.fillRect(px, mid - hi * scale, 1, Math.max(1, (hi - lo) * scale));
      }
    }},
    {name: "spectrogram", label: "mel spectrogram<br><small>Hz</small><br>" + colourBar(spec.palette, spec.db_range),
     height: 110, axis: spec.ticks.map(([f, y]) => [y, hz(f)]), draw: (ctx, view, y, h) => {
      const level = pickLevel(levels, (view.t1 - view.t0) / view.w);
      plot.dataset.spectrogramStep = level.step;
      ctx.imageSmoothingEnabled = true;
      for (const {column, image} of level.tiles) {
        if (!image.complete || !image.naturalWidth) continue;
        const a = column * level.step, b = a + image.naturalWidth * level.step;  // the tile's time span
        const t0 = Math.max(a, view.t0), t1 = Math.min(b, view.t1);
        if (t1 <= t0) continue;
        ctx.drawImage(image, (t0 - a) / level.step, 0, (t1 - t0) / level.step, image.naturalHeight,
                      view.x(t0), y, view.x(t1) - view.x(t0), h);
      }
    }},
    {name: "chords", label: "chords<br><small>" + (DATA.key ? "key " + escape(DATA.key) : "no key found") +
            "</small>", height: 26, draw: drawChords},
    {name: "beats", label: "beats, bar numbers<br>" + key([["beat", COLOUR.beat], ["downbeat", COLOUR.downbeat]]),
     height: 32, draw: drawBeats},
    {name: "onsets", label: "onsets<br><small>strength 0-1</small>", height: 38, axis: unitTicks(1, 38),
     draw: (ctx, view, y, h) =>
      drawStems(ctx, view, y, h, DATA.onsets.time, (i) => DATA.onsets.strength[i], () => COLOUR.onset)},
    ...stems.map((name, k) => ({name: "stem", label: escape(name.slice(5)) + " stem<br><small>RMS</small>",
      height: 34, axis: [[1, fixed(stemTop)], [0, "0"]], draw: (ctx, view, y, h) =>
      drawArea(ctx, pooled(curves[name], view, view.w, "max"), y, h, stemTop, COLOUR.stems[k % 4], 0.85)})),
    {name: "loudness", label: "loudness<br><small>short-term LUFS" + (loud.integrated === null ? "" :
            "<br>integrated " + loud.integrated.toFixed(1)) + "</small>", height: 46,
     axis: [[1, "0"], [0.5, "-30"], [0, "-60"]], draw: drawLoudness},
    {name: "bed", label: "haptic bed<br>" + key([["amplitude", COLOUR.bed], ["sharpness", COLOUR.sharpness]]) +
            "<br><small>both 0-1</small>", height: 58, axis: unitTicks(1, 58),
     draw: (ctx, view, y, h) => {
       drawArea(ctx, pooled(curves["bed:amplitude"], view, view.w, "max"), y, h, 1, COLOUR.bed, 0.75);
       drawLine(ctx, pooled(curves["bed:frequency"], view, view.w, "mean"), y, h, COLOUR.sharpness);
     }},
    {name: "taps", label: "haptic taps<br>" + key([["onset", COLOUR.onset], ["beat", COLOUR.beat],
            ["down", COLOUR.downbeat]]) + "<br><small>intensity 0-1</small>", height: 58, axis: unitTicks(1, 58),
     draw: (ctx, view, y, h) => drawStems(ctx, view, y, h, taps.time, (i) => taps.intensity[i], layerColour)},
    DATA.sections.length ? {name: "sections", label: "sections", height: 30, draw: drawSections}
      : {name: "sections", label: "sections", height: 24, draw: drawNoSections},
    {name: "time", label: "", height: 20, draw: () => {}},  // the time axis
  ];

  function drawChords(ctx, view, y, h) {  // a block per chord, named where it fits
    ctx.font = "12px system-ui, sans-serif";
    ctx.textAlign = "left";
    for (let i = firstAtOrAfter(chords.end, view.t0); i < chords.start.length && chords.start[i] < view.t1; i++) {
      const name = chordName(chords.label[i]);
      if (!name) continue;
      const x0 = view.x(chords.start[i]), x1 = view.x(chords.end[i]);
      ctx.fillStyle = COLOUR.chords[i % 2];
      ctx.fillRect(x0, y + 2, Math.max(1, x1 - x0 - 1), h - 4);
      if (x1 - Math.max(x0, 0) >= ctx.measureText(name).width + 6) {
        ctx.fillStyle = "#eef2f8";
        ctx.fillText(name, Math.max(x0, 0) + 3, y + h / 2 + 4);
      }
    }
  }
  function drawBeats(ctx, view, y, h) {  // beats hidden when closer than 4 px; bar numbers thinned
    const span = view.t1 - view.t0, first = firstAtOrAfter(DATA.beats, view.t0);
    const shown = firstAtOrAfter(DATA.beats, view.t1 + 1e-9) - first;
    const bars = DATA.downbeats, b0 = firstAtOrAfter(bars, view.t0), b1 = firstAtOrAfter(bars, view.t1 + 1e-9);
    if (shown && view.w / shown >= 4) drawStems(ctx, view, y + 12, h - 12, DATA.beats, () => 0.6, () => COLOUR.beat);
    plot.dataset.beatsShown = shown && view.w / shown >= 4 ? "all" : "downbeats";
    const n = every(bars.length * span / Math.max(duration, 1e-9), view.w, 34);
    ctx.font = "10px system-ui, sans-serif";
    ctx.textAlign = "left";
    for (let i = b0; i < b1; i++) {
      const x = Math.round(view.x(bars[i]));
      ctx.fillStyle = COLOUR.downbeat;
      ctx.fillRect(x - 0.75, y + 12, 1.5, h - 12);
      if ((i + 1) % n === 0 || i === 0) ctx.fillText(String(i + 1), x + 2, y + 10);  // bar 1 = first downbeat
    }
    if (shown && view.w / shown < 4) {  // say why the beats are missing
      ctx.font = "10px system-ui, sans-serif";
      const text = view.w > 500 ? "bar lines only: zoom in for beats" : "zoom in for beats";
      const w = ctx.measureText(text).width + 8;
      ctx.fillStyle = "#171a21";
      ctx.fillRect(view.w - w, y + h - 13, w, 13);
      ctx.fillStyle = COLOUR.text;
      ctx.textAlign = "right";
      ctx.fillText(text, view.w - 4, y + h - 3);
    }
  }
  function drawLoudness(ctx, view, y, h) {  // short-term curve; the integrated value as a dashed line
    const toY = (lufs) => y + h - 1 - clamp((lufs - LUFS.bottom) / (LUFS.top - LUFS.bottom), 0, 1) * (h - 3);
    if (loud.short_term.length) {
      const per = (view.t1 - view.t0) / view.w, values = loud.short_term, n = values.length;
      ctx.strokeStyle = COLOUR.loudness;
      ctx.lineWidth = 1.2;
      ctx.beginPath();
      for (let px = 0; px < view.w; px++) {
        const i = clamp(Math.round((view.t0 + (px + 0.5) * per) * loud.rate), 0, n - 1);
        ctx.lineTo(px + 0.5, toY(values[i]));
      }
      ctx.stroke();
    }
    if (loud.integrated !== null) {
      ctx.fillStyle = COLOUR.text;
      for (let x = 0; x < view.w; x += 8) ctx.fillRect(x, Math.round(toY(loud.integrated)), 4, 1);
    }
  }
  function drawNoSections(ctx, view, y, h) {
    ctx.font = "12px system-ui, sans-serif";
    ctx.textAlign = "left";
    ctx.fillStyle = COLOUR.text;
    const fits = ctx.measureText(NO_SECTIONS).width + 12 < view.w;
    ctx.fillText(fits ? NO_SECTIONS : NO_SECTIONS_SHORT, 6, y + h / 2 + 4);
  }
  function drawSections(ctx, view, y, h) {
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "left";
    DATA.sections.forEach((s, k) => {
      const x0 = view.x(s.start), x1 = view.x(s.end);
      if (x1 < 0 || x0 > view.w) return;
      ctx.fillStyle = COLOUR.sections[k % 2];
      ctx.fillRect(x0, y + 2, x1 - x0 - 1, h - 4);
      const tags = Object.entries(s.tags).sort((a, b) => b[1] - a[1]).slice(0, 2);
      const text = tags.map(([t, p]) => t + " " + p.toFixed(2)).join(", ") + "  x" + s.intensity.toFixed(2);
      ctx.save();
      ctx.beginPath();
      ctx.rect(x0, y, x1 - x0 - 4, h);
      ctx.clip();
      ctx.fillStyle = "#dfe6f2";
      ctx.fillText(text, Math.max(x0, 0) + 5, y + h / 2 + 4);
      ctx.restore();
    });
  }

  const view = {t0: 0, t1: duration, w: 1, x: (t) => (t - view.t0) / (view.t1 - view.t0) * view.w};
  let surface = null;
  function resize() { surface = sizeCanvas(canvas, $("labels"), lanes); view.w = surface.w; draw(); }
  function draw() {
    if (!surface) return;
    const ctx = surface.ctx;
    ctx.clearRect(0, 0, surface.w, surface.h);
    drawGrid(ctx, view, lanes, tick);
    let y = 0;
    for (const lane of lanes) { lane.draw(ctx, view, y, lane.height); y += lane.height; }
    plot.dataset.t0 = view.t0;
    plot.dataset.t1 = view.t1;
  }
  function follow(t) {  // with a zoomed view, turn the page when the playhead nears its edge
    const span = Number(zoom.value);
    if (!span || span >= duration) {
      if (view.t0 !== 0 || view.t1 !== duration) { view.t0 = 0; view.t1 = duration; draw(); }
      return;
    }
    if (view.t1 - view.t0 !== span || t < view.t0 || t > view.t0 + 0.92 * span) {
      view.t0 = clamp(t - 0.08 * span, 0, duration - span);
      view.t1 = view.t0 + span;
      draw();
    }
  }

  // Vibration: the taps of the next HORIZON seconds go as one pattern, timed from the audio clock;
  // LEAD seconds before it runs out, between two pulses, the next pattern replaces it (a call
  // cancels what is left of the last one, so the new one starts again from the clock).
  let sent = null;  // the pattern playing: its pulses [[start, end], ...] in audio time, and its end
  function vibrateReset() { if (sent) vibrate(0); sent = null; }
  function vibrateTick(now) {
    if (!CAN_VIBRATE || !vibrateBox.checked || audio.paused || audio.seeking) return;
    if (sent && (now < sent.until - VIBE.lead || sent.pulses.some(([a, b]) => a <= now && now < b))) return;
    const pattern = [0], pulses = [], n = taps.time.length;
    let end = 0;  // ms after now where the last pulse ends
    for (let i = firstAtOrAfter(taps.time, now); i < n && taps.time[i] < now + VIBE.horizon; i++) {
      if (pattern.length + 2 > VIBE.maxEntries) break;
      const start = Math.round((taps.time[i] - now) * 1000);
      let ms = tapMs(taps.intensity[i]);
      if (i + 1 < n) ms = Math.min(ms, Math.round((taps.time[i + 1] - now) * 1000) - start - VIBE.gapMs);
      if (start < end || ms < 1) continue;  // closer than 11 ms to the next tap: one pulse for both
      pattern.push(start - end, ms);
      pulses.push([now + start / 1000, now + (start + ms) / 1000]);
      end = start + ms;
    }
    if (pulses.length) vibrate(pattern);
    sent = {pulses, until: now + (pulses.length ? end / 1000 : VIBE.horizon)};
  }

  function frame() {
    const t = audio.currentTime;
    follow(t);
    playhead.style.transform = `translateX(${view.x(t)}px)`;
    playhead.dataset.time = t;
    $("clock").textContent = clock(t) + " / " + clock(duration);
    vibrateTick(t);
    requestAnimationFrame(frame);
  }

  const encoded = $("sense-audio");
  audio.src = URL.createObjectURL(new Blob([bytes(encoded.textContent.trim())], {type: encoded.dataset.type}));
  audio.addEventListener("loadedmetadata", () => { button.disabled = false; });
  audio.addEventListener("play", () => { button.textContent = "Pause"; vibrateReset(); });
  audio.addEventListener("pause", () => { button.textContent = "Play"; vibrateReset(); });
  for (const event of ["seeking", "ended"]) audio.addEventListener(event, vibrateReset);
  vibrateBox.addEventListener("change", vibrateReset);
  button.addEventListener("click", () => (audio.paused ? audio.play() : audio.pause()));
  document.addEventListener("keydown", (e) => {
    if (e.code === "Space" && e.target.tagName !== "SELECT" && e.target.tagName !== "INPUT") {
      e.preventDefault();
      button.click();
    }
  });
  plot.addEventListener("click", (e) => {
    const box = canvas.getBoundingClientRect();
    audio.currentTime = clamp(view.t0 + (e.clientX - box.left) / box.width * (view.t1 - view.t0), 0, duration);
  });
  zoom.addEventListener("change", () => follow(audio.currentTime));
  window.addEventListener("resize", resize);

  const n = (layer) => taps.layer.filter((l) => l === layer).length;
  $("meta").textContent = [
    clock(duration), DATA.tempo ? DATA.tempo.toFixed(1) + " BPM" : "no tempo found",
    DATA.key ? "key " + DATA.key + " (confidence " + DATA.key_confidence.toFixed(2) + ")" : "no key found",
    loud.integrated === null ? "loudness unknown" : loud.integrated.toFixed(1) + " LUFS integrated",
    `${taps.time.length} haptic taps (${n("onset")} onset, ${n("beat")} beat, ${n("downbeat")} downbeat)`,
    ...Object.entries(DATA.backends).map(([k, v]) => k + ": " + v),
  ].join("  \u00b7  ");
  resize();
  requestAnimationFrame(frame);
}

// ---- live mode ------------------------------------------------------------------------------
function liveMode(url) {
  document.querySelector("h1").textContent = document.title = "melos sense: live";
  $("file-view").hidden = true;
  $("live-view").hidden = false;
  const status = $("live-status"), canvas = $("live-canvas"), vibrateBox = $("live-vibrate");
  const events = {transient: [], continuous: [], beat: []};
  let count = 0, offset = null;  // offset: local clock (s) minus stream time, from the least delayed event
  const now = () => (offset === null ? 0 : performance.now() / 1000 - offset);
  const inView = (list, view) => list.filter((e) => e.time >= view.t0 - 0.5);

  const lanes = [
    {label: "haptic bed<br>" + key([["amplitude", COLOUR.bed], ["sharpness", COLOUR.sharpness]]), height: 90,
     draw: (ctx, view, y, h) => {
       const bed = inView(events.continuous, view);
       if (!bed.length) return;
       ctx.globalAlpha = 0.75;
       ctx.fillStyle = COLOUR.bed;
       ctx.beginPath();
       ctx.moveTo(view.x(bed[0].time), y + h);
       bed.forEach((e) => ctx.lineTo(view.x(e.time), y + h - clamp(e.amplitude, 0, 1) * (h - 2)));
       ctx.lineTo(view.x(bed[bed.length - 1].time), y + h);
       ctx.fill();
       ctx.globalAlpha = 1;
       ctx.strokeStyle = COLOUR.sharpness;
       ctx.beginPath();
       bed.forEach((e) => ctx.lineTo(view.x(e.time), y + h - clamp(e.frequency, 0, 1) * (h - 2)));
       ctx.stroke();
     }},
    {label: "haptic taps", height: 90, draw: (ctx, view, y, h) => {
      const taps = inView(events.transient, view);
      drawStems(ctx, view, y, h, taps.map((e) => e.time), (i) => clamp(taps[i].intensity, 0, 1),
                (i) => COLOUR[taps[i].layer] || COLOUR.onset);
    }},
    {label: "beats", height: 30, draw: (ctx, view, y, h) =>
      drawStems(ctx, view, y, h, inView(events.beat, view).map((e) => e.time), () => 1, () => COLOUR.beat)},
    {label: "", height: 18, draw: () => {}},
  ];

  let surface = sizeCanvas(canvas, $("live-labels"), lanes);
  window.addEventListener("resize", () => { surface = sizeCanvas(canvas, $("live-labels"), lanes); });
  function frame() {
    const t = now(), ctx = surface.ctx;
    const view = {t0: t - LIVE.window, t1: t, w: surface.w, x: (s) => (s - view.t0) / LIVE.window * surface.w};
    ctx.clearRect(0, 0, surface.w, surface.h);
    drawGrid(ctx, view, lanes, (s, step) => (s < 0 ? "" : tick(s, step)));
    let y = 0;
    for (const lane of lanes) { lane.draw(ctx, view, y, lane.height); y += lane.height; }
    requestAnimationFrame(frame);
  }

  function receive(message) {
    let e;
    try { e = JSON.parse(message.data); } catch { return; }
    if (!e || !(e.type in events) || typeof e.time !== "number") return;  // unknown types are ignored
    offset = Math.min(offset === null ? Infinity : offset, performance.now() / 1000 - e.time);
    const list = events[e.type];
    list.push(e);
    while (list.length && list[0].time < e.time - LIVE.keep) list.shift();
    $("live-count").textContent = ++count;
    if (e.type === "transient" && vibrateBox.checked) vibrate(tapMs(clamp(e.intensity, 0, 1)));
  }

  if (!/^wss?:\/\/[^\s]+$/.test(url)) {
    status.textContent = "not a WebSocket address: " + url;
    return;
  }
  status.textContent = "connecting to " + url;
  const socket = new WebSocket(url);
  socket.addEventListener("open", () => { status.textContent = "connected to " + url; });
  socket.addEventListener("close", () => { status.textContent = "closed (" + url + ")"; });
  socket.addEventListener("message", receive);
  requestAnimationFrame(frame);
}

// ---- start ----------------------------------------------------------------------------------
const note = $("vibrate-note");
if (!CAN_VIBRATE) {
  note.textContent = "This browser cannot vibrate (no navigator.vibrate: desktop Firefox and Safari, " +
    "and every iPhone browser). The lanes and playhead work; open the page in Chrome on Android to feel the taps.";
  note.hidden = false;
} else if (navigator.userActivation && !navigator.userActivation.hasBeenActive) {
  note.textContent = "Tap the page once to let it vibrate (browsers only vibrate after a tap).";
  note.hidden = false;
  document.addEventListener("pointerdown", () => { note.hidden = true; }, {once: true});
}
const live = new URLSearchParams(location.search).get("live");
if (live) liveMode(live); else fileMode();
