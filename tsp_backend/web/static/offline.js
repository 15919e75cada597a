// Offline: register the service worker, say when the page is offline, disable what needs the
// service (with the reason), reload on reconnect, and delete every cache when signing out.

const notice = document.getElementById("offline-notice");
const signedIn = document.body.dataset.signedIn === "1";
let loadedOffline = !navigator.onLine;

export async function clearCaches() {
  if (!window.caches) return;
  const keys = await caches.keys();
  await Promise.all(keys.map((key) => caches.delete(key)));
}

function blockClick(event) {
  if (!navigator.onLine) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}

function setOffline(offline) {
  if (notice) notice.hidden = !offline;
  document.querySelectorAll("[data-needs-online]").forEach((el) => {
    if (el.tagName === "A") {
      if (offline) {
        el.setAttribute("aria-disabled", "true");
        el.addEventListener("click", blockClick);
      } else {
        el.removeAttribute("aria-disabled");
      }
    } else {
      el.disabled = offline;
    }
    if (offline) {
      el.setAttribute("title", "Needs a connection");
      el.setAttribute("aria-describedby", "offline-notice");
    } else {
      el.removeAttribute("title");
      el.removeAttribute("aria-describedby");
    }
  });
}

// navigator.onLine only says whether there is a network at all; whether the service answers is
// learnt by asking it (a page served from the cache may be on a network without the service).
async function reachable() {
  try {
    const response = await fetch("/healthz", { cache: "no-store", credentials: "omit" });
    return response.ok;
  } catch (_) {
    return false;
  }
}

const RECHECK_MS = 3000;
let recheck = null;

async function check() {
  const offline = !navigator.onLine || !(await reachable());
  setOffline(offline);
  window.clearTimeout(recheck);
  if (offline) {
    loadedOffline = true;
    recheck = window.setTimeout(check, RECHECK_MS);
  } else if (loadedOffline) {
    window.location.reload();
  }
}

window.addEventListener("offline", () => check());
window.addEventListener("online", () => check());
setOffline(!navigator.onLine);
check();

const logout = document.getElementById("logout-form");
if (logout) {
  logout.addEventListener("submit", (event) => {
    if (logout.dataset.cleared === "1") return;
    event.preventDefault();
    clearCaches().finally(() => {
      logout.dataset.cleared = "1";
      logout.requestSubmit();
    });
  });
}

if (!signedIn) {
  clearCaches();
} else if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/wallet/sw.js", { scope: "/wallet/" }).catch(() => {});
}
