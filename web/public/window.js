// The bootstrap of a window plugin's iframe (/window.html, sandboxed without same-origin by the iframe and by
// its own CSP). The app posts the plugin's parts once; this puts the html and style in, loads imjoy-rpc from the
// hub, runs the html's scripts in order, then the plugin's code once the RPC with the app is set up.
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

  async function start(parts) {
    document.title = text(parts.name) || "window";
    var style = document.createElement("style");
    style.textContent = text(parts.style);
    document.head.appendChild(style);
    await load(rpcUrl(parts.rpc));
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
    start(event.data).catch(function (err) {
      console.error("the window plugin did not start:", err);
    });
  }
  window.addEventListener("message", onMessage);
})();
