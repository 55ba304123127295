// Small behaviours on top of htmx. Every page also works without JavaScript,
// because the form and the links are ordinary GET requests.
(function () {
  "use strict";

  // Example queries are links to "/?q=...". With JavaScript they fill the
  // query box and submit the form, so the current filters are kept.
  document.addEventListener("click", function (event) {
    var link = event.target.closest("a.example-query");
    if (!link) {
      return;
    }
    var form = document.getElementById("search-form");
    var box = document.getElementById("q");
    if (!form || !box || typeof form.requestSubmit !== "function") {
      return;
    }
    event.preventDefault();
    box.value = link.dataset.query;
    form.requestSubmit();
  });

  // The URL is the state of the search. htmx restores the results from its
  // history cache on Back and Forward, but its snapshot of the form was taken
  // after the user had already changed a control, so the form controls are
  // set again from the restored URL.
  function syncFormWithUrl() {
    var form = document.getElementById("search-form");
    if (!form) {
      return;
    }
    var params = new URLSearchParams(window.location.search);
    Array.prototype.forEach.call(form.elements, function (control) {
      if (!control.name) {
        return;
      }
      if (control.type === "checkbox") {
        control.checked = params.getAll(control.name).indexOf(control.value) !== -1;
      } else if (control.tagName === "SELECT" || control.tagName === "INPUT") {
        control.value = params.get(control.name) || "";
      }
    });
  }

  document.addEventListener("htmx:historyRestore", syncFormWithUrl);

  // After a page link loads new cards, move keyboard focus to the heading
  // named by the pagination's data-focus attribute, so keyboard and
  // screen-reader users start at the new cards.
  var focusAfterSwap = null;

  document.addEventListener("htmx:beforeRequest", function (event) {
    var pagination = event.detail.elt.closest && event.detail.elt.closest(".pagination");
    focusAfterSwap = pagination ? pagination.dataset.focus : null;
  });

  document.addEventListener("htmx:afterSettle", function () {
    if (!focusAfterSwap) {
      return;
    }
    var heading = document.getElementById(focusAfterSwap);
    focusAfterSwap = null;
    if (heading) {
      heading.focus();
      heading.scrollIntoView({ block: "start" });
    }
  });

  // Screen readers do not notice the results region being replaced, so the
  // new results heading ("12 studies ranked for …") is announced.
  document.addEventListener("htmx:afterSettle", function (event) {
    var announcement = document.getElementById("results-announcement");
    var heading = document.getElementById("results-heading");
    if (announcement && heading && event.detail.target && event.detail.target.id === "results") {
      announcement.textContent = heading.textContent.replace(/\s+/g, " ").trim();
    }
  });

  // Cine loops can be paused, because moving images that run for more than
  // five seconds need a way to stop them (WCAG 2.2.2). An animated WebP in an
  // <img> cannot be paused, so a paused image is replaced by a canvas holding
  // one still frame. The choice is kept in localStorage and starts paused when
  // the operating system requests reduced motion (prefers-reduced-motion).
  var MOTION_KEY = "cmr-search-cine-paused";
  var paused = false;

  function freeze(image) {
    if (image.dataset.frozen) {
      return;
    }
    image.dataset.frozen = "true";
    var draw = function () {
      if (!image.dataset.frozen || !image.naturalWidth) {
        return;
      }
      var canvas = document.createElement("canvas");
      canvas.width = image.naturalWidth;
      canvas.height = image.naturalHeight;
      canvas.className = "frozen-cine";
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", image.alt + " (paused)");
      canvas.getContext("2d").drawImage(image, 0, 0);
      image.after(canvas);
      image.hidden = true;
    };
    if (image.complete) {
      draw();
    } else {
      image.addEventListener("load", draw, { once: true });
    }
  }

  function thaw(image) {
    var next = image.nextElementSibling;
    if (next && next.classList.contains("frozen-cine")) {
      next.remove();
    }
    image.hidden = false;
    delete image.dataset.frozen;
  }

  function applyMotion(root) {
    root.querySelectorAll("img.cine").forEach(paused ? freeze : thaw);
  }

  function setPaused(value) {
    paused = value;
    var button = document.getElementById("motion-toggle");
    if (button) {
      button.setAttribute("aria-pressed", String(paused));
      button.textContent = paused ? "Play cine loops" : "Pause cine loops";
    }
    applyMotion(document);
  }

  function storedPreference() {
    try {
      return window.localStorage.getItem(MOTION_KEY);
    } catch (error) {
      return null;
    }
  }

  // Click handlers are delegated from the document, because htmx replaces
  // the body from its history cache on Back, and handlers attached to the old
  // buttons would be lost with them.
  document.addEventListener("click", function (event) {
    if (!event.target.closest("#motion-toggle")) {
      return;
    }
    setPaused(!paused);
    try {
      window.localStorage.setItem(MOTION_KEY, paused ? "true" : "false");
    } catch (error) {
      // Private browsing can forbid storage; the choice then lasts for this page only.
    }
  });

  function showMotionToggle() {
    var button = document.getElementById("motion-toggle");
    if (button) {
      button.hidden = false;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    showMotionToggle();
    var stored = storedPreference();
    var reduceMotion = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    setPaused(stored === null ? reduceMotion : stored === "true");
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    applyMotion(event.detail.elt || document);
  });

  // A history snapshot keeps the canvases but not their pixels, so restored
  // pages are thawed and frozen again.
  document.addEventListener("htmx:historyRestore", function () {
    document.querySelectorAll("img.cine").forEach(thaw);
    document.querySelectorAll("canvas.frozen-cine").forEach(function (canvas) {
      canvas.remove();
    });
    showMotionToggle();
    setPaused(paused);
    showCopyButtons();
  });

  // Copy buttons put the StudyInstanceUID or accession on the clipboard, for
  // pasting into the PACS viewer. The Clipboard API exists only in secure
  // contexts (HTTPS or loopback), so elsewhere the buttons stay hidden.
  function showCopyButtons() {
    if (!navigator.clipboard) {
      return;
    }
    document.querySelectorAll("button.copy-button").forEach(function (button) {
      button.hidden = false;
    });
  }

  document.addEventListener("DOMContentLoaded", showCopyButtons);

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy-button");
    if (!button || !navigator.clipboard) {
      return;
    }
    var source = document.getElementById(button.dataset.copyTarget);
    navigator.clipboard.writeText(source.textContent.trim()).then(
      function () {
        button.textContent = "Copied";
      },
      function () {
        button.textContent = "Copy failed";
      }
    );
  });

  // A request that fails before any response (server stopped, network down)
  // leaves the old results in place, so the status line reports it.
  function showRequestFailure(message) {
    var status = document.getElementById("request-status");
    if (status) {
      status.textContent = message;
      status.hidden = false;
    }
  }

  document.addEventListener("htmx:sendError", function () {
    showRequestFailure("The server could not be reached. The results below are out of date; try again.");
  });

  document.addEventListener("htmx:beforeRequest", function () {
    var status = document.getElementById("request-status");
    if (status) {
      status.hidden = true;
      status.textContent = "";
    }
  });
})();
