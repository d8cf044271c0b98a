// Earlier generations, kept in this browser (IndexedDB): the WAV itself, its spectrogram and how it
// was made, so a reload or a server restart loses nothing and replaying never downloads again.
"use strict";

const DB_NAME = "ssmusic", STORE = "history", KEEP = 30;  // newest KEEP entries stay

function request(idbRequest) {
  return new Promise((resolve, reject) => {
    idbRequest.onsuccess = () => resolve(idbRequest.result);
    idbRequest.onerror = () => reject(idbRequest.error);
  });
}

export class History {
  async open() {
    const opening = indexedDB.open(DB_NAME, 1);
    opening.onupgradeneeded = () => opening.result.createObjectStore(STORE, {keyPath: "id"});
    this.db = await request(opening);
    return this;
  }

  store(mode) { return this.db.transaction(STORE, mode).objectStore(STORE); }

  // newest first
  async all() {
    const entries = await request(this.store("readonly").getAll());
    return entries.sort((a, b) => b.created - a.created);
  }

  async add(entry) {
    await request(this.store("readwrite").put(entry));
    const entries = await this.all();
    for (const old of entries.slice(KEEP)) await this.remove(old.id);
  }

  async remove(id) { await request(this.store("readwrite").delete(id)); }

  async clear() { await request(this.store("readwrite").clear()); }
}

// Fetch a finished job's files and keep them with its settings.
export async function entryFor(job, settings) {
  const wav = await (await fetch(job.files.wav)).blob();
  const png = await fetch(job.files.png).then((r) => r.ok ? r.blob() : null).catch(() => null);
  return {id: job.id, created: Date.now(), prompt: job.prompt, seconds: job.seconds, seed: job.seed,
          settings, wav, png};
}
