// safecity console: the live parts. Pages work without this file; it adds the alert
// stream, refreshing camera tiles and refreshing health figures. DOM text is set with
// textContent only (labels and plates come from cameras, never trusted as HTML).
"use strict";

function utc(iso) {
  return iso ? iso.replace("T", " ").slice(0, 19) : "";
}

function liveAlerts() {
  const list = document.getElementById("alerts");
  if (!list || !window.EventSource) return;
  const alertTypes = new Set((list.dataset.alertTypes || "").split(","));
  const state = document.getElementById("stream-state");
  const setState = (text) => {
    if (!state) return;
    state.textContent = text;
    state.className = "state state-" + (text === "live" ? "live" : "connecting");
  };
  const source = new EventSource("/api/events/stream");
  source.onopen = () => setState("live");
  source.onerror = () => setState("reconnecting");
  source.addEventListener("event", (message) => {
    const event = JSON.parse(message.data);
    const item = document.createElement("li");
    item.className = "alert-item is-new" + (alertTypes.has(event.type) ? " is-alert" : "");
    item.dataset.eventId = String(event.id);
    const link = document.createElement("a");
    link.href = "/events/" + event.id + "?reason=live+monitoring";
    const parts = [["type", event.type], ["cam", event.camera], ["time", utc(event.start_time)]];
    if (event.label) parts.push(["label", event.label]);
    if (event.attributes && event.attributes.plate) parts.push(["plate", String(event.attributes.plate)]);
    for (const [kind, text] of parts) {
      const node = document.createElement(kind === "time" ? "time" : "span");
      if (kind !== "time") node.className = kind;
      node.textContent = text;
      link.appendChild(node);
    }
    item.appendChild(link);
    list.prepend(item);
    while (list.children.length > 50) list.lastElementChild.remove();
  });
}

function refreshTiles() {
  for (const img of document.querySelectorAll("img[data-refresh]")) {
    const tile = img.closest(".tile");
    const label = tile && tile.querySelector("[data-source]");
    const load = async () => {
      try {
        const response = await fetch(img.dataset.refresh, { cache: "no-store" });
        if (!response.ok) return;
        const url = URL.createObjectURL(await response.blob());
        const old = img.src;
        img.onload = () => {
          if (tile) tile.classList.add("has-picture");
          if (old.startsWith("blob:")) URL.revokeObjectURL(old);
        };
        img.src = url;
        if (label) {
          const from = response.headers.get("X-Frame-Source");
          label.textContent = from === "live" ? "live, faces blurred" : "last event, faces blurred";
        }
      } catch (error) {
        /* the next round tries again */
      }
    };
    load();
    setInterval(load, Number(img.dataset.interval || 2000));
  }
}

function refreshHealth() {
  const table = document.querySelector("table[data-refresh-health]");
  if (!table) return;
  const numbers = { fps: 1, lag_seconds: 2 };
  const update = async () => {
    try {
      const response = await fetch(table.dataset.refreshHealth, { cache: "no-store" });
      if (!response.ok) return;
      for (const camera of await response.json()) {
        const row = table.querySelector(`tr[data-camera="${CSS.escape(camera.name)}"]`);
        if (!row || !camera.health) continue;
        for (const cell of row.querySelectorAll("[data-field]")) {
          const field = cell.dataset.field;
          let value = camera.health[field];
          if (field === "state") {
            const badge = document.createElement("span");
            badge.className = "state state-" + value;
            badge.textContent = value;
            cell.replaceChildren(badge);
            continue;
          }
          if (field in numbers && typeof value === "number") value = value.toFixed(numbers[field]);
          cell.textContent = value === null || value === undefined ? "" : String(value);
        }
      }
    } catch (error) {
      /* keep the last figures */
    }
  };
  setInterval(update, 2000);
}

document.addEventListener("DOMContentLoaded", () => {
  liveAlerts();
  refreshTiles();
  refreshHealth();
});
