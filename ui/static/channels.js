// The channels page: one card per phone channel, in the order the server lists them, each drawn by the page module
// the channel's view names (page_module, see channels/widgets.js) with health, pairing and the buttons to log out or
// turn a channel off. Live changes arrive over the event stream. No channel is named here.
document.addEventListener("DOMContentLoaded", async () => {
  const box = document.getElementById("channels");
  const { channels } = await NC.api("GET", "/api/channels");
  box.replaceChildren();
  await Promise.all(channels.map(async (view) => {
    const card = NC.el("section", { class: "card ch-card", id: `channel-${view.name}`, "aria-label": view.title });
    box.append(card);
    try {
      const module = await import(view.page_module);
      module.mount(card, { manage: true }).update(view);
    } catch (err) {
      console.error(`the ${view.name} card did not load:`, err);  // for whoever reads the console (and the tests)
      const reload = NC.el("button", { type: "button", class: "primary", onclick: () => window.location.reload() },
        NC.t("channels.reload"));
      card.classList.add("ch-widget");
      card.replaceChildren(NC.el("h2", { class: "ch-title" }, view.title),
        NC.el("div", { class: "notice bad", role: "alert" }, NC.el("p", {}, NC.t("channels.module_failed")), reload));
    }
  }));
});
