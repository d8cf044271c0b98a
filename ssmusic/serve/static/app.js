// ssmusic web demo: submit a request, follow it over server-sent events, play while generated.
"use strict";
const $ = (id) => document.getElementById(id);
let current = null;  // {id, events, clicked}

function show(id, visible) { $(id).hidden = !visible; }
function setError(text) { $("error").textContent = text || ""; }

async function loadInfo() {
  const info = await (await fetch("/api/info")).json();
  $("cfg").value = info.defaults.cfg;
  $("temperature").value = info.defaults.temperature;
  $("top_k").value = info.defaults.top_k;
  $("seconds").max = info.max_seconds;
  $("top_k").max = info.max_top_k;
  $("model").textContent = `model: ${info.model.backbone} (${info.model.conditioning}), ` +
    `${info.sample_rate} Hz; longest request ${info.max_seconds} s`;
}

function number(id) {
  const raw = $(id).value.trim();
  return raw === "" ? null : Number(raw);
}

function describe(job) {
  if (job.state === "queued") return `Waiting: place ${job.position} in the queue`;
  if (job.state === "running") {
    const done = (job.frames_done / job.frames_total * job.seconds).toFixed(1);
    return `Generating: ${done} of ${job.seconds.toFixed(1)} s`;
  }
  if (job.state === "done") return `Done: ${job.seconds.toFixed(1)} s (seed ${job.seed})`;
  if (job.state === "cancelled") return "Cancelled";
  return "Failed";
}

function addHistory(job) {
  const empty = $("history-empty");
  if (empty) empty.remove();
  const item = document.createElement("li");
  item.innerHTML = `<a href="${job.files.wav}" download></a> <span class="muted"></span> ` +
    `<a href="${job.files.json}" download>JSON</a> · <a href="${job.files.png}" target="_blank">spectrogram</a>`;
  item.firstChild.textContent = job.prompt;
  item.children[1].textContent = `${job.seconds.toFixed(1)} s, seed ${job.seed}`;
  $("history").prepend(item);
}

function onUpdate(job) {
  $("status").textContent = describe(job);
  $("progress").value = job.frames_total ? job.frames_done / job.frames_total : 0;
  if (job.state === "running" && current && !current.live) {
    current.live = playLive(job.id, current);
  }
  if (job.state === "done") {
    $("player").src = job.files.wav;  // the finished file, to replay and seek
    $("spectrogram").src = job.files.png;
    $("wav-link").href = job.files.wav;
    $("json-link").href = job.files.json;
    const first = current && current.firstAudio ? `first audio after ${current.firstAudio.toFixed(2)} s in this page; ` : "";
    $("timing").textContent = ` ${first}real-time factor ${job.real_time_factor.toFixed(2)}`;
    show("result", true);
    addHistory(job);
  }
  if (job.state === "failed" || job.state === "cancelled") setError(job.error || "The generation was cancelled.");
  if (["done", "failed", "cancelled"].includes(job.state)) finish();
}

function finish() {
  if (current && current.events) current.events.close();
  $("generate").disabled = false;
  show("cancel", false);
  show("progress", false);
}

async function submit(event) {
  event.preventDefault();
  const context = liveContext();  // inside the click, so the browser lets it make sound
  setError("");
  const body = {prompt: $("prompt").value, seconds: number("seconds"), cfg: number("cfg"),
                temperature: number("temperature"), top_k: number("top_k"), seed: number("seed")};
  let response;
  try {
    response = await fetch("/api/generate", {method: "POST", headers: {"Content-Type": "application/json"},
                                             body: JSON.stringify(body)});
  } catch (err) { setError("The server cannot be reached."); return; }
  const job = await response.json().catch(() => ({error: `HTTP ${response.status}`}));
  if (!response.ok) { setError(job.error || `HTTP ${response.status}`); return; }
  if (current && current.events) current.events.close();
  current = {id: job.id, clicked: performance.now(), firstAudio: null};
  const player = $("player");
  player.pause();
  player.removeAttribute("src");
  player.load();
  current.context = context;
  show("result", false);
  $("generate").disabled = true;
  show("cancel", true);
  show("progress", true);
  current.events = new EventSource(`/api/jobs/${job.id}/events`);
  current.events.onmessage = (message) => onUpdate(JSON.parse(message.data));
  onUpdate(job);
}

// Live playback. An <audio> element fed a growing WAV only starts once Chromium's demuxer has
// analysed ~5 s of it, so while generating, the PCM stream is played through Web Audio: each piece
// is scheduled right after the previous one, sample-exact, as soon as it arrives.
let sharedContext = null;
function liveContext() {
  sharedContext = sharedContext || new AudioContext();
  sharedContext.resume();
  return sharedContext;
}

// for the browser tests: is the live audio clock running, and where
window.ssmusicLiveClock = () => sharedContext ? {state: sharedContext.state, time: sharedContext.currentTime} : null;

const LEAD_SECONDS = 0.1;  // scheduling margin for the first piece

async function playLive(id, run) {
  const context = run.context || liveContext();
  const response = await fetch(`/api/jobs/${id}/audio.wav`);
  if (!response.ok) return;
  const reader = response.body.getReader();
  let pending = new Uint8Array(0), rate = 0, when = 0;
  document.body.dataset.live = "loading";
  for (;;) {
    const {value, done} = await reader.read();
    if (done || current !== run) break;
    const joined = new Uint8Array(pending.length + value.length);
    joined.set(pending); joined.set(value, pending.length);
    pending = joined;
    if (!rate) {
      if (pending.length < 44) continue;
      rate = new DataView(pending.buffer).getUint32(24, true);
      pending = pending.slice(44);
    }
    const usable = pending.length - (pending.length % 2);
    if (!usable) continue;
    const samples = new Int16Array(pending.slice(0, usable).buffer);
    pending = pending.slice(usable);
    const buffer = context.createBuffer(1, samples.length, rate);
    const channel = buffer.getChannelData(0);
    for (let i = 0; i < samples.length; i++) channel[i] = samples[i] / 32768;
    const source = context.createBufferSource();
    source.buffer = buffer;
    source.connect(context.destination);
    if (when < context.currentTime + 0.02) {  // first piece, or generation fell behind playback
      when = context.currentTime + LEAD_SECONDS;
      if (run.firstAudio === null) {
        run.firstAudio = (performance.now() - run.clicked) / 1000 + LEAD_SECONDS;
        setTimeout(() => {
          document.body.dataset.live = "playing";
          document.body.dataset.firstAudio = run.firstAudio.toFixed(3);  // read by the browser tests
        }, LEAD_SECONDS * 1000);
      }
    }
    source.start(when);
    when += buffer.duration;
    run.liveSeconds = (run.liveSeconds || 0) + buffer.duration;
    document.body.dataset.liveSeconds = run.liveSeconds.toFixed(3);
  }
}

$("form").addEventListener("submit", submit);
$("cancel").addEventListener("click", () => {
  if (current) fetch(`/api/jobs/${current.id}/cancel`, {method: "POST"});
});
loadInfo().catch(() => setError("The server cannot be reached."));
