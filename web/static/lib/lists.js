// How a screen shows a ranked list in a fixed number of lines: the first ones, and one line for the rest.

/**
 * `items` (already ranked) cut to at most `lines` lines: all of them if they fit, else the first `lines - 1`, the
 * last line being left for the rest. Returns { shown, rest }; `rest` is empty when everything fits.
 */
export function topWithRest(items, lines) {
  const shown = items.length > lines ? items.slice(0, lines - 1) : items;
  return { shown, rest: items.slice(shown.length) };
}
