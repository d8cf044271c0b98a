// Live playback of a WAV that is still being generated.
//
// Chromium's <audio> element only starts a progressively served WAV once it has ~5 s of it, so
// while generating, the PCM stream is played through Web Audio: each piece is scheduled right after
// the previous one, sample-exact, as soon as it arrives. The player knows the whole duration from
// the WAV header (the server writes the final length first) and where playback is from the
// AudioContext clock, so the page can show "0:03.2 / 0:06.0" while the music is still being made.
"use strict";

const LEAD_SECONDS = 0.1;  // scheduling margin for the first piece (and after an underrun)

export function formatTime(seconds) {
  const s = Math.max(0, seconds || 0);
  const minutes = Math.floor(s / 60);
  const rest = (s - 60 * minutes).toFixed(1).padStart(4, "0");
  return `${minutes}:${rest}`;
}

export class LivePlayer {
  constructor(context) {
    this.context = context;
    this.gain = context.createGain();  // one node per run: disconnecting it silences everything at once
    this.meter = context.createAnalyser();  // what actually reaches the speakers (level())
    this.gain.connect(this.meter);
    this.meter.connect(context.destination);
    this.segments = [];  // [{start, duration}] in context time, as scheduled
    this.sources = [];
    this.duration = null;  // seconds, from the WAV header
    this.received = 0;  // seconds of audio received so far
    this.taken = 0;  // PCM bytes scheduled (a resumed stream skips them)
    this.rate = 0;
    this.next = 0;  // context time where the next piece starts
    this.stopped = false;
    this.streaming = false;
    this.aborter = new AbortController();
    this.firstAudioAt = null;  // performance.now() when the first piece starts to sound
  }

  // seconds of this run heard so far (gaps while waiting for audio do not count)
  position() {
    if (this.stopped) return this.heard;
    const now = this.context.currentTime;
    let heard = 0;
    for (const {start, duration} of this.segments) heard += Math.min(duration, Math.max(0, now - start));
    return heard;
  }

  // still sounding or about to: scheduled audio ahead of the clock
  playing() {
    if (this.stopped || !this.segments.length) return false;
    const last = this.segments[this.segments.length - 1];
    return this.context.currentTime < last.start + last.duration;
  }

  // the loudest sample of the last ~20 ms that reached the output (0 once stopped)
  level() {
    const samples = new Float32Array(this.meter.fftSize);
    this.meter.getFloatTimeDomainData(samples);
    return samples.reduce((peak, x) => Math.max(peak, Math.abs(x)), 0);
  }

  stop() {
    if (this.stopped) return;
    this.heard = this.position();
    this.stopped = true;
    this.aborter.abort();
    for (const source of this.sources) { try { source.stop(); } catch (err) { /* not started yet */ } }
    this.gain.disconnect();
    this.sources = [];
  }

  // Fetch `url` (a growing WAV) and schedule it as it arrives; resolves when the stream ends. Called
  // again after a lost connection, it skips the samples it already has and goes on where it was.
  async play(url, onFirstAudio) {
    if (this.streaming || this.stopped) return;  // one stream at a time
    this.streaming = true;
    try { await this.stream(url, onFirstAudio); } finally { this.streaming = false; }
  }

  async stream(url, onFirstAudio) {
    let response;
    try { response = await fetch(url, {signal: this.aborter.signal}); } catch (err) { return; }
    if (!response.ok) return;
    const reader = response.body.getReader();
    let pending = new Uint8Array(0), header = true, skip = this.taken;
    for (;;) {
      let chunk;
      try { chunk = await reader.read(); } catch (err) { return; }  // aborted, or the connection dropped
      if (chunk.done || this.stopped) return;
      const joined = new Uint8Array(pending.length + chunk.value.length);
      joined.set(pending); joined.set(chunk.value, pending.length);
      pending = joined;
      if (header) {
        if (pending.length < 44) continue;
        const view = new DataView(pending.buffer);
        this.rate = view.getUint32(24, true);
        this.duration = view.getUint32(40, true) / 2 / this.rate;
        pending = pending.slice(44);
        header = false;
      }
      if (skip) {
        const dropped = Math.min(skip, pending.length);
        pending = pending.slice(dropped);
        skip -= dropped;
      }
      const usable = pending.length - (pending.length % 2);
      if (!usable) continue;
      this.schedule(new Int16Array(pending.slice(0, usable).buffer), onFirstAudio);
      this.taken += usable;
      pending = pending.slice(usable);
    }
  }

  schedule(samples, onFirstAudio) {
    const buffer = this.context.createBuffer(1, samples.length, this.rate);
    const channel = buffer.getChannelData(0);
    for (let i = 0; i < samples.length; i++) channel[i] = samples[i] / 32768;
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.gain);
    let when = this.next;
    if (when < this.context.currentTime + 0.02) {  // first piece, or generation fell behind playback
      when = this.context.currentTime + LEAD_SECONDS;
      if (this.firstAudioAt === null) {
        this.firstAudioAt = performance.now() + 1000 * LEAD_SECONDS;
        setTimeout(() => onFirstAudio && onFirstAudio(this), 1000 * LEAD_SECONDS);
      }
    }
    source.start(when);
    this.sources.push(source);
    source.onended = () => { this.sources = this.sources.filter((s) => s !== source); };
    this.segments.push({start: when, duration: buffer.duration});
    this.received += buffer.duration;
    this.next = when + buffer.duration;
  }
}
