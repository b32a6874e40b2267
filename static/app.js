// Progressive enhancement of the question page: the server renders every state; this script only
// fetches the next page without a reload, swaps the parts marked data-swap, and keeps the URL in sync.
(function () {
  "use strict";
  const form = document.getElementById("ask-form");
  const question = document.getElementById("q");

  document.addEventListener("keydown", function (event) {
    const target = event.target;
    const typing = target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement ||
      target instanceof HTMLSelectElement || (target && target.isContentEditable);
    if (event.key === "/" && !typing && question) {
      event.preventDefault();
      question.focus();
      question.select();
    }
  });

  // Stream a generated answer into the answer box; the extracted answer stays until one arrives.
  let stream = null;
  function citeLinks(element, text) {
    element.textContent = "";
    appendCited(element, text);
  }

  function appendCited(element, text) {
    let last = 0;
    for (const match of text.matchAll(/\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]/g)) {
      element.append(text.slice(last, match.index), "[");
      match[1].split(",").forEach(function (n, i) {
        if (i) element.append(", ");
        const link = document.createElement("a");
        link.className = "cite";
        link.href = "#p-" + n.trim();
        link.textContent = n.trim();
        element.append(link);
      });
      element.append("]");
      last = match.index + match[0].length;
    }
    element.append(text.slice(last));
  }

  // A generated answer with each sentence its cited passages do not support marked (claims from the server).
  function showClaims(element, done) {
    const claims = done.claims || [];
    element.textContent = "";
    let last = 0;
    for (const claim of claims) {
      appendCited(element, done.text.slice(last, claim.start));
      const sentence = done.text.slice(claim.start, claim.end);
      if (claim.supported) {
        appendCited(element, sentence);
      } else {
        const mark = document.createElement("mark");
        mark.className = "unsupported";
        mark.title = claim.status === "uncited" ? "cites no passage" : "not supported by the passage it cites";
        appendCited(mark, sentence);
        element.append(mark);
      }
      last = claim.end;
    }
    appendCited(element, done.text.slice(last));
  }

  // Why there is no answer, and links that run the next search (as the server renders them).
  function showNextSteps(box, done) {
    const home = form ? form.action.split("?")[0] : "/";
    if (done.detail) {
      const reason = document.createElement("p");
      reason.className = "answer-reason";
      reason.textContent = done.detail;
      box.append(reason);
    }
    if (!done.suggestions || !done.suggestions.length) return;
    const list = document.createElement("ul");
    list.className = "next-steps";
    for (const step of done.suggestions) {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.className = "next-step";
      link.dataset.action = step.action;
      link.href = home + "?" + new URLSearchParams(step.params).toString();
      link.textContent = step.label;
      item.append(link);
      list.append(item);
    }
    box.append(list);
  }

  // The conversation: each answer shown is kept for this tab (sessionStorage), and the page's list of
  // earlier questions shows their answers again. The URL carries the questions only.
  function rememberAnswer() {
    const box = document.getElementById("answer");
    const asked = document.getElementById("asked-question");
    if (!box || !asked || box.classList.contains("streaming")) return;
    try {
      window.sessionStorage.setItem("qa-turn:" + asked.dataset.question, box.querySelector(".answer-text").textContent.trim());
    } catch (error) { /* storage full or off: the list just shows the questions */ }
  }

  function showConversation() {
    for (const turn of document.querySelectorAll(".turn-answer[data-question]")) {
      let text = null;
      try { text = window.sessionStorage.getItem("qa-turn:" + turn.dataset.question); } catch (error) { text = null; }
      if (text) turn.textContent = text;
    }
  }

  function streamAnswer() {
    showConversation();
    rememberAnswer();
    if (stream) { stream.close(); stream = null; }
    const box = document.getElementById("answer");
    if (!box || !box.dataset.stream || !window.EventSource) return;
    const label = box.querySelector("h2");
    const text = box.querySelector(".answer-text");
    const status = box.querySelector(".answer-status");
    const extracted = text.cloneNode(true);
    const link = box.querySelector(".write-answer");  // for pages without JavaScript
    if (link) link.remove();
    let written = "";
    box.classList.add("streaming");
    status.textContent = "Writing an answer with " + box.dataset.model + "…";
    const source = new EventSource(box.dataset.stream);
    stream = source;
    source.addEventListener("token", function (event) {
      if (!written) { label.textContent = "Answer (being written by " + box.dataset.model + ")"; }
      written += JSON.parse(event.data);
      text.textContent = written;
    });
    source.addEventListener("error", function (event) {
      if (event.data) status.textContent = "The language model failed: " + JSON.parse(event.data).error + "; showing extracted sentences.";
    });
    source.addEventListener("done", function (event) {
      const done = JSON.parse(event.data);
      source.close();
      box.classList.remove("streaming");
      if (done.kind === "generated") {
        label.textContent = "Answer ";
        const kind = document.createElement("span");
        kind.className = "kind";
        kind.textContent = "written by " + done.model + " from the passages";
        label.append(kind);
        showClaims(text, done);
        const unsupported = done.unsupported || 0;
        status.textContent = unsupported ? unsupported + (unsupported === 1 ? " sentence (marked) is" : " sentences (marked) are") +
          " not supported by the passages cited: check " + (unsupported === 1 ? "it" : "them") + " in the passages below." : "";
      } else if (done.kind === "no_answer") {  // the model declined
        label.textContent = "The documents do not seem to answer this";
        box.classList.add("kind-no_answer");
        text.textContent = done.text;
        status.textContent = "";
        showNextSteps(box, done);
      } else {
        text.replaceWith(extracted);
        if (done.error) status.textContent = "The language model failed (" + done.error + "); these sentences were extracted instead.";
        else status.textContent = "";
      }
      rememberAnswer();
    });
    source.onerror = function () {  // the connection dropped: EventSource would retry for ever
      if (source.readyState !== EventSource.CLOSED) source.close();
      box.classList.remove("streaming");
      if (!written) status.textContent = "The answer stream was interrupted.";
    };
  }
  streamAnswer();

  if (!form || !window.fetch || !window.history.pushState) return;
  const results = document.getElementById("results");
  let pending = null;

  function urlOf(formElement) {
    const params = new URLSearchParams();
    for (const [key, value] of new FormData(formElement)) {
      if (typeof value === "string" && value !== "") params.append(key, value);
    }
    return formElement.action.split("?")[0] + "?" + params.toString();
  }

  function fillForm(url) {
    const params = new URL(url, window.location.href).searchParams;
    for (const element of form.elements) {
      if (!element.name || element.type === "submit") continue;
      if (element.tagName === "SELECT") {
        element.value = params.get(element.name) || element.options[0].value;
      } else if (element.type !== "hidden") {
        element.value = params.get(element.name) || (element.name === "top_k" ? element.defaultValue : "");
      }
    }
  }

  async function show(url, push) {
    if (pending) pending.abort();
    pending = new AbortController();
    document.body.classList.add("loading");
    results.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(url, { signal: pending.signal, headers: { "Accept": "text/html" } });
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      // The response is this app's own escaped HTML; swap each marked part by id.
      for (const fresh of page.querySelectorAll("[data-swap]")) {
        const current = document.getElementById(fresh.id);
        if (current) current.replaceWith(document.importNode(fresh, true));
      }
      document.title = page.title;
      if (push) window.history.pushState({ url: url }, "", url);
      streamAnswer();
    } catch (error) {
      if (error.name === "AbortError") return;
      const fresh = document.getElementById("results");
      fresh.textContent = "";
      const message = document.createElement("p");
      message.className = "error";
      message.setAttribute("role", "alert");
      message.textContent = "The server could not be reached. Check that qa-app serve is running, then try again.";
      fresh.appendChild(message);
    } finally {
      document.body.classList.remove("loading");
      const now = document.getElementById("results");
      if (now) now.removeAttribute("aria-busy");
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!question.value.trim()) { question.focus(); return; }
    show(urlOf(form), true);
  });

  window.addEventListener("popstate", function () {
    fillForm(window.location.href);
    show(window.location.href, false);
  });
})();
