// /wallet/pay: the payment sheet. The Pay button goes idle -> authenticating -> success | error.
// One Idempotency-Key stands for one intent: it is kept until an answer arrives, so a double
// click or a retry after a lost answer pays once; a new intent (after an answer) gets a new key.
import { ApiError, credentialJSON, passkeysAvailable, postJSON, requestOptions } from "./api.js";

const sheet = document.getElementById("sheet");
const button = document.getElementById("pay");
const select = document.getElementById("sheet-card");
const status = document.getElementById("sheet-status");
const error = document.getElementById("sheet-error");
const activity = document.getElementById("sheet-activity");

let key = sheet ? sheet.dataset.key : "";
let state = "idle";

function setState(next, label) {
  state = next;
  button.dataset.state = next;
  button.textContent = label;
  button.disabled = next !== "idle";
  button.setAttribute("aria-busy", next === "authenticating" ? "true" : "false");
}

function intent() {
  const d = sheet.dataset;
  return {
    cardId: Number(select.value),
    amount: Number(d.amount),
    currency: d.currency,
    merchantId: d.merchantId,
    merchantName: d.merchantName,
  };
}

function optimisticRow() {
  const row = document.createElement("li");
  row.className = "activity-row pending";
  row.dataset.state = "pending";
  const what = document.createElement("span");
  what.textContent = `${sheet.dataset.merchantName} · ${sheet.dataset.displayAmount}`;
  const badge = document.createElement("span");
  badge.className = "badge badge-pending";
  badge.textContent = "Pending";
  row.append(what, badge);
  activity.prepend(row);
  return row;
}

function settleRow(row, approved) {
  row.classList.remove("pending");
  row.dataset.state = approved ? "approved" : "rolled-back";
  row.classList.add(approved ? "approved" : "rolled-back");
  const badge = row.querySelector(".badge");
  badge.className = approved ? "badge badge-txn-approved" : "badge badge-txn-declined";
  badge.textContent = approved ? "Paid" : "Declined · not charged";
}

function fail(text, row) {
  if (row) settleRow(row, false);
  error.textContent = text;
  error.hidden = false;
  status.textContent = "";
  setState("idle", "Pay");
}

const PROBLEMS = {
  409: "This card can't pay on the web right now. Choose another card.",
  403: "Your passkey was not accepted. Please try again.",
  404: "This card is no longer in your wallet.",
  429: "Too many attempts. Wait a minute, then try again.",
};

const IN_FLIGHT = "This payment is still being processed. Press Pay again in a moment to see its result.";

async function pay() {
  if (state !== "idle") return;
  setState("authenticating", "Confirm with your passkey…");
  error.hidden = true;
  status.textContent = "Confirm with your fingerprint, face or screen lock.";
  const body = intent();
  const row = optimisticRow();
  let options;
  try {
    options = await postJSON(sheet.dataset.options, body);
  } catch (err) {
    key = crypto.randomUUID();
    return fail(err instanceof ApiError ? PROBLEMS[err.status] || "The payment could not start. Try again." :
      "You seem to be offline. Nothing was charged.", row);
  }
  let credential;
  try {
    credential = await navigator.credentials.get({ publicKey: requestOptions(options.publicKey) });
  } catch (_) {
    return fail("The payment was not confirmed. Nothing was charged.", row);
  }
  setState("authenticating", "Paying…");
  status.textContent = "Paying…";
  let answer;
  try {
    answer = await postJSON(sheet.dataset.confirm,
      { ...body, sheet: options.sheet, credential: credentialJSON(credential) },
      { "Idempotency-Key": key });
  } catch (err) {
    if (err instanceof ApiError && String(err.problem.type || "").endsWith("/idempotency-request-in-flight")) {
      // The first request with this key is still running: keep the key, so that the next press
      // gets that payment's answer instead of paying again.
      return fail(IN_FLIGHT, null);
    }
    if (err instanceof ApiError) {
      key = crypto.randomUUID();
      return fail(PROBLEMS[err.status] || "The payment could not be completed. Nothing was charged.", row);
    }
    return fail("The connection dropped. Press Pay to try again: you will be charged once.", row);
  }
  key = crypto.randomUUID();
  if (!answer.approved) return fail(answer.message, row);
  settleRow(row, true);
  status.textContent = `Paid ${answer.amount} to ${answer.merchant}.`;
  setState("success", "Paid ✓");
  window.setTimeout(() => window.location.assign(sheet.dataset.back), 1500);
}

if (sheet && button) {
  if (passkeysAvailable()) {
    button.disabled = false;
    button.addEventListener("click", pay);
  } else {
    error.textContent = "This browser can't use passkeys, so it can't confirm payments.";
    error.hidden = false;
  }
  if (select) select.addEventListener("change", () => { key = crypto.randomUUID(); });
}
