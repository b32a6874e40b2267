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
