"""``index.html``: every figure with its caption and links to its data."""
from __future__ import annotations

import html
import os

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>tn_keras: the paper's figures</title>
<style>
body {{ font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }}
figure {{ margin: 2.5em 0; border-top: 1px solid #ccc; padding-top: 1em; }}
img {{ max-width: 100%; height: auto; }}
figcaption {{ margin-top: 0.6em; line-height: 1.4; }}
.data {{ font-size: 0.9em; color: #555; }}
</style></head><body>
<h1>tn_keras: the supplement's figures, reproduced</h1>
<p>{summary}</p>
{figures}
</body></html>
"""

FIGURE = """<figure id="{name}">
<img src="{image}" alt="{title}">
<figcaption><b>{title}.</b> {caption}
<div class="data">Data: {links}</div></figcaption>
</figure>"""


def write_index(folder, records, summary):
    """Write ``folder/index.html`` for ``records`` (`tn_keras.figures.style.Figure`)."""
    blocks = []
    for record in records:
        links = ", ".join(f'<a href="{html.escape(f)}">{html.escape(f)}</a>'
                          for f in record.data)
        for image in record.images:
            blocks.append(FIGURE.format(name=html.escape(record.name), image=html.escape(image),
                                        title=html.escape(record.title),
                                        caption=html.escape(record.caption), links=links))
    with open(os.path.join(folder, "index.html"), "w", encoding="utf-8") as f:
        f.write(PAGE.format(summary=html.escape(summary), figures="\n".join(blocks)))
