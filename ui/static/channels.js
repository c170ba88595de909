// The channels page: one card per phone channel (WhatsApp, Telegram), built from the shared widgets in pairing.js,
// with health, pairing and the buttons to log out or turn a channel off. Live changes arrive over the event stream.
"use strict";
document.addEventListener("DOMContentLoaded", async () => {
  const box = document.getElementById("channels");
  const { channels } = await NC.api("GET", "/api/channels");
  box.replaceChildren();
  for (const view of channels) {
    const card = NC.el("section", { class: "card ch-card", id: `channel-${view.name}`, "aria-label": view.title });
    box.append(card);
    const make = view.name === "whatsapp" ? NCPairing.whatsapp : NCPairing.telegram;
    make(card, { manage: true }).update(view);
  }
});
