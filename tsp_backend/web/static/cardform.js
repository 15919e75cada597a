// The card form: the check digit (Luhn, ISO/IEC 7812-1 Annex B) and the expiry are checked in
// the page before anything is sent; each invalid field gets aria-invalid and its message (by
// aria-describedby), and the first one gets the focus. The service checks everything again.

const form = document.getElementById("card-form");

export function luhnOk(digits) {
  if (!/^\d{12,19}$/.test(digits)) return false;
  let sum = 0;
  for (let i = 0; i < digits.length; i += 1) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

export function expiryProblem(text, now = new Date()) {
  const match = /^\s*(\d{1,2})\s*\/\s*(\d{2}|\d{4})\s*$/.exec(text);
  if (!match) return "Enter the expiry date as MM/YY, as printed on the card.";
  const month = Number(match[1]);
  let year = Number(match[2]);
  if (year < 100) year += 2000;
  if (month < 1 || month > 12) return "The month must be between 01 and 12.";
  if (year < now.getFullYear() || (year === now.getFullYear() && month < now.getMonth() + 1)) {
    return "This card has expired. Check the date or use another card.";
  }
  return "";
}

function mark(field, message) {
  const error = document.getElementById(`${field.id}-error`);
  if (message) {
    field.setAttribute("aria-invalid", "true");
    if (error) error.textContent = message;
  } else {
    field.removeAttribute("aria-invalid");
    if (error) error.textContent = "";
  }
  return !message;
}

function check() {
  const pan = document.getElementById("pan");
  const expiry = document.getElementById("expiry");
  const cvv = document.getElementById("cvv");
  const digits = pan.value.replace(/[\s-]/g, "");
  const ok = [
    mark(pan, !digits ? "Enter the card number." :
      luhnOk(digits) ? "" : "This card number isn't valid. Check the digits."),
    mark(expiry, expiryProblem(expiry.value)),
    mark(cvv, /^\d{3,4}$/.test(cvv.value.trim()) ? "" :
      "Enter the 3 or 4 digit security code from your card."),
  ];
  return ok.every(Boolean);
}

if (form) {
  form.addEventListener("submit", (event) => {
    if (!check()) {
      event.preventDefault();
      event.stopImmediatePropagation();
      const first = form.querySelector('[aria-invalid="true"]');
      if (first) first.focus();
    }
  }, true);
  // Editing a field clears its message (while typing, never as the focus moves: a message that
  // vanished on blur would shift the button away from under a click).
  for (const id of ["pan", "expiry", "cvv"]) {
    const field = document.getElementById(id);
    field.addEventListener("input", () => {
      if (field.getAttribute("aria-invalid") === "true") mark(field, "");
    });
  }
}
