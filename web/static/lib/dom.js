// The few DOM helpers the views share: an element by id, and a new element with a class and text.
export const $ = id => document.getElementById(id);

/** A new `tag` element with class `cls` and text `text` (text is never parsed as HTML). */
export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}
