// The app's frame: connection badge, token prompt, toasts, dialogs and the message log.

import { useEffect, useRef, useState } from "react";
import { useStore, type Dialog } from "../store";

const CONNECTION_LABEL: Record<string, string> = {
  connecting: "connecting…",
  connected: "connected",
  reconnecting: "reconnecting…",
  refused: "token refused",
  "no-token": "no token",
};

export function ConnectionBadge() {
  const state = useStore((s) => s.connection);
  const detail = useStore((s) => s.connectionDetail);
  return (
    <span className={`sf-conn sf-conn-${state}`} title={detail} data-testid="connection" data-state={state}>
      ● {CONNECTION_LABEL[state] ?? state}
    </span>
  );
}

export function TokenPrompt({ onToken, refused }: { onToken: (token: string) => void; refused: boolean }) {
  const [value, setValue] = useState("");
  return (
    <div className="sf-center-card">
      <h1>scopeflow</h1>
      <p>
        {refused
          ? "The hub refused that token. Enter the token printed by `scopeflow serve`:"
          : "Enter the access token printed by `scopeflow serve` (or open the full URL it printed):"}
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (value.trim()) onToken(value.trim());
        }}
      >
        <input type="password" autoComplete="off" placeholder="token" value={value} onChange={(e) => setValue(e.target.value)} autoFocus data-testid="token-input" />
        <button className="sf-primary">Connect</button>
      </form>
    </div>
  );
}

export function Toasts() {
  const toasts = useStore((s) => s.toasts);
  return (
    <div className="sf-toasts" aria-live="polite">
      {toasts.map((t) => (
        <div key={t.id} className={`sf-toast sf-toast-${t.level}`} data-testid="toast">
          <span className="sf-toast-source">{t.source}</span> {t.text}
        </div>
      ))}
    </div>
  );
}

function DialogBox({ dialog }: { dialog: Dialog }) {
  const [value, setValue] = useState(dialog.value ?? "");
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => {
    input.current?.focus();
  }, []);
  const cancel = () => dialog.resolve(dialog.kind === "confirm" ? false : dialog.kind === "prompt" ? null : undefined);
  return (
    <div className="sf-modal" role="dialog" aria-label={dialog.title} data-testid="dialog">
      <div className="sf-modal-box">
        <h3>{dialog.title}</h3>
        <p>{dialog.text}</p>
        {dialog.kind === "prompt" && <input ref={input} value={value} onChange={(e) => setValue(e.target.value)} onKeyDown={(e) => e.key === "Enter" && dialog.resolve(value)} />}
        <div className="sf-actions">
          {dialog.kind !== "alert" && <button onClick={cancel}>Cancel</button>}
          <button className="sf-primary" onClick={() => dialog.resolve(dialog.kind === "prompt" ? value : dialog.kind === "confirm" ? true : undefined)} data-testid="dialog-ok">
            OK
          </button>
        </div>
      </div>
    </div>
  );
}

export function Dialogs() {
  const dialogs = useStore((s) => s.dialogs);
  return dialogs.length ? <DialogBox key={dialogs[0].id} dialog={dialogs[0]} /> : null;
}

export function LogPanel() {
  const log = useStore((s) => s.log);
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    // scroll the log itself (scrollIntoView would scroll every panel around it too)
    if (box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [log.length]);
  return (
    <div className="sf-log" data-testid="log" ref={box}>
      {log.length === 0 && <div className="sf-muted">Messages from plugins and the app appear here.</div>}
      {log.slice(-200).map((l) => (
        <div key={l.id} className={`sf-log-line sf-log-${l.level}`}>
          <span className="sf-log-time">{new Date(l.time).toLocaleTimeString()}</span>
          <span className="sf-log-source">{l.source}</span>
          {l.detail ? (
            <details>
              <summary>{l.text}: {l.detail.split("\n")[0]}</summary>
              <pre>{l.detail}</pre>
            </details>
          ) : (
            <span>{l.text}</span>
          )}
        </div>
      ))}
    </div>
  );
}
