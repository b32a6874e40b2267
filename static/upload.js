// Progressive enhancement of the corpus page: drop files (or choose them) and watch them load. Without
// this script the same form posts and the page comes back with the outcome. The upload goes by
// XMLHttpRequest, the one browser API that reports both the bytes sent and the response as it
// streams: the server answers with events (received, queued, reading, file, embedding, done, error).
(function () {
  "use strict";
  const form = document.getElementById("upload-form");
  const list = document.getElementById("upload-progress");
  const meta = document.querySelector('meta[name="csrf-token"]');
  const token = meta ? meta.content : "";
  const outcome = document.getElementById("outcome");

  function say(text, kind) {
    if (!outcome) return;
    outcome.textContent = "";
    const line = document.createElement("p");
    line.className = "notice " + (kind || "done");
    if (kind === "error") line.setAttribute("role", "alert");
    line.textContent = text;
    outcome.append(line);
  }

  function seconds(value) {
    if (value === null || value === undefined) return "";
    if (value < 1) return "under a second left";
    if (value < 90) return "about " + Math.round(value) + " s left";
    return "about " + Math.round(value / 60) + " min left";
  }

  function megabytes(bytes) {
    return bytes < 1048576 ? Math.max(1, Math.round(bytes / 1024)) + " KB" : (bytes / 1048576).toFixed(1) + " MB";
  }

  // Swap the sources table (and its Remove buttons) for the server's fresh one.
  async function refreshSources() {
    try {
      const response = await fetch(window.location.pathname, { headers: { "Accept": "text/html" } });
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("sources");
      const current = document.getElementById("sources");
      if (fresh && current) current.replaceWith(document.importNode(fresh, true));
      const facts = page.querySelector("dl.facts");
      const shown = document.querySelector("dl.facts");
      if (facts && shown) shown.replaceWith(document.importNode(facts, true));
    } catch (error) { /* the table stays as it was; a reload shows the new one */ }
  }

  // Removing an uploaded file: DELETE /documents, then the row goes.
  document.addEventListener("submit", async function (event) {
    const removal = event.target;
    if (!(removal instanceof HTMLFormElement) || !removal.classList.contains("remove-document") || !window.fetch) return;
    event.preventDefault();
    const button = removal.querySelector("button");
    button.disabled = true;
    const params = new URLSearchParams({ source: removal.elements.source.value, corpus: removal.elements.corpus.value });
    try {
      const response = await fetch(removal.dataset.delete + "?" + params.toString(), {
        method: "DELETE", headers: { "Accept": "application/json", "X-CSRF-Token": token } });
      const body = await response.json();
      if (!body.ok) { say("Not removed: " + body.error, "error"); button.disabled = false; return; }
      say("Removed " + body.source.split("/").pop() + ": " + body.passages_removed + " passage" +
          (body.passages_removed === 1 ? "" : "s") + ".");
      await refreshSources();
    } catch (error) {
      say("The server could not be reached; nothing was removed.", "error");
      button.disabled = false;
    }
  });

  if (!form || !list || !window.XMLHttpRequest || !window.FormData) return;
  const input = document.getElementById("upload-files");
  const zone = document.getElementById("drop-zone");
  const busy = document.getElementById("upload-busy");
  const submit = form.querySelector("button[type=submit]");
  const rows = new Map();
  let running = false;

  function row(key, label) {
    let item = rows.get(key);
    if (!item) {
      item = document.createElement("li");
      item.className = "file";
      item.dataset.name = key;
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = label;
      const bar = document.createElement("progress");
      bar.max = 1;
      bar.value = 0;
      const state = document.createElement("span");
      state.className = "state";
      item.append(name, bar, state);
      list.append(item);
      rows.set(key, item);
    }
    return item;
  }

  function show(key, label, text, done, total, status) {
    const item = row(key, label);
    const bar = item.querySelector("progress");
    if (total) { bar.max = total; bar.value = done; } else { bar.removeAttribute("value"); }
    item.querySelector(".state").textContent = text;
    if (status) item.className = "file status-" + status;
  }

  function fileText(data) {
    if (data.status === "skipped") return "not loaded: " + data.reason;
    if (data.status === "unchanged") return "unchanged: nothing to add (" + data.passages + " passages)";
    let text = data.status + ": " + data.new + " new of " + data.passages + " passages";
    if (data.pages) text += ", " + data.pages + " " + data.unit + "s read at " + data.rate.toFixed(1) + " " + data.unit + "s/s";
    for (const note of data.notes || []) text += " · " + note;
    if (data.new) text += " · embedding next";
    return text;
  }

  const handlers = {
    received: function (data) {
      rows.delete("sending");
      const sending = list.querySelector('[data-name="sending"]');
      if (sending) sending.remove();
      for (const file of data.files) {
        if (file.status === "refused") show(file.name, file.name, "refused: " + file.reason, 1, 1, "refused");
        else show(file.name, file.name, "received " + megabytes(file.size) + ", waiting to be read", 0, 0, "received");
      }
    },
    queued: function (data) { if (busy) { busy.hidden = false; busy.textContent = data.message; } },
    reading: function (data) {
      if (busy) busy.hidden = true;
      if (data.unit === "file") { show(data.name, data.name, "reading…", 0, 0, "reading"); return; }
      let text = "reading page " + data.done + " of " + data.total;
      if (data.rate) text += " · " + data.rate.toFixed(1) + " pages/s";
      if (data.eta !== null) text += " · " + seconds(data.eta);
      show(data.name, data.name, text, data.done, data.total, "reading");
    },
    file: function (data) {
      const done = data.status === "skipped" ? "skipped" : (data.new ? "read" : "done");
      show(data.name, data.name, fileText(data), 1, 1, done);
    },
    embedding: function (data) {
      let text = "embedding " + data.done + " of " + data.total + " passages";
      if (data.rate) text += " · " + Math.round(data.rate) + " passages/s";
      if (data.done === data.total) text = "embedded " + data.total + " passages in " + data.seconds.toFixed(1) + " s";
      else if (data.eta !== null) text += " · " + seconds(data.eta);
      show("embedding", "all files", text, data.done, data.total, "embedding");
    },
    done: function (data) {
      for (const file of data.files) {
        const item = rows.get(file.name);
        if (item && file.status !== "refused" && file.status !== "skipped") {
          item.className = "file status-done";
          const state = item.querySelector(".state");
          state.textContent = state.textContent.replace(" · embedding next", "");
        }
      }
      const embedding = rows.get("embedding");
      if (embedding) embedding.className = "file status-done";
      const report = data.report;
      say("Loaded into " + data.corpus + ": " + report.passages_added + " passages added, " + report.passages_removed +
          " removed, " + report.passages_unchanged + " unchanged, in " + report.seconds.toFixed(1) + " s.");
      refreshSources();
    },
    error: function (data) { say("The upload failed: " + data.error, "error"); },
  };

  function dispatch(block) {
    let kind = "message";
    const lines = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event: ")) kind = line.slice(7);
      else if (line.startsWith("data: ")) lines.push(line.slice(6));
    }
    if (lines.length && handlers[kind]) handlers[kind](JSON.parse(lines.join("\n")));
  }

  function upload(files) {
    if (!files || !files.length) return;
    if (running) { say("An upload is still running; wait for it to finish.", "error"); return; }
    running = true;
    submit.disabled = true;
    list.textContent = "";
    rows.clear();
    if (outcome) outcome.textContent = "";
    const data = new FormData();
    data.append("csrf_token", token);  // first: the server checks it before reading the files
    data.append("corpus", form.elements.corpus.value || "default");
    for (const file of files) data.append("files", file, file.name);
    const xhr = new XMLHttpRequest();
    let seen = 0;
    let pending = "";
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "text/event-stream");
    xhr.setRequestHeader("X-CSRF-Token", token);
    xhr.upload.onprogress = function (event) {
      if (!event.lengthComputable) return;
      show("sending", files.length === 1 ? files[0].name : files.length + " files",
           "sending " + Math.round(100 * event.loaded / event.total) + "% (" + megabytes(event.loaded) + " of " +
           megabytes(event.total) + ")", event.loaded, event.total, "sending");
    };
    function take() {
      if (xhr.status !== 200) return;  // an error answer is JSON, read at the end
      pending += xhr.responseText.slice(seen);
      seen = xhr.responseText.length;
      let end;
      while ((end = pending.indexOf("\n\n")) >= 0) {
        dispatch(pending.slice(0, end));
        pending = pending.slice(end + 2);
      }
    }
    xhr.onprogress = take;
    xhr.onload = function () {
      take();
      if (xhr.status !== 200) {
        let message = "the server answered " + xhr.status;
        try { message = JSON.parse(xhr.responseText).error; } catch (error) { /* not JSON */ }
        say("Nothing was loaded: " + message, "error");
        list.textContent = "";
        rows.clear();
      }
    };
    xhr.onerror = function () { say("The server could not be reached; check that qa-app serve is running.", "error"); };
    xhr.onloadend = function () {
      running = false;
      submit.disabled = false;
      input.value = "";
    };
    xhr.send(data);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    upload(input.files);
  });
  for (const kind of ["dragenter", "dragover"]) {
    zone.addEventListener(kind, function (event) {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  }
  zone.addEventListener("dragleave", function () { zone.classList.remove("dragging"); });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    zone.classList.remove("dragging");
    if (event.dataTransfer) upload(event.dataTransfer.files);
  });
})();
