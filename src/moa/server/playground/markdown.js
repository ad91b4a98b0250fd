// A small, safe markdown subset for untrusted model output: paragraphs, headings, lists,
// fenced code blocks, block quotes, inline code, bold and italic. Every piece of model text
// becomes a DOM text node (textContent / append(string)), never HTML, so a reply holding
// <script> or <img onerror> is shown as the characters it is.

const FENCE = /^\s*(```|~~~)/;
const HEADING = /^(#{1,6})\s+(.*?)\s*#*\s*$/;
const ITEM = /^\s*([-*+]|\d{1,9}[.)])\s+(.*)$/;
const QUOTE = /^\s*>\s?(.*)$/;
const INLINE =
  /`([^`\n]+)`|\*\*(?=\S)([^*\n]+?)\*\*|__(?=\S)([^_\n]+?)__|\*(?=\S)([^*\n]+?)\*|(?<!\w)_(?=\S)([^_\n]+?)_(?!\w)/g;

/** Render `text` as a DocumentFragment of safe elements. */
export function renderMarkdown(text) {
  const root = document.createDocumentFragment();
  const lines = String(text ?? "").replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) {
      i += 1;
    } else if (FENCE.test(line)) {
      i = codeBlock(root, lines, i);
    } else if (HEADING.test(line)) {
      const [, hashes, title] = line.match(HEADING);
      root.append(element(`h${Math.min(6, hashes.length + 2)}`, title));
      i += 1;
    } else if (ITEM.test(line)) {
      i = list(root, lines, i);
    } else if (QUOTE.test(line)) {
      const quoted = [];
      for (; i < lines.length && QUOTE.test(lines[i]); i += 1) quoted.push(lines[i].match(QUOTE)[1]);
      const quote = document.createElement("blockquote");
      quote.append(renderMarkdown(quoted.join("\n")));
      root.append(quote);
    } else {
      const para = [];
      for (; i < lines.length && lines[i].trim() && !startsBlock(lines[i]); i += 1) para.push(lines[i]);
      root.append(element("p", para.join("\n")));
    }
  }
  return root;
}

function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || ITEM.test(line) || QUOTE.test(line);
}

function codeBlock(root, lines, start) {
  const marker = lines[start].trim().slice(0, 3);
  const body = [];
  let i = start + 1;
  for (; i < lines.length && !lines[i].trim().startsWith(marker); i += 1) body.push(lines[i]);
  const pre = document.createElement("pre");
  const code = document.createElement("code");
  code.textContent = body.join("\n");
  pre.append(code);
  root.append(pre);
  return i + 1; // past the closing fence (or the end, for an unclosed one while streaming)
}

function list(root, lines, start) {
  const ordered = /\d/.test(lines[start].match(ITEM)[1]);
  const node = document.createElement(ordered ? "ol" : "ul");
  let i = start;
  let item = null;
  for (; i < lines.length; i += 1) {
    const match = lines[i].match(ITEM);
    if (match) {
      item = element("li", match[2]);
      node.append(item);
    } else if (lines[i].trim() && /^\s/.test(lines[i]) && item) {
      item.append(" ");
      inline(item, lines[i].trim());
    } else {
      break;
    }
  }
  root.append(node);
  return i;
}

function element(tag, text) {
  const node = document.createElement(tag);
  inline(node, text);
  return node;
}

function inline(parent, text) {
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    parent.append(text.slice(last, match.index));
    const [, code, bold1, bold2, em1, em2] = match;
    if (code !== undefined) {
      const node = document.createElement("code");
      node.textContent = code;
      parent.append(node);
    } else {
      const node = document.createElement(bold1 ?? bold2 ? "strong" : "em");
      inline(node, bold1 ?? bold2 ?? em1 ?? em2);
      parent.append(node);
    }
    last = match.index + match[0].length;
  }
  parent.append(text.slice(last));
}
