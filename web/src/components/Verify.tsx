// Verify: runs the plugin's declared test cases in its kernel (POST /api/plugins/ID/verify) and shows pass or
// fail per case with the largest difference, so a user can check a plugin on this machine before trusting it.

import { useState } from "react";
import { postJson } from "../hub";
import { useStore } from "../store";
import type { PluginManifest } from "../types";

export interface VerifyCaseResult {
  name: string;
  op: string;
  passed: boolean;
  measure?: string;
  summary?: string;
  difference?: number | null;
  tolerance?: number;
  seconds?: number;
  error?: string;
  details?: Record<string, Record<string, number>>;
}

export interface VerifyReport {
  plugin: string;
  version: string;
  sha256: string;
  passed: boolean;
  cases: VerifyCaseResult[];
  error?: string;
}

export function VerifyButton({ plugin }: { plugin: PluginManifest }) {
  const token = useStore((s) => s.token);
  const [state, setState] = useState<{ running: boolean; report?: VerifyReport; error?: string; sha?: string }>({ running: false });
  const count = plugin.tests?.length ?? 0;
  const run = async () => {
    setState({ running: true });
    try {
      const report = await postJson<VerifyReport>(token ?? "", `/api/plugins/${plugin.id}/verify`, {});
      setState({ running: false, report, sha: plugin.sha256 });
    } catch (err) {
      setState({ running: false, error: String(err) });
    }
  };
  const report = state.sha === plugin.sha256 ? state.report : undefined;
  return (
    <div className="sf-verify-box">
      <button
        onClick={() => void run()}
        disabled={count === 0 || state.running}
        title={
          count
            ? `Run the ${count} test case(s) the plugin declares, in its own kernel, and compare with the expected outputs`
            : "This plugin declares no test cases"
        }
        data-testid="plugin-verify"
      >
        {state.running ? "Verifying…" : "Verify"}
      </button>
      {(report || state.error) && (
        <div className={`sf-verify ${report?.passed ? "sf-verify-pass" : "sf-verify-fail"}`} data-testid="verify-report">
          {state.error ? (
            <div className="sf-error">{state.error}</div>
          ) : report ? (
            <>
              <strong data-testid="verify-verdict">
                {report.passed ? "✓ Verified" : "✗ Verification failed"}: {report.cases.filter((c) => c.passed).length} of{" "}
                {report.cases.length} case(s) passed
              </strong>
              <div className="sf-muted sf-small">
                version {report.version} · file sha256 {report.sha256.slice(0, 12)}…
              </div>
              {report.error && <div className="sf-muted">{report.error}</div>}
              <ul className="sf-verify-cases">
                {report.cases.map((c, i) => (
                  <li key={i} data-testid="verify-case" data-passed={String(c.passed)} data-difference={c.difference ?? ""}>
                    <span className={c.passed ? "sf-pass" : "sf-fail"}>{c.passed ? "✓" : "✗"}</span> {c.name}{" "}
                    <span className="sf-muted">
                      ({c.op}, {c.seconds?.toFixed(1)} s)
                    </span>
                    {c.summary && <div className="sf-small" data-testid="verify-summary">{c.summary}</div>}
                    {c.error && <pre className="sf-error sf-small">{c.error.trim().split("\n").slice(-3).join("\n")}</pre>}
                  </li>
                ))}
              </ul>
            </>
          ) : null}
        </div>
      )}
    </div>
  );
}
