// The port-compatibility rule, case by case: the table tests/contracts/test_port_cases.py runs against the hub.

import { describe, expect, it } from "vitest";
import table from "../../../tests/contracts/port-cases.json";
import type { PortSpec } from "../types";
import { incompatibility, inputPortInfo, portInfo, type DocInput, type PortInfo } from "./doc";

interface End {
  op?: string;
  port?: PortSpec;
  input?: DocInput;
}

interface Case {
  name: string;
  source: End;
  target: End;
  expected: string;
}

const cases = (table as unknown as { cases: Case[] }).cases;

/** A case's end as the editor sees it: an op's port (as the hub sends it), or a workflow input. */
function port(end: End): PortInfo {
  if (end.input) return inputPortInfo(end.input);
  if (!end.port || !end.op) throw new Error(`a case's end is {op, port} or {input}: ${JSON.stringify(end)}`);
  return portInfo(end.port, end.op);
}

describe("incompatibility", () => {
  it("has cases", () => {
    expect(cases.length).toBeGreaterThan(10);
  });

  it.each(cases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const reason = incompatibility(port(c.source), port(c.target));
    expect(reason ?? "compatible").toBe(c.expected);
  });
});
