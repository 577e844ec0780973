// A table from a plugin (e.g. measurements): sortable columns, CSV export.

import { useMemo, useState } from "react";
import { saveBlob, tableToCsv } from "../images";
import type { TableData } from "../types";

function format(v: unknown): string {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toPrecision(5);
  if (v === null || v === undefined) return "";
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

export function TableView({ table }: { table: TableData }) {
  const [sort, setSort] = useState<{ column: number; descending: boolean } | null>(null);
  const rows = useMemo(() => {
    if (!sort) return table.rows;
    const k = sort.column;
    const sign = sort.descending ? -1 : 1;
    return [...table.rows].sort((a, b) => {
      const x = a[k];
      const y = b[k];
      if (typeof x === "number" && typeof y === "number") return sign * (x - y);
      return sign * String(x ?? "").localeCompare(String(y ?? ""), undefined, { numeric: true });
    });
  }, [table, sort]);
  const csv = () => saveBlob(new Blob([tableToCsv({ ...table, rows })], { type: "text/csv" }), `${table.name.replace(/[^\w.-]+/g, "_")}.csv`);
  return (
    <div className="sf-table-view" data-testid="table-view">
      <div className="sf-section-head">
        <h2>{table.name}</h2>
        <span className="sf-muted">{table.rows.length} rows</span>
        <button onClick={csv} data-testid="table-csv">
          Export CSV
        </button>
      </div>
      <div className="sf-table-scroll">
        <table className="sf-table">
          <thead>
            <tr>
              {table.columns.map((c, i) => (
                <th key={c} onClick={() => setSort((s) => ({ column: i, descending: s?.column === i ? !s.descending : false }))} aria-sort={sort?.column === i ? (sort.descending ? "descending" : "ascending") : "none"}>
                  {c} {sort?.column === i ? (sort.descending ? "▼" : "▲") : ""}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.slice(0, 5000).map((r, j) => (
              <tr key={j}>
                {r.map((v, i) => (
                  <td key={i} className={typeof v === "number" ? "sf-num" : ""}>
                    {format(v)}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
        {rows.length > 5000 && <div className="sf-hint">showing the first 5000 rows; Export CSV has all of them</div>}
      </div>
    </div>
  );
}
