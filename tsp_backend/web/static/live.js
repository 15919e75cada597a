// Live updates: new transactions arrive as Server-Sent Events and are added to the open list.

const list = document.getElementById("transactions");

function row(t) {
  const li = document.createElement("li");
  li.className = "txn txn-new";
  li.dataset.status = t.status;
  li.dataset.id = t.id;
  const what = document.createElement("span");
  what.className = "txn-what";
  const merchant = document.createElement("span");
  merchant.className = "txn-merchant";
  merchant.textContent = t.merchant;
  const card = document.createElement("span");
  card.className = "txn-card";
  card.textContent = t.card;
  what.append(merchant, card);
  const amount = document.createElement("span");
  amount.className = "txn-amount";
  amount.textContent = t.amount;
  const whenSpan = document.createElement("span");
  whenSpan.className = "txn-when";
  const time = document.createElement("time");
  time.dateTime = t.at;
  time.textContent = t.when;
  whenSpan.append(time);
  const badge = document.createElement("span");
  badge.className = `badge badge-txn-${t.status}`;
  badge.textContent = t.state;
  li.append(what, amount, whenSpan, badge);
  return li;
}

let source = null;

function connect() {
  if (!list || !window.EventSource || source) return;
  const url = new URL(list.dataset.live, window.location.href);
  if (list.dataset.after) url.searchParams.set("after", list.dataset.after);
  source = new EventSource(url);
  source.addEventListener("transaction", (event) => {
    const t = JSON.parse(event.data);
    if (list.dataset.card && String(t.cardId) !== list.dataset.card) return;
    if (list.querySelector(`[data-id="${CSS.escape(t.id)}"]`)) return;
    list.prepend(row(t));
    const empty = document.getElementById("no-transactions");
    if (empty) empty.hidden = true;
  });
}

function disconnect() {
  if (source) source.close();
  source = null;
}

if (list && list.dataset.live) {
  if (navigator.onLine) connect();
  window.addEventListener("online", connect);
  window.addEventListener("offline", disconnect);
}
