// /wallet/setup: make this browser a device with a passkey (user verification required).
import { ApiError, creationOptions, credentialJSON, passkeysAvailable, postJSON } from "./api.js";

const root = document.getElementById("setup");
const form = document.getElementById("passkey-form");
const button = document.getElementById("create-passkey");
const error = document.getElementById("setup-error");

function showError(text) {
  error.textContent = text;
  error.hidden = false;
}

if (form && button) {
  if (passkeysAvailable()) {
    button.disabled = false;
  } else {
    showError("This browser can't create passkeys. Try an up-to-date browser with a screen lock.");
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (button.disabled) return;
    button.disabled = true;
    error.hidden = true;
    button.textContent = "Waiting for your passkey…";
    try {
      const options = await postJSON(root.dataset.options, {});
      const credential = await navigator.credentials.create({ publicKey: creationOptions(options) });
      const name = document.getElementById("device-name").value;
      const done = await postJSON(root.dataset.register, { name, credential: credentialJSON(credential) });
      window.location.assign(done.next);
    } catch (err) {
      button.disabled = false;
      button.textContent = "Create a passkey";
      if (err instanceof ApiError) {
        showError("The passkey could not be saved. Please try again.");
      } else {
        showError("No passkey was created. Try again, and confirm with your fingerprint, face or screen lock.");
      }
    }
  });
}
