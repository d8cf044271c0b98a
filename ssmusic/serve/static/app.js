// ssmusic web demo: check the form, submit, follow the job over server-sent events, play it while
// it is generated, keep it in this browser's history.
"use strict";
import {LivePlayer, formatTime} from "./player.js";
import {History, entryFor} from "./history.js";

const $ = (id) => document.getElementById(id);
const FINISHED = ["done", "failed", "cancelled"];
const GIVE_UP_AFTER = 8;
const FIRST_EXAMPLES = 4;  // the rest behind "more…"  // failed reconnects (about 1 s apart) before the page stops trying by itself
let info = null;
let run = null;  // the request this page follows: {id, job, events, player, clicked, failures, finished}
let history = null;
let audioContext = null;

function show(id, visible) { $(id).hidden = !visible; }
function setError(text) { $("error").textContent = text || ""; }

// ---------- the model and its card ----------
async function loadInfo() {
  const response = await fetch("/api/info");
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  info = await response.json();
  for (const name of ["cfg", "temperature", "top_k"]) $(name).value = info.defaults[name];
  const model = info.model;
  $("model-badge").textContent = `${model.name} · ${model.backbone}`;
  $("model").textContent = `${model.backbone} (${model.conditioning}), codec ${model.codec}, text encoder ` +
    `${model.text_encoder}, ${model.sample_rate} Hz; requests up to ${info.max_seconds} s`;
  showCard(info.card);
  hideLost();
}

function fillList(id, items, empty) {
  const list = $(id);
  list.replaceChildren(...(items.length ? items : [empty]).map((text) => {
    const item = document.createElement("li");
    item.textContent = text;
    return item;
  }));
}

function showCard(card) {
  $("card-summary").textContent = card.summary ||
    "This model has no card (model_card.json in its folder), so nothing here says what it was trained on.";
  fillList("card-knows", card.knows, "not described");
  fillList("card-not", card.does_not_know, "not described");
  const chips = card.examples.map((example, index) => {
    const chip = document.createElement("button");
    chip.type = "button";
    chip.className = "chip";
    chip.textContent = example.prompt;
    chip.hidden = index >= FIRST_EXAMPLES;
    chip.addEventListener("click", () => useExample(example));
    return chip;
  });
  if (chips.length > FIRST_EXAMPLES) {
    const more = document.createElement("button");
    more.type = "button";
    more.className = "more-chip";
    more.textContent = `${chips.length - FIRST_EXAMPLES} more…`;
    more.addEventListener("click", () => { chips.forEach((chip) => { chip.hidden = false; }); more.remove(); });
    chips.push(more);
  }
  $("example-list").replaceChildren(...chips);
  show("examples", card.examples.length > 0);
}

function useExample(example) {
  $("prompt").value = example.prompt;
  if (example.seconds) $("seconds").value = String(Math.min(example.seconds, info.max_seconds));
  for (const name of ["prompt", "seconds"]) validate(name);
  $("prompt").focus();
}

// ---------- inline validation: what the server would refuse, said before sending ----------
const RULES = {
  seconds: {integer: false, required: "Enter the duration in seconds, e.g. 10",
            check: (v) => v > 0 && v <= info.max_seconds ? null : `From more than 0 up to ${info.max_seconds} seconds`},
  cfg: {integer: false, check: (v) => v >= 0 ? null : "0 or more (1 = no guidance)"},
  temperature: {integer: false, check: (v) => v > 0 ? null : "More than 0"},
  top_k: {integer: true, check: (v) => v >= 0 ? null : "0 (no limit) or more"},
  seed: {integer: true, check: (v) => v >= 0 && v <= Number.MAX_SAFE_INTEGER ? null : "0 or more, at most 2^53"},
};

function parseField(name) {
  const text = $(name).value.trim();
  const rule = RULES[name];
  if (text === "") return rule.required ? {message: rule.required} : {value: null};
  if (/^-?\d+,\d+$/.test(text)) return {message: `Use a point for decimals: ${text.replace(",", ".")}`};
  const pattern = rule.integer ? /^-?\d+$/ : /^-?(\d+\.?\d*|\.\d+)$/;
  if (!pattern.test(text)) return {message: rule.integer ? "Enter a whole number, e.g. 42" : "Enter a number, e.g. 10 or 2.5"};
  const value = Number(text);
  return {value, message: rule.check(value)};
}

function parsePrompt() {
  const text = $("prompt").value;
  $("prompt-count").textContent = `${text.length} / ${info ? info.max_prompt_chars : 500}`;
  if (!text.trim()) return {message: "Describe the music first, or pick an example"};
  if (info && text.length > info.max_prompt_chars) return {message: `At most ${info.max_prompt_chars} characters`};
  return {value: text};
}

function validate(name) {
  const result = name === "prompt" ? parsePrompt() : parseField(name);
  $(name).setAttribute("aria-invalid", result.message ? "true" : "false");
  $(`${name}-error`).textContent = result.message || "";
  return result;
}

function formBody() {
  const body = {};
  let firstBad = null;
  for (const name of ["prompt", ...Object.keys(RULES)]) {
    const result = validate(name);
    if (result.message && !firstBad) firstBad = name;
    body[name] = result.value ?? null;
  }
  if (firstBad) {
    if (RULES[firstBad] && firstBad !== "seconds") document.querySelector(".advanced").open = true;
    $(firstBad).focus();
    return null;
  }
  return body;
}

// ---------- submitting and following a request ----------
function liveContext() {  // created inside the click, so the browser lets it make sound
  audioContext = audioContext || new AudioContext();
  audioContext.resume();
  return audioContext;
}

async function submit(event) {
  event.preventDefault();
  setError("");
  const body = formBody();
  if (!body) { setError("Fix the highlighted field first."); return; }
  const context = liveContext();
  let response;
  try {
    response = await fetch("/api/generate", {method: "POST", headers: {"Content-Type": "application/json"},
                                             body: JSON.stringify(body)});
  } catch (err) { setError("The server cannot be reached. Is `ssmusic serve` still running?"); return; }
  const job = await response.json().catch(() => ({error: `HTTP ${response.status}`}));
  if (!response.ok) {
    setError(response.status === 503 ? `The server is busy: ${job.error}` : job.error || `HTTP ${response.status}`);
    return;
  }
  stopRun();
  run = {id: job.id, job, clicked: performance.now(), failures: 0, finished: false, settings: body,
         player: new LivePlayer(context)};
  resetNow();
  startLive(run);
  follow(run);
  onUpdate(job);
}

function resetNow() {
  const player = $("player");
  player.pause();
  player.removeAttribute("src");
  player.load();
  for (const id of ["result", "player", "idle-hint", "queue"]) show(id, false);
  show("live", true);
  show("progress", true);
  show("cancel", true);
  $("generate").disabled = true;
  document.body.dataset.live = "loading";
  delete document.body.dataset.firstAudio;
  document.body.dataset.liveSeconds = "0";
}

function startLive(current) {
  current.player.play(`/api/jobs/${current.id}/audio.wav`, (player) => {
    if (run !== current) return;
    document.body.dataset.live = "playing";
    document.body.dataset.firstAudio = ((player.firstAudioAt - current.clicked) / 1000).toFixed(3);
  });
}

function follow(current) {
  const events = new EventSource(`/api/jobs/${current.id}/events`);
  current.events = events;
  events.onopen = () => {
    if (current.failures > 0 && !current.player.stopped) startLive(current);  // resume: it skips what it has
    current.failures = 0;
    hideLost();
  };
  events.onmessage = (message) => { if (run === current) onUpdate(JSON.parse(message.data)); };
  events.onerror = () => {
    if (run !== current || current.finished) return;
    current.failures += 1;
    if (events.readyState === EventSource.CLOSED || current.failures >= GIVE_UP_AFTER) {
      events.close();
      showLost("Connection lost.");
      if (events.readyState === EventSource.CLOSED && current.failures === 1) retry();  // e.g. the job is gone
    } else {
      showLost("Connection lost — reconnecting…");
    }
  };
}

function showLost(text) {
  $("lost-text").textContent = text;
  show("lost", true);
}

function hideLost() { show("lost", false); }

async function retry() {
  if (!info) { loadInfo().catch(() => showLost("Still cannot reach the server.")); return; }
  if (!run || run.finished) { hideLost(); return; }
  const current = run;
  let response;
  try { response = await fetch(`/api/jobs/${current.id}`); } catch (err) {
    showLost("Still cannot reach the server.");
    return;
  }
  if (response.status === 404) {
    hideLost();
    setError("This request is no longer on the server (it was restarted, or the request expired). Generate it again.");
    finish(current, true);
    return;
  }
  if (current.events) current.events.close();
  current.failures = Math.max(current.failures, 1);  // so that reopening resumes the live audio
  follow(current);
  if (response.ok) onUpdate(await response.json());
}

function waitText(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 1) return " · starting any moment";
  return seconds < 90 ? ` · about ${Math.ceil(seconds)} s to wait` : ` · about ${Math.round(seconds / 60)} min to wait`;
}

function onUpdate(job) {
  run.job = job;
  run.jobSeenAt = performance.now();
  if (job.state === "queued") $("status").textContent = `Waiting: place ${job.position} in the queue`;
  else if (job.state === "running") $("status").textContent = `Generating: ${(job.frames_done / job.frames_total * job.duration_s).toFixed(1)} of ${job.duration_s.toFixed(1)} s`;
  else if (job.state === "done") $("status").textContent = `Done: ${job.duration_s.toFixed(1)} s (seed ${job.seed})`;
  else $("status").textContent = job.state === "cancelled" ? "Cancelled" : "Failed";
  show("queue", job.state === "queued");
  $("progress").value = job.frames_total ? job.frames_done / job.frames_total : 0;
  if (job.state === "done") showResult(job);
  if (job.state === "failed" || job.state === "cancelled") setError(job.error || "The generation was cancelled.");
  if (FINISHED.includes(job.state)) finish(run, job.state !== "done");
}

function showResult(job) {
  $("player").src = job.files.wav;  // the finished file, to replay and seek (shown once live playback ends)
  $("spectrogram").src = job.files.png;
  $("wav-link").href = job.files.wav;
  $("json-link").href = job.files.json;
  const first = document.body.dataset.firstAudio ? `first audio after ${document.body.dataset.firstAudio} s; ` : "";
  $("timing").textContent = ` ${first}real-time factor ${job.real_time_factor.toFixed(2)}`;
  show("result", true);
  const settings = run.settings;
  entryFor(job, settings).then((entry) => history && history.add(entry)).then(renderHistory)
    .catch((err) => console.warn("history not saved", err));
}

function finish(current, stopAudio) {
  current.finished = true;
  if (current.events) current.events.close();
  if (stopAudio) {
    current.player.stop();
    document.body.dataset.live = "stopped";
  }
  hideLost();
  $("generate").disabled = false;
  show("cancel", false);
  show("progress", false);
  show("queue", false);
}

function stopRun() {
  if (!run) return;
  run.player.stop();
  if (run.events) run.events.close();
  run.finished = true;
}

function cancel() {
  if (!run || run.finished) return;
  const current = run;
  fetch(`/api/jobs/${current.id}/cancel`, {method: "POST"}).catch(() => {});
  $("status").textContent = "Cancelled";
  finish(current, true);
  show("live", false);
}

// ---------- what the page shows between updates: live time, queue countdown ----------
function tick() {
  if (run) {
    const player = run.player, job = run.job;
    const duration = player.duration || job.duration_s;
    const position = Math.min(player.position(), duration);
    $("live-time").textContent = `${formatTime(position)} / ${formatTime(duration)}`;
    $("live-played").style.width = `${100 * position / duration}%`;
    $("live-generated").style.width = `${100 * Math.min(1, player.received / duration)}%`;
    document.body.dataset.liveSeconds = player.received.toFixed(3);
    if (job.state === "queued") {
      const left = job.wait_s === null ? null : Math.max(0, job.wait_s - (performance.now() - run.jobSeenAt) / 1000);
      $("queue").textContent = `Place ${job.position} in the queue${waitText(left)}`;
    }
    if (job.state === "done" && !$("live").hidden && !player.playing()) {  // live playback over: the file takes over
      show("live", false);
      show("player", true);
    }
  }
  requestAnimationFrame(tick);
}

window.ssmusicPlayer = () => run && {position: run.player.position(), duration: run.player.duration,
                                     playing: run.player.playing(), sources: run.player.sources.length,
                                     stopped: run.player.stopped, level: run.player.level()};
window.ssmusicLiveClock = () => audioContext ? {state: audioContext.state, time: audioContext.currentTime} : null;

// ---------- history kept in this browser ----------
function historyItem(entry) {
  const item = document.createElement("li");
  item.className = "entry";
  item.innerHTML = `<button type="button" class="play" aria-label="play">▶</button>
    <div class="entry-text"><div class="entry-prompt"></div><div class="entry-meta"></div></div>
    <div class="entry-actions"><a class="download">WAV</a><button type="button" class="link reuse">Reuse</button>
    <button type="button" class="link delete">Delete</button></div>`;
  item.querySelector(".entry-prompt").textContent = entry.prompt;
  item.querySelector(".entry-meta").textContent =
    `${entry.seconds.toFixed(1)} s · seed ${entry.seed} · ${new Date(entry.created).toLocaleString()}`;
  const url = URL.createObjectURL(entry.wav);
  const download = item.querySelector(".download");
  download.href = url;
  download.download = `ssmusic-${entry.id}.wav`;
  item.querySelector(".play").addEventListener("click", () => replay(entry, url));
  item.querySelector(".reuse").addEventListener("click", () => reuse(entry));
  item.querySelector(".delete").addEventListener("click", () => history.remove(entry.id).then(renderHistory));
  return item;
}

function replay(entry, url) {
  if (run && !run.finished) return setError("Wait for the current generation, or cancel it, to replay.");
  if (run) run.player.stop();
  const player = $("player");
  player.src = url;
  show("live", false);
  show("player", true);
  show("idle-hint", false);
  if (entry.png) { $("spectrogram").src = URL.createObjectURL(entry.png); show("result", true); }
  $("status").textContent = `Replaying: ${entry.prompt}`;
  player.play().catch(() => {});
}

function reuse(entry) {
  $("prompt").value = entry.prompt;
  $("seconds").value = String(entry.seconds);
  for (const name of ["cfg", "temperature", "top_k", "seed"]) {
    const value = entry.settings ? entry.settings[name] : null;
    $(name).value = name === "seed" ? entry.seed : value ?? $(name).value;
  }
  for (const name of ["prompt", ...Object.keys(RULES)]) validate(name);
}

async function renderHistory() {
  const entries = history ? await history.all() : [];
  const list = $("history");
  list.replaceChildren(...(entries.length ? entries.map(historyItem) : [Object.assign(document.createElement("li"),
    {className: "muted", id: "history-empty", textContent: history ? "none yet" : "not available in this browser"})]));
  show("clear-history", entries.length > 0);
}

// ---------- wiring ----------
$("form").addEventListener("submit", submit);
$("cancel").addEventListener("click", cancel);
$("live-stop").addEventListener("click", () => { if (run) { run.player.stop(); show("live", false); show("player", !!$("player").src); } });
$("retry").addEventListener("click", retry);
$("clear-history").addEventListener("click", () => history.clear().then(renderHistory));
for (const name of ["prompt", ...Object.keys(RULES)]) $(name).addEventListener("input", () => { if (info) validate(name); });
loadInfo().then(() => parsePrompt()).catch(() => showLost("The server cannot be reached."));
new History().open().then((opened) => { history = opened; }).catch(() => { history = null; }).finally(renderHistory);
requestAnimationFrame(tick);
