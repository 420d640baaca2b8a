// Polls the run's progress view and updates the run page until the run ends.
(function () {
  "use strict";
  const box = document.getElementById("run-live");
  if (!box || box.dataset.finished === "true") return;
  const url = box.dataset.progressUrl;
  const bar = document.getElementById("run-progress");
  const text = document.getElementById("run-progress-text");
  const badge = document.getElementById("run-status");
  const error = document.getElementById("run-error");
  // Counts with thousands separators, as the page first shows them (12,345).
  const grouped = new Intl.NumberFormat("en-US");

  function update(data) {
    bar.value = data.progress;
    text.textContent = Math.round(data.progress * 100) + " %";
    badge.textContent = data.status_display;
    badge.className = "df-badge df-" + data.status;
    error.textContent = data.error || "";
    // The counters are the run summary's rows_* keys, each shown in the cell of that name.
    for (const cell of box.querySelectorAll("[data-counter]")) {
      if (cell.dataset.counter in data) cell.textContent = grouped.format(data[cell.dataset.counter]);
    }
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then((data) => {
        update(data);
        if (data.finished) {
          // Reload once so the action buttons and links match the final state.
          window.setTimeout(() => window.location.reload(), 500);
        } else {
          window.setTimeout(poll, 1000);
        }
      })
      .catch(() => window.setTimeout(poll, 3000));
  }
  window.setTimeout(poll, 500);
})();
