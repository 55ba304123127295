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
