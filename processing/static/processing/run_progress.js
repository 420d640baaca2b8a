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

  function update(data) {
    bar.value = data.progress;
    text.textContent = Math.round(data.progress * 100) + " %";
    badge.textContent = data.status_display;
    badge.className = "df-badge df-" + data.status;
    error.textContent = data.error || "";
    for (const [name, value] of Object.entries(data.counters)) {
      const cell = box.querySelector('[data-counter="' + name + '"]');
      if (cell) cell.textContent = value;
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
