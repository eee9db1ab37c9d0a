// Building the page from values strangers chose (spec URIs, metadata URIs, addresses) without
// ever parsing them as HTML: every text goes in through textContent (SECURITY.md WEB-03).

type Child = Node | string | null | undefined | false;

/** `<tag attrs...>children</tag>`; strings become text nodes, never markup. */
export function h(
  tag: string,
  attrs: Record<string, string | undefined> = {},
  ...children: Child[]
): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined) el.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return el;
}

/** Replace everything inside `el`. */
export function put(el: HTMLElement, ...children: Child[]): void {
  el.replaceChildren();
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
}

/** A notice that says what happened and what to do. */
export function notice(kind: "error" | "info", text: string): HTMLElement {
  return h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}
