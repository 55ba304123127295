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

  // htmx stores the page's HTML in its history cache, and HTML attributes do
  // not follow what the user typed. Copy the live values into the attributes
  // first, so that the browser's back button restores the form as it was.
  document.addEventListener("htmx:beforeHistorySave", function () {
    document.querySelectorAll("input, select").forEach(function (control) {
      if (control.type === "checkbox" || control.type === "radio") {
        control.toggleAttribute("checked", control.checked);
      } else if (control.tagName === "SELECT") {
        Array.prototype.forEach.call(control.options, function (option) {
          option.toggleAttribute("selected", option.selected);
        });
      } else {
        control.setAttribute("value", control.value);
      }
    });
  });

  // After a page link loads new results, move keyboard focus to the results
  // heading, so keyboard and screen-reader users start at the new cards.
  document.addEventListener("htmx:afterSettle", function (event) {
    var trigger = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (!trigger || !trigger.closest || !trigger.closest(".pagination")) {
      return;
    }
    var heading = document.getElementById("results-heading");
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
