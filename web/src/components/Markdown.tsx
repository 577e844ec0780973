// A small, safe Markdown renderer for plugin docs and model cards: React elements only, never innerHTML.

import type { ReactNode } from "react";

function inline(text: string, key: string): ReactNode[] {
  const out: ReactNode[] = [];
  const pattern = /(`[^`]+`)|(\*\*[^*]+\*\*)|(\*[^*]+\*)|(\[[^\]]+\]\([^)\s]+\))/g;
  let last = 0;
  let m: RegExpExecArray | null;
  let i = 0;
  while ((m = pattern.exec(text))) {
    if (m.index > last) out.push(text.slice(last, m.index));
    const token = m[0];
    const k = `${key}-${i++}`;
    if (token.startsWith("`")) out.push(<code key={k}>{token.slice(1, -1)}</code>);
    else if (token.startsWith("**")) out.push(<strong key={k}>{token.slice(2, -2)}</strong>);
    else if (token.startsWith("*")) out.push(<em key={k}>{token.slice(1, -1)}</em>);
    else {
      const link = /\[([^\]]+)\]\(([^)\s]+)\)/.exec(token)!;
      const safe = /^https?:\/\//.test(link[2]);
      out.push(
        safe ? (
          <a key={k} href={link[2]} target="_blank" rel="noreferrer noopener">
            {link[1]}
          </a>
        ) : (
          link[1]
        ),
      );
    }
    last = m.index + token.length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

export function Markdown({ text }: { text: string }) {
  const lines = text.replace(/\r\n/g, "\n").split("\n");
  const blocks: ReactNode[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    const key = `b${i}`;
    const picture = /^!\[([^\]]*)\]\((data:image\/(?:png|jpeg|gif|webp);base64,[A-Za-z0-9+/=]+)\)\s*$/.exec(line);
    if (picture) {
      // pictures only as data: URIs of raster images (a model's cover): nothing is fetched, nothing runs
      blocks.push(<img key={key} className="sf-md-img" src={picture[2]} alt={picture[1]} />);
      i++;
    } else if (line.startsWith("```")) {
      const code: string[] = [];
      i++;
      while (i < lines.length && !lines[i].startsWith("```")) code.push(lines[i++]);
      i++;
      blocks.push(<pre key={key}>{code.join("\n")}</pre>);
    } else if (/^#{1,6} /.test(line)) {
      const level = Math.min(6, line.indexOf(" ") + 2);
      const Tag = `h${level}` as "h3";
      blocks.push(<Tag key={key}>{inline(line.replace(/^#+ /, ""), key)}</Tag>);
      i++;
    } else if (/^\s*([-*]|\d+\.) /.test(line)) {
      const items: string[] = [];
      const ordered = /^\s*\d+\./.test(line);
      while (i < lines.length && /^\s*([-*]|\d+\.) /.test(lines[i])) {
        let item = lines[i++].replace(/^\s*([-*]|\d+\.) /, "");
        while (i < lines.length && /^\s{2,}\S/.test(lines[i]) && !/^\s*([-*]|\d+\.) /.test(lines[i])) item += " " + lines[i++].trim();
        items.push(item);
      }
      const children = items.map((it, j) => <li key={j}>{inline(it, `${key}-${j}`)}</li>);
      blocks.push(ordered ? <ol key={key}>{children}</ol> : <ul key={key}>{children}</ul>);
    } else if (line.startsWith("|")) {
      const rows: string[][] = [];
      while (i < lines.length && lines[i].startsWith("|")) {
        const cells = lines[i++].split("|").slice(1, -1).map((c) => c.trim());
        if (!cells.every((c) => /^:?-+:?$/.test(c))) rows.push(cells);
      }
      blocks.push(
        <table key={key} className="sf-md-table">
          <tbody>
            {rows.map((r, j) => (
              <tr key={j}>{r.map((c, k) => (j === 0 ? <th key={k}>{inline(c, `${key}${j}${k}`)}</th> : <td key={k}>{inline(c, `${key}${j}${k}`)}</td>))}</tr>
            ))}
          </tbody>
        </table>,
      );
    } else if (line.trim() === "") {
      i++;
    } else {
      const para: string[] = [];
      while (i < lines.length && lines[i].trim() !== "" && !/^(#{1,6} |```|\s*([-*]|\d+\.) |\|)/.test(lines[i])) para.push(lines[i++]);
      blocks.push(<p key={key}>{inline(para.join(" "), key)}</p>);
    }
  }
  return <div className="sf-markdown">{blocks}</div>;
}
