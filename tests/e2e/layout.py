"""Checks of what a person sees in a table: every header word on one line, every column inside the table."""
from __future__ import annotations

# For each header cell of the tables matching `selector`: the words whose letters sit on more than one line
# (a header squeezed to "ro/un/d"), and the headers whose right edge lies beyond the table's visible area.
HEADER_PROBLEMS_JS = """(selector) => {
  const problems = [];
  for (const table of document.querySelectorAll(selector)) {
    const box = (table.querySelector('.table-container, .virtual-table-viewport') || table).getBoundingClientRect();
    for (const th of table.querySelectorAll('thead th')) {
      const text = th.innerText.trim();
      if (!text) continue;
      if (th.getBoundingClientRect().right > box.right + 1) problems.push(`off-screen: ${text}`);
      const walker = document.createTreeWalker(th, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const s = node.textContent;
        let tops = [];
        for (let i = 0; i <= s.length; i++) {
          if (i === s.length || /\\s/.test(s[i])) {
            if (new Set(tops).size > 1) problems.push(`wrapped inside a word: ${text}`);
            tops = [];
            continue;
          }
          const range = document.createRange();
          range.setStart(node, i); range.setEnd(node, i + 1);
          const rect = range.getBoundingClientRect();
          if (rect.width > 0) tops.push(Math.round(rect.top));
        }
      }
    }
  }
  return problems;
}"""


def header_problems(page, selector: str = ".lab-table") -> list[str]:
    return page.evaluate(HEADER_PROBLEMS_JS, selector)
