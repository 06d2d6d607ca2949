// Valerix storefront. Plain JS, no build step. Server strings only ever go in via textContent.
(function () {
  "use strict";

  var POLL_MS = 2000;            // the fallback when the WebSocket is not open
  var HEALTH_MS = 3000;
  var RECENT = 10;
  var MAX_QTY = 1000;

  var STATUS_LABEL = {
    pending: "Placing…",
    pending_verification: "Verifying with the warehouse",
    confirmed: "Confirmed",
    failed: "Not placed",
    cancelled: "Cancelled",
    shipped: "Shipped"
  };
  var STEP_LABEL = {
    pending: "Received",
    pending_verification: "Verifying with the warehouse",
    confirmed: "Confirmed",
    failed: "Not placed",
    cancelled: "Cancelled",
    shipped: "Shipped"
  };
  var REASON_TEXT = {
    insufficient_stock: "not enough stock",
    unknown_product: "unknown product",
    grpc_timeout: "the warehouse took too long to answer",
    connection_error: "the warehouse could not be reached",
    server_error: "the warehouse had a problem",
    sweeper_retry: "asked the warehouse again",
    verification_timeout: "the warehouse never confirmed it",
    customer_request: "you cancelled it",
    rejected: "the warehouse could not reserve it"
  };
  var LIGHT_TEXT = { green: "OK", amber: "Warning", red: "Alert", unknown: "unknown" };

  var state = {
    products: [],                 // [{productId, name, stock, priceCents}]
    orders: new Map(),            // orderId -> order (as the API shows it)
    recent: [],                   // order ids, newest first
    selected: null,               // order id shown in the timeline
    answered: null,               // order id the result panel talks about
    mode: "connecting",
    mine: new Set(),              // orders placed from this page: their changes are announced
    pendingKey: null              // Idempotency-Key reused if the same order is retried after a network error
  };

  function $(id) { return document.getElementById(id); }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  var money = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });
  function price(cents) { return money.format((Number(cents) || 0) / 100); }

  function clock(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) return "";
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function shortId(id) { return String(id || "").replace(/^ORD-/, "").slice(0, 8); }

  function productName(id) {
    for (var i = 0; i < state.products.length; i++) {
      if (state.products[i].productId === id) return state.products[i].name;
    }
    return id;
  }

  function itemsText(items) {
    return (items || []).map(function (i) { return i.quantity + " × " + productName(i.productId); }).join(", ");
  }

  function reasonText(reason) { return REASON_TEXT[reason] || String(reason || "").replace(/_/g, " "); }

  function announce(text) {
    var a = $("announcer");
    a.textContent = "";
    window.setTimeout(function () { a.textContent = text; }, 50);
  }

  function newKey() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return "web-" + Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  // --- session: a guest customer's bearer token, fetched on the first visit and kept --------
  var SESSION_KEY = "valerix.session";
  var current = null;            // {token, customerId, expiresAt}
  var sessionPromise = null;

  function fresh(s) {
    return s && typeof s.token === "string" && Date.parse(s.expiresAt) - Date.now() > 60000;
  }

  function storedSession() {
    try { return JSON.parse(window.localStorage.getItem(SESSION_KEY) || "null"); } catch (e) { return null; }
  }

  // refused: the token the API just answered 401 to; dropped unless another call already did.
  function session(refused) {
    if (refused && current && current.token === refused) {
      current = null;
      try { window.localStorage.removeItem(SESSION_KEY); } catch (e) { /* storage blocked */ }
    }
    if (!fresh(current)) current = fresh(storedSession()) ? storedSession() : null;
    if (current) return Promise.resolve(current);
    if (!sessionPromise) {
      sessionPromise = fetch("/api/session", { method: "POST", headers: { Accept: "application/json" }, cache: "no-store" })
        .then(function (response) {
          if (response.status !== 201) throw new Error("no session");
          return response.json();
        })
        .then(function (s) {
          current = s;
          sessionPromise = null;
          try { window.localStorage.setItem(SESSION_KEY, JSON.stringify(s)); } catch (e) { /* memory only */ }
          return s;
        }, function (e) { sessionPromise = null; throw e; });
    }
    return sessionPromise;
  }

  // --- HTTP ---------------------------------------------------------------------------------
  function api(path, options, retried) {
    if (path.indexOf("/api/orders") === 0) {
      var token = null;
      return session(null).then(function (s) {
        token = s.token;
        return send(path, options, token);
      }).then(function (r) {
        if (r.status === 401 && !retried) {  // expired or from an old key: a new guest session
          return session(token).then(function () { return api(path, options, true); });
        }
        return r;
      });
    }
    return send(path, options, null);
  }

  function send(path, options, token) {
    options = options || {};
    var init = { method: options.method || "GET", headers: { Accept: "application/json" }, cache: "no-store" };
    if (token) init.headers.Authorization = "Bearer " + token;
    if (options.body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    if (options.headers) Object.keys(options.headers).forEach(function (k) { init.headers[k] = options.headers[k]; });
    return fetch(path, init).then(function (response) {
      return response.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
        return { status: response.status, ok: response.ok, body: body };
      });
    });
  }

  // --- products -----------------------------------------------------------------------------
  function setProducts(list) {
    if (!Array.isArray(list)) return;
    var before = {};
    state.products.forEach(function (p) { before[p.productId] = p.stock; });
    state.products = list;
    renderProducts(before);
    renderSelect();
  }

  function stockText(stock) {
    if (stock <= 0) return "Out of stock";
    if (stock <= 5) return "Only " + stock + " left";
    return String(stock);
  }

  function renderProducts(before) {
    var rows = $("product-rows");
    rows.replaceChildren();
    state.products.forEach(function (p) {
      var tr = el("tr");
      var name = el("td");
      name.appendChild(el("span", "product-name", p.name));
      name.appendChild(el("span", "sku", p.productId));
      name.appendChild(el("span", "price-inline", price(p.priceCents)));
      tr.appendChild(name);
      tr.appendChild(el("td", "num price", price(p.priceCents)));
      var stock = el("td", "num stock", stockText(p.stock));
      stock.dataset.productId = p.productId;
      if (p.stock <= 0) stock.classList.add("out");
      else if (p.stock <= 5) stock.classList.add("low");
      if (before && before[p.productId] !== undefined && before[p.productId] !== p.stock) stock.classList.add("changed");
      tr.appendChild(stock);
      rows.appendChild(tr);
    });
    if (!state.products.length) {
      var empty = el("td", "muted", "No products to show.");
      empty.colSpan = 3;
      rows.appendChild(el("tr")).appendChild(empty);
    }
  }

  function renderSelect() {
    var select = $("product");
    var chosen = select.value;
    select.replaceChildren();
    select.appendChild(el("option", null, "Choose a product")).value = "";
    state.products.forEach(function (p) {
      var left = p.stock > 5 ? p.stock + " in stock" : stockText(p.stock).toLowerCase();
      var option = el("option", null, p.name + " — " + price(p.priceCents) + " (" + left + ")");
      option.value = p.productId;
      select.appendChild(option);
    });
    if (chosen && state.products.some(function (p) { return p.productId === chosen; })) select.value = chosen;
    else if (!chosen && state.products.length) select.value = state.products[0].productId;
  }

  function loadProducts() {
    return api("/api/products").then(function (r) {
      var note = $("stock-note");
      if (r.ok) { note.hidden = true; setProducts(r.body); return; }
      note.textContent = "Stock may be out of date: the warehouse is not answering right now.";
      note.hidden = false;
    }).catch(function () {});
  }

  // --- orders -------------------------------------------------------------------------------
  function remember(order) {
    if (!order || !order.orderId) return;
    var known = state.orders.get(order.orderId) || {};
    Object.keys(order).forEach(function (k) { known[k] = order[k]; });
    state.orders.set(order.orderId, known);
  }

  function loadOrders() {
    return api("/api/orders?limit=" + RECENT).then(function (r) {
      if (!r.ok || !r.body) return;
      var ids = [];
      r.body.orders.forEach(function (o) {
        var old = state.orders.get(o.orderId);
        if (old && old.status !== o.status) statusChanged(o.orderId, o.status, o.reason);
        remember(o);
        ids.push(o.orderId);
      });
      state.recent = ids;
      renderOrders();
    }).catch(function () {});
  }

  function loadOrder(id) {
    return api("/api/orders/" + encodeURIComponent(id)).then(function (r) {
      if (!r.ok || !r.body) return;
      var old = state.orders.get(id);
      if (old && old.status !== r.body.status) statusChanged(id, r.body.status, r.body.reason);
      remember(r.body);
      renderOrders();
      if (state.selected === id) renderTimeline();
      if (state.answered === id) renderAnswer(state.orders.get(id));
    }).catch(function () {});
  }

  function statusChanged(id, status, reason) {
    if (!state.mine.has(id) && state.selected !== id) return;
    var text = "Order " + shortId(id) + " is now " + (STATUS_LABEL[status] || status).toLowerCase();
    if (status === "failed" && reason) text += " (" + reasonText(reason) + ")";
    announce(text + ".");
  }

  function statusBadge(status, reason) {
    var badge = el("span", "status", STATUS_LABEL[status] || status);
    badge.dataset.status = status;
    if (status === "failed" && reason) badge.textContent += ": " + reasonText(reason);
    return badge;
  }

  function renderOrders() {
    var list = $("orders");
    list.replaceChildren();
    $("orders-empty").hidden = state.recent.length > 0;
    state.recent.forEach(function (id) {
      var o = state.orders.get(id);
      if (!o) return;
      var li = el("li", "order");
      li.dataset.orderId = id;
      li.dataset.status = o.status;
      if (state.selected === id) li.classList.add("selected");
      var head = el("div", "order-head");
      head.appendChild(el("span", "order-id", shortId(id)));
      head.appendChild(statusBadge(o.status, o.reason));
      li.appendChild(head);
      var meta = el("p", "order-meta", itemsText(o.items));
      if (o.createdAt) meta.appendChild(el("span", "muted", " · " + clock(o.createdAt)));
      li.appendChild(meta);
      var actions = el("div", "order-actions");
      var show = el("button", "secondary", "Timeline");
      show.type = "button";
      show.setAttribute("aria-label", "Show the timeline of order " + shortId(id));
      show.setAttribute("aria-pressed", state.selected === id ? "true" : "false");
      show.addEventListener("click", function () { select(id, true); });
      actions.appendChild(show);
      if (o.status === "confirmed") {
        var cancel = el("button", "danger", "Cancel");
        cancel.type = "button";
        cancel.setAttribute("aria-label", "Cancel order " + shortId(id));
        cancel.addEventListener("click", function () { cancelOrder(id, cancel); });
        actions.appendChild(cancel);
      }
      li.appendChild(actions);
      list.appendChild(li);
    });
  }

  function select(id, moveFocus) {
    state.selected = id;
    renderOrders();
    renderTimeline();
    loadOrder(id).then(function () { if (moveFocus) $("timeline-card").focus(); });
  }

  function renderTimeline() {
    var o = state.orders.get(state.selected);
    $("timeline").hidden = !o;
    $("timeline-hint").hidden = !!o;
    if (!o) return;
    $("timeline-id").textContent = "Order " + shortId(o.orderId);
    $("timeline-id").title = o.orderId;
    $("timeline-status").replaceChildren(statusBadge(o.status, o.reason));
    $("timeline-items").textContent = itemsText(o.items);
    var steps = $("timeline-steps");
    steps.replaceChildren();
    var history = o.history || [];
    var first = history.length ? new Date(history[0].at).getTime() : 0;
    history.forEach(function (h, i) {
      var li = el("li", "step");
      li.dataset.status = h.to;
      if (i === history.length - 1) li.classList.add("current");
      li.appendChild(el("span", "step-name", STEP_LABEL[h.to] || h.to));
      var when = el("time", "step-time", clock(h.at));
      when.dateTime = h.at;
      li.appendChild(when);
      if (i > 0) {
        var seconds = (new Date(h.at).getTime() - first) / 1000;
        li.appendChild(el("span", "step-delta", "+" + seconds.toFixed(seconds < 10 ? 2 : 1) + " s"));
      }
      if (h.reason) li.appendChild(el("span", "step-reason", reasonText(h.reason)));
      steps.appendChild(li);
    });
  }

  function cancelOrder(id, button) {
    button.disabled = true;
    button.textContent = "Cancelling…";
    api("/api/orders/" + encodeURIComponent(id) + "/cancel", { method: "POST" }).then(function (r) {
      if (r.ok) {
        remember(r.body);
        state.answered = id;
        showResult("cancelled", "Order " + shortId(id) + " is cancelled and its stock went back on the shelf.");
      } else {
        showResult("error", (r.body && r.body.detail) || "This order could not be cancelled.");
      }
      loadOrders();
      loadProducts();
      if (state.selected === id) loadOrder(id);
    }).catch(function () {
      showResult("error", "We could not reach the shop to cancel; please try again.");
      button.disabled = false;
      button.textContent = "Cancel";
    });
  }

  // --- the order form -----------------------------------------------------------------------
  function fieldError(name, text) {
    var input = $(name);
    var error = $(name + "-error");
    error.textContent = text || "";
    error.hidden = !text;
    if (text) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
  }

  function validate() {
    var ok = true;
    var productId = $("product").value;
    var raw = $("quantity").value.trim();
    fieldError("product", "");
    fieldError("quantity", "");
    if (!productId) { fieldError("product", "Please choose a product."); ok = false; }
    if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_QTY) {
      fieldError("quantity", "Please enter a whole number from 1 to " + MAX_QTY + ".");
      ok = false;
    }
    if (!ok) {
      (productId ? $("quantity") : $("product")).focus();
      return null;
    }
    return { productId: productId, quantity: Number(raw) };
  }

  function showResult(kind, title, detail) {
    var box = $("result");
    box.dataset.kind = kind;
    box.replaceChildren();
    box.appendChild(el("p", "result-title", title));
    if (detail) box.appendChild(el("p", "result-detail", detail));
  }

  function renderAnswer(o) {
    if (!o) return;
    var what = itemsText(o.items);
    var id = "Order " + shortId(o.orderId);
    if (o.status === "confirmed") {
      showResult("confirmed", "Your order is confirmed.", what + " reserved for you. " + id + ".");
    } else if (o.status === "pending_verification" || o.status === "pending") {
      showResult("verifying", "We are verifying your order with the warehouse.",
        "The warehouse is slow to answer right now. Your order is saved (" + id +
        ") and this page will update by itself in a few seconds.");
    } else if (o.status === "failed" && o.reason === "insufficient_stock") {
      var line = (o.items || [])[0] || {};
      var p = state.products.filter(function (x) { return x.productId === line.productId; })[0];
      var left = p ? p.stock : null;
      showResult("out-of-stock", "Sorry, we don't have enough " + productName(line.productId) + " in stock.",
        left === null ? "Try a smaller quantity." :
          left > 0 ? "Only " + left + " left; try a smaller quantity." : "It is out of stock right now.");
    } else if (o.status === "failed") {
      showResult("error", "We could not place your order.", "Reason: " + reasonText(o.reason) + ". Nothing was charged or reserved.");
    } else if (o.status === "cancelled") {
      showResult("cancelled", id + " is cancelled.", "Its stock went back on the shelf.");
    } else if (o.status === "shipped") {
      showResult("confirmed", id + " has shipped.", "It is on its way to you.");
    }
  }

  function refused(r) {
    var body = r.body || {};
    var errors = Array.isArray(body.errors) ? body.errors : [];
    errors.forEach(function (e) {
      var field = String(e.field || "");
      if (/quantity$/.test(field)) fieldError("quantity", "The shop says: quantity " + String(e.message || "is not valid") + ".");
      if (/productId$/.test(field)) fieldError("product", "The shop says: " + String(e.message || "this product is not valid") + ".");
    });
    showResult("refused", "The shop could not accept this order.",
      body.detail ? String(body.detail) + " Please check the form and try again." : "Please check the form and try again.");
  }

  function submit(event) {
    event.preventDefault();
    var order = validate();
    if (!order) {
      showResult("refused", "Please correct the highlighted field.");
      return;
    }
    var signature = order.productId + "x" + order.quantity;
    if (!state.pendingKey || state.pendingKey.signature !== signature) state.pendingKey = { signature: signature, key: newKey() };
    var button = $("place");
    button.disabled = true;
    button.textContent = "Placing…";
    showResult("working", "Placing your order…");
    api("/api/orders", { method: "POST", body: order, headers: { "Idempotency-Key": state.pendingKey.key } }).then(function (r) {
      // Only a definitive answer retires the key: after a 5xx (or a lost answer, below) the
      // order may exist, and pressing the button again must find it, never place a second.
      if (r.status < 500) state.pendingKey = null;
      if (r.body && r.body.orderId && (r.status === 201 || r.status === 202 || r.status === 409)) {
        remember(r.body);
        state.answered = r.body.orderId;
        state.mine.add(r.body.orderId);
        if (state.recent.indexOf(r.body.orderId) < 0) state.recent.unshift(r.body.orderId);
        state.recent = state.recent.slice(0, RECENT);
        renderOrders();
        renderAnswer(state.orders.get(r.body.orderId));
        select(r.body.orderId, false);
      } else if (r.status === 422 || r.status === 400 || r.status === 415) {
        refused(r);
      } else {
        showResult("error", "The shop is having trouble right now.",
          ((r.body && r.body.detail) ? String(r.body.detail) + " " : "") +
          "Press “Place order” again in a moment; if the order went through, you will not be charged twice.");
      }
      loadProducts();
    }).catch(function () {
      showResult("error", "We could not reach the shop.", "Check your connection and press “Place order” again; you will not be charged twice.");
    }).then(function () {
      button.disabled = false;
      button.textContent = "Place order";
    });
  }

  // --- health strip -------------------------------------------------------------------------
  function loadHealth() {
    api("/api/alerts").then(function (r) {
      var alerts = (r.ok && r.body && r.body.available && r.body.alerts) || {};
      document.querySelectorAll(".light").forEach(function (li) {
        var a = alerts[li.dataset.light] || {};
        var stateName = LIGHT_TEXT[a.state] ? a.state : "unknown";
        li.dataset.state = stateName;
        li.querySelector(".light-state").textContent = LIGHT_TEXT[stateName];
        li.title = a.summary ? String(a.summary) :
          (r.ok && r.body && r.body.available === false ? "Monitoring is not available" : "");
      });
    }).catch(function () {});
    api("/api/chaos").then(function (r) { renderChaos(r.ok ? r.body : null); }).catch(function () { renderChaos(null); });
  }

  function renderChaos(chaos) {
    var list = $("chaos");
    list.replaceChildren();
    function badge(text, on) {
      var li = el("li", "badge", text);
      li.dataset.on = on;
      list.appendChild(li);
    }
    if (!chaos) { badge("Chaos: unknown", "unknown"); return; }
    var g = chaos.gremlin || {};
    var s = chaos.schrodinger || {};
    if (g.on) {
      var every = Number(g.everyN) > 0 ? ", every " + Number(g.everyN) + "th call" : "";
      badge("Gremlin on: " + Number(g.minDelayMs) + "–" + Number(g.maxDelayMs) + " ms delays" + every, "true");
    }
    if (s.on) badge("Schrödinger on: " + Math.round(Number(s.probability) * 100) + "% " + String(s.failure || "crash"), "true");
    if (!g.on && !s.on) badge("Chaos off", "false");
  }

  // --- live updates: WebSocket first, polling every 2 s as the fallback ---------------------
  var socket = null;
  var pollTimer = null;
  var retryMs = 1000;
  var watchdog = null;
  var heartbeatMs = 15000;
  var reloadTimer = null;

  function setMode(mode) {
    state.mode = mode;
    var p = $("connection");
    p.dataset.mode = mode;
    $("connection-text").textContent = mode === "live" ? "Live updates" :
      mode === "polling" ? "Checking every 2 s" : "Connecting…";
    if (mode === "live") stopPolling(); else startPolling();
  }

  function poll() {
    loadOrders();
    loadProducts();
    if (state.selected) loadOrder(state.selected);
    if (state.answered && state.answered !== state.selected) loadOrder(state.answered);
  }

  function startPolling() {
    if (pollTimer) return;
    pollTimer = window.setInterval(poll, POLL_MS);
  }

  function stopPolling() {
    if (pollTimer) window.clearInterval(pollTimer);
    pollTimer = null;
  }

  function armWatchdog() {
    if (watchdog) window.clearTimeout(watchdog);
    watchdog = window.setTimeout(function () { if (socket) socket.close(); }, heartbeatMs * 3);
  }

  function reloadSoon() {
    if (reloadTimer) return;
    reloadTimer = window.setTimeout(function () { reloadTimer = null; loadOrders(); }, 500);
  }

  function onMessage(event) {
    var m;
    try { m = JSON.parse(event.data); } catch (e) { return; }
    armWatchdog();
    if (m.type === "hello") {
      heartbeatMs = (Number(m.heartbeatSeconds) || 15) * 1000;
      retryMs = 1000;
      setMode("live");
      poll();                       // catch up on anything that happened before the socket opened
    } else if (m.type === "status") {
      var known = state.orders.get(m.orderId);
      if (known) {
        if (known.status !== m.status) statusChanged(m.orderId, m.status, m.reason);
        known.status = m.status;
        known.reason = m.reason;
        renderOrders();
        if (state.selected === m.orderId || state.answered === m.orderId) loadOrder(m.orderId);
      } else {
        reloadSoon();
      }
    } else if (m.type === "stock") {
      if (m.available && Array.isArray(m.products)) { $("stock-note").hidden = true; setProducts(m.products); }
    } else if (m.type === "resync") {
      poll();
    }
  }

  function connect() {
    if (!("WebSocket" in window)) { setMode("polling"); return; }
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/orders";
    session(null).then(function (s) {
      // Browsers cannot set headers on a WebSocket: the token rides as a second subprotocol.
      try { socket = new WebSocket(url, ["valerix.bearer", s.token]); } catch (e) { setMode("polling"); return; }
      listen();
    }, function () {
      setMode("polling");
      window.setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 10000);
    });
  }

  function listen() {
    socket.addEventListener("message", onMessage);
    socket.addEventListener("open", armWatchdog);
    socket.addEventListener("close", function () {
      socket = null;
      if (watchdog) window.clearTimeout(watchdog);
      setMode("polling");
      window.setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 10000);
    });
  }

  function start() {
    $("order-form").addEventListener("submit", submit);
    $("quantity").addEventListener("input", function () { if (!$("quantity-error").hidden) validate(); });
    $("product").addEventListener("change", function () { fieldError("product", ""); });
    loadProducts();
    loadOrders();
    loadHealth();
    window.setInterval(loadHealth, HEALTH_MS);
    setMode("connecting");
    connect();
  }

  window.valerixStorefront = { state: state };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
