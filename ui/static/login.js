// The LAN password form: POST /api/login, then go to the front page.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("login-form");
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = document.getElementById("login-error");
    error.hidden = true;
    const res = await fetch("/api/login", {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrftoken": NC.csrf() },
      body: JSON.stringify({ password: document.getElementById("password").value }),
    });
    if (res.ok) { location.replace("/"); return; }
    const body = await res.json().catch(() => ({}));
    error.textContent = res.status === 401 ? NC.t("login.wrong_password") : (body.error || res.statusText);
    error.hidden = false;
  });
});
