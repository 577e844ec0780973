// The bootstrap of a window plugin's iframe (/window.html, sandboxed without same-origin by the iframe and by
// its own CSP). The app posts the plugin's parts once; this puts the html and style in, loads imjoy-rpc from the
// hub, runs the html's scripts in order, then the plugin's code once the RPC with the app is set up.
// A web-worker plugin's frame is hidden and holds no page of the plugin's: it starts a Web Worker from a blob:
// URL (which inherits this document's policy and opaque origin: no network, no storage of the app's), loads
// imjoy-rpc into it and runs the plugin's code there, relaying the RPC's messages between the worker and the app.
// The frame never gets the token: only the plugin's own source travels here.
(function () {
  "use strict";

  var PARTS = "scopeflow/window-parts";

  /** Run a <script> that came in as html (innerHTML does not run scripts); resolves once it ran or failed. */
  function run(original) {
    return new Promise(function (resolve) {
      var script = document.createElement("script");
      for (var i = 0; i < original.attributes.length; i++) {
        script.setAttribute(original.attributes[i].name, original.attributes[i].value);
      }
      script.textContent = original.textContent;
      if (script.src) {
        script.onload = script.onerror = function () { resolve(); };
        original.replaceWith(script);
      } else {
        original.replaceWith(script);
        resolve();
      }
    });
  }

  function load(src) {
    return new Promise(function (resolve, reject) {
      var script = document.createElement("script");
      script.src = src;
      script.onload = function () { resolve(); };
      script.onerror = function () { reject(new Error("could not load " + src)); };
      document.head.appendChild(script);
    });
  }

  /** imjoy-rpc's bundle: a file of the hub's, never another origin's. */
  function rpcUrl(value) {
    var url = new URL(String(value), window.location.href);
    if (url.origin !== window.location.origin || url.pathname.indexOf("/assets/") !== 0) {
      throw new Error("imjoy-rpc must come from the hub's assets, not " + url.href);
    }
    return url.href;
  }

  function text(value) {
    return typeof value === "string" ? value : "";
  }

  /** Files the plugin asked for (its requirements), each a file of the hub's: the app dropped the others. */
  function hubFiles(list) {
    var out = [];
    (Array.isArray(list) ? list : []).forEach(function (value) {
      var url = new URL(String(value), window.location.href);
      if (url.origin === window.location.origin) out.push(url.href);
    });
    return out;
  }

  function loadStyle(href) {
    var link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = href;
    document.head.appendChild(link);
  }

  /** What runs inside the Web Worker (serialised: it sees nothing of this file but its argument). */
  function workerMain(cfg) {
    function report(err) {
      var message = err && err.message ? err.message : String(err);
      self.postMessage({ type: "scopeflow/worker-error", message: message, stack: err && err.stack ? String(err.stack) : "" });
    }
    self.addEventListener("unhandledrejection", function (event) {
      report(event.reason);
    });
    try {
      importScripts(cfg.rpc);
      for (var i = 0; i < cfg.scripts.length; i++) importScripts(cfg.scripts[i]);
    } catch (err) {
      report(err);
      return;
    }
    self.imjoyRPC.setupRPC({ name: cfg.name, type: "rpc-worker" }).then(function (api) {
      self.api = api;
      try {
        (0, eval)(cfg.code); // the plugin's code, in the worker's global scope, as ImJoy runs it
      } catch (err) {
        report(err);
      }
    }, report);
  }

  function startWorker(parts) {
    function fail(message) {
      window.parent.postMessage({ type: "scopeflow/worker-error", message: message }, "*");
    }
    document.addEventListener("securitypolicyviolation", function (event) {
      if (event.effectiveDirective === "worker-src" || event.violatedDirective.indexOf("worker-src") === 0) {
        fail("this hub's window policy does not allow Web Workers (its Content-Security-Policy needs worker-src blob:)");
      }
    });
    var cfg = {
      name: text(parts.name),
      rpc: rpcUrl(parts.rpc),
      scripts: hubFiles(parts.scripts),
      code: text(parts.script),
    };
    var source = "(" + workerMain.toString() + ")(" + JSON.stringify(cfg) + ");";
    var url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
    var worker;
    try {
      worker = new Worker(url);
    } catch (err) {
      fail("the Web Worker could not start: " + (err && err.message ? err.message : String(err)));
      return;
    }
    worker.onmessage = function (event) {
      window.parent.postMessage(event.data, "*");
    };
    worker.onerror = function (event) {
      event.preventDefault();
      fail(event.message || "the Web Worker could not start");
    };
    window.addEventListener("message", function (event) {
      if (event.source === window.parent && event.data && typeof event.data === "object") worker.postMessage(event.data);
    });
  }

  async function start(parts) {
    document.title = text(parts.name) || "window";
    var style = document.createElement("style");
    style.textContent = text(parts.style);
    document.head.appendChild(style);
    await load(rpcUrl(parts.rpc));
    hubFiles(parts.styles).forEach(loadStyle);
    var files = hubFiles(parts.scripts);
    for (var f = 0; f < files.length; f++) await load(files[f]);
    document.body.innerHTML = text(parts.html);
    var scripts = Array.prototype.slice.call(document.body.querySelectorAll("script"));
    for (var i = 0; i < scripts.length; i++) await run(scripts[i]);
    var api = await window.imjoyRPC.setupRPC({ name: text(parts.name), type: "window" });
    window.api = api;
    var code = document.createElement("script");
    code.textContent = text(parts.script);
    document.body.appendChild(code);
  }

  function onMessage(event) {
    // only the app that framed this document, and only its first parts: later messages are the RPC's
    if (event.source !== window.parent || !event.data || event.data.type !== PARTS) return;
    window.removeEventListener("message", onMessage);
    if (event.data.kind === "worker") {
      document.title = text(event.data.name) || "worker";
      startWorker(event.data);
      return;
    }
    start(event.data).catch(function (err) {
      console.error("the window plugin did not start:", err);
    });
  }
  window.addEventListener("message", onMessage);
})();
