// The app: token, connection, and the panels — plugins | plugin | viewer / table / windows | data, log below.

import { Suspense, lazy, useEffect, useState } from "react";
import { refreshPlugins, setRpc } from "./actions";
import { browserApi } from "./browserApi";
import { HubError, forgetToken, hubUrl, keepConnected, saveToken } from "./hub";
import { installArrayCodec } from "./transfer";
import { addLog, set, useStore } from "./store";
import { ConnectionBadge, Dialogs, LogPanel, Toasts, TokenPrompt } from "./components/Chrome";
import { DataPanel, openFiles } from "./components/DataPanel";
import { ErrorBoundary } from "./components/ErrorBoundary";
import { InstallDialog } from "./components/InstallDialog";
import { PluginList, PluginPanel } from "./components/PluginPanel";
import { TableView } from "./components/TableView";
import { WindowTabs, WindowView } from "./components/WindowView";
import { Viewer } from "./viewer";

// the workflow editor (and its graph library) loads when its tab is first opened
const WorkflowView = lazy(() => import("./workflow/WorkflowView"));

function useHub(token: string | null) {
  useEffect(() => {
    if (!token) {
      set((s) => ({ connection: s.connection === "refused" ? "refused" : "no-token" }));
      return;
    }
    let stop: (() => void) | null = null;
    let cancelled = false;
    set({ connection: "connecting" });
    {
      // the plugin list and the websocket start at once (a first paint waits for neither in turn); a wrong
      // token ends both, a hub that is down retries
      const listed = refreshPlugins();
      stop = keepConnected(
        token,
        async (connection) => {
          // large arrays travel beside the messages, on the websocket or over HTTP (see transfer.ts); their
          // byte counts are in window.__scopeflowArrays for the tests and the curious
          const arrays = await installArrayCodec(connection.server, { baseUrl: hubUrl, token, plain: true });
          (window as unknown as { __scopeflowArrays: unknown }).__scopeflowArrays = arrays;
          await connection.server.rpc.register_service(browserApi(), true);
          setRpc(connection.server);
          void refreshPlugins().catch(() => undefined); // statuses may have changed while it was away
        },
        (state, detail) => {
          set({ connection: state, connectionDetail: detail ?? "" });
          if (state === "reconnecting") addLog("warning", "hub", detail ?? "reconnecting");
          if (state === "connected") addLog("info", "hub", "connected");
        },
        () => setRpc(null), // nothing may call a connection that is gone
      );
      listed.catch((err) => {
        if (cancelled) return;
        if (err instanceof HubError && (err.status === 401 || err.status === 403)) {
          stop?.();
          stop = null;
          forgetToken();
          set({ connection: "refused", token: null });
        } // a hub that is down: keepConnected says so and retries; the list comes with the connection
      });
    }
    return () => {
      cancelled = true;
      stop?.();
    };
  }, [token]);
  // plugin states change on the hub (starting, crashed): keep the list fresh while connected
  const connected = useStore((s) => s.connection === "connected");
  useEffect(() => {
    if (!connected) return;
    const timer = window.setInterval(() => void refreshPlugins().catch(() => undefined), 3000);
    return () => window.clearInterval(timer);
  }, [connected]);
}

function sharedPluginUrl(): string {
  return new URL(window.location.href).searchParams.get("plugin") || "";
}

/** A link to a workflow (`#workflow=…` or `?workflow=URL`) opens the editor, which reads it. */
function sharedWorkflow(): boolean {
  return window.location.hash.startsWith("#workflow=") || new URL(window.location.href).searchParams.has("workflow");
}

function Center() {
  const view = useStore((s) => s.view);
  const image = useStore((s) => s.images.find((i) => i.id === s.activeImage) ?? null);
  const labels = useStore((s) => s.images.find((i) => i.id === s.overlay) ?? null);
  const table = useStore((s) => s.tables.find((t) => t.id === s.activeTable) ?? null);
  const windows = useStore((s) => s.windows);
  return (
    <section className="sf-center">
      <WindowTabs />
      <div className="sf-center-body">
        {view === "viewer" && (
          <div className="sf-viewer-host">
            {image || labels ? (
              <Viewer image={image} labels={labels} />
            ) : (
              <div className="sf-empty sf-welcome">
                <h2>Welcome to scopeflow</h2>
                <ol>
                  <li>Open an image: a sample on the right, or drop a TIFF/PNG file here.</li>
                  <li>Choose a plugin on the left and press Run.</li>
                  <li>The result opens here; download it as TIFF or PNG from the Images list.</li>
                </ol>
              </div>
            )}
          </div>
        )}
        {view === "table" && table && <TableView table={table} />}
        {view === "workflow" && (
          <Suspense fallback={<div className="sf-empty">Loading the workflow editor…</div>}>
            <WorkflowView />
          </Suspense>
        )}
        {windows.map((w) => (
          <WindowView key={w.id} id={w.id} visible={view === w.id} />
        ))}
      </div>
    </section>
  );
}

export function App() {
  const token = useStore((s) => s.token);
  const connection = useStore((s) => s.connection);
  const status = useStore((s) => s.status);
  const view = useStore((s) => s.view);
  const installUrl = useStore((s) => s.installUrl);
  const setInstallUrl = (url: string | null) => set({ installUrl: url });
  const [dragging, setDragging] = useState(false);
  useEffect(() => {
    const shared = sharedPluginUrl();
    if (shared) setInstallUrl(shared);
    if (sharedWorkflow()) set({ view: "workflow" });
  }, []);
  useHub(token);
  if (!token) {
    return (
      <TokenPrompt
        refused={connection === "refused"}
        onToken={(t) => {
          saveToken(t);
          set({ token: t });
        }}
      />
    );
  }
  const closeInstall = () => {
    setInstallUrl(null);
    const url = new URL(window.location.href);
    if (url.searchParams.has("plugin")) {
      url.searchParams.delete("plugin");
      window.history.replaceState(null, "", url.pathname + url.search + url.hash);
    }
  };
  return (
    <div
      className={`sf-app${dragging ? " sf-dragging" : ""}${view === "workflow" ? " sf-app-workflow" : ""}`}
      onDragOver={(e) => {
        if (e.dataTransfer.types.includes("Files")) {
          e.preventDefault();
          setDragging(true);
        }
      }}
      onDragLeave={(e) => {
        if (e.currentTarget === e.target) setDragging(false);
      }}
      onDrop={(e) => {
        e.preventDefault();
        setDragging(false);
        if (e.dataTransfer.files.length) void openFiles(e.dataTransfer.files);
      }}
    >
      <header className="sf-header">
        <span className="sf-logo">
          <img src="/favicon.svg" alt="" width={22} height={22} /> scopeflow
        </span>
        <ConnectionBadge />
        <span className="sf-status" data-testid="status">{status}</span>
        <button onClick={() => setInstallUrl("")}>Install plugin from URL</button>
      </header>
      <aside className="sf-left" hidden={view === "workflow"}>
        <PluginList onInstall={() => setInstallUrl("")} />
        <ErrorBoundary name="plugin panel">
          <PluginPanel />
        </ErrorBoundary>
      </aside>
      <ErrorBoundary name="viewer">
        <Center />
      </ErrorBoundary>
      <aside className="sf-right" hidden={view === "workflow"}>
        <ErrorBoundary name="data panel">
          <DataPanel />
        </ErrorBoundary>
      </aside>
      <footer className="sf-footer">
        <LogPanel />
      </footer>
      <Toasts />
      <Dialogs />
      {installUrl !== null && <InstallDialog initialUrl={installUrl} onClose={closeInstall} />}
    </div>
  );
}
