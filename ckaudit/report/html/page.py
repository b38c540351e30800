"""The page around the pictures: one self-contained HTML document (styles and script inline, nothing fetched),
light and dark by `prefers-color-scheme`, one column on a phone."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from ckaudit import __version__

CSS = """
:root{--bg:#fff;--fg:#1b1f24;--mute:#59636e;--line:#d1d9e0;--card:#f6f8fa;
--ok:#1a7f37;--code:#cf222e;--repository:#bc4c00;--environment:#8250df;--unbuildable:#6e7781;
--matched:#8c959f;--missing:#cf222e;--unexpected:#0969da;--resized:#bc4c00;--renamed:#8250df;--differs:#1b1f24}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--mute:#9198a1;--line:#3d444d;
--card:#151b23;--ok:#3fb950;--code:#f85149;--repository:#db6d28;--environment:#a371f7;--unbuildable:#9198a1;
--matched:#656c76;--missing:#f85149;--unexpected:#4493f8;--resized:#db6d28;--renamed:#a371f7;--differs:#e6edf3}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif}
main{max-width:1240px;margin:0 auto;padding:16px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}h3{font-size:14px;margin:12px 0 6px}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
.mute{color:var(--mute)}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 12px;margin:8px 0}
.counts{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0}
.count{border:1px solid var(--line);border-radius:999px;padding:2px 10px}
.badge{display:inline-block;border-radius:999px;padding:1px 8px;font-size:12px;font-weight:600;color:#fff;
white-space:nowrap}
.b-ok,.c-loads{background:var(--ok)}.b-code,.c-code{background:var(--code)}
.b-repository,.c-repository{background:var(--repository)}.b-environment,.c-environment{background:var(--environment)}
.c-unbuildable{background:repeating-linear-gradient(45deg,var(--unbuildable) 0 3px,transparent 3px 6px)}
.c-none{background:transparent;border:1px dashed var(--line)}
.health{display:grid;grid-template-columns:minmax(0,2fr) auto minmax(0,3fr);gap:4px 12px;align-items:center}
.health>div{padding:3px 0;border-bottom:1px solid var(--line);overflow-wrap:anywhere}
.scroll{overflow-x:auto}
table.matrix{border-collapse:separate;border-spacing:3px}
.matrix th{font-weight:normal;font-size:12px;color:var(--mute);text-align:left;white-space:nowrap}
.matrix th.col{writing-mode:vertical-rl;transform:rotate(180deg);vertical-align:bottom;padding:2px 0}
.matrix td.cell{width:22px;height:22px;border-radius:4px;padding:0;text-align:center;color:#fff;
font-size:12px}
.matrix td.cell a{display:block;color:#fff;text-decoration:none;line-height:22px}
.matrix td.first{outline:2px solid var(--fg);outline-offset:1px}
.legend{display:flex;flex-wrap:wrap;gap:10px;font-size:12px;margin:6px 0}
.legend span{display:inline-flex;align-items:center;gap:4px}
.legend i{display:inline-block;width:12px;height:12px;border-radius:3px}
details{margin:6px 0}summary{cursor:pointer}
.finding{border-left:3px solid var(--line);padding:4px 10px;margin:6px 0;overflow-wrap:anywhere}
h3{overflow-wrap:anywhere}
.finding.code{border-color:var(--code)}.finding.repository{border-color:var(--repository)}
.finding.environment{border-color:var(--environment)}
.finding:target,details:target{background:var(--card);outline:2px solid var(--unexpected)}
.sides{display:grid;grid-template-columns:1fr 1fr;gap:12px}
@media (max-width:700px){.sides{grid-template-columns:1fr}.health{grid-template-columns:1fr auto}
.health>div.reason{grid-column:1/-1}}
svg.tree text{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;fill:var(--fg)}
svg.tree text.matched{fill:var(--mute)}svg.tree text.missing{fill:var(--missing)}
svg.tree text.unexpected{fill:var(--unexpected)}svg.tree text.resized{fill:var(--resized)}
svg.tree text.renamed{fill:var(--renamed)}svg.tree a text{text-decoration:underline}
.sw.matched{fill:var(--matched)}.sw.missing{fill:var(--missing)}.sw.unexpected{fill:var(--unexpected)}
.sw.resized{fill:var(--resized)}.sw.renamed{fill:var(--renamed)}.sw.differs{fill:none;stroke:var(--differs)}
.l-matched{background:var(--matched)}.l-missing{background:var(--missing)}.l-unexpected{background:var(--unexpected)}
.l-resized{background:var(--resized)}.l-renamed{background:var(--renamed)}
pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:4px 0}
a{color:var(--unexpected)}
"""

# Opening a <details> that a link points into (a matrix cell, a tree node): the only script on the page.
SCRIPT = """
function ckOpen(){var id=decodeURIComponent(location.hash.slice(1));if(!id)return;
var el=document.getElementById(id);if(!el)return;
for(var p=el;p;p=p.parentElement){if(p.tagName==='DETAILS')p.open=true;}
el.scrollIntoView({block:'center'});}
window.addEventListener('hashchange',ckOpen);document.addEventListener('DOMContentLoaded',ckOpen);
"""


def esc(value: object) -> str:
    return escape(str(value), quote=True)


def anchor(*parts: object) -> str:
    """An id safe in HTML and in a URL fragment."""
    text = "-".join(str(p) for p in parts)
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


def document(title: str, subtitle: str, sections: Iterable[str]) -> str:
    body = "\n".join(s for s in sections if s)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f"<title>{esc(title)}</title><style>{CSS}</style><script>{SCRIPT}</script></head>"
        f'<body><main><h1>{esc(title)}</h1><div class="mute">{esc(subtitle)}</div>\n{body}\n'
        f'<p class="mute">ckaudit {esc(__version__)}</p></main></body></html>\n'
    )


def legend(items: Iterable[tuple[str, str]]) -> str:
    spans = "".join(f'<span><i class="{esc(cls)}"></i>{esc(text)}</span>' for cls, text in items)
    return f'<div class="legend">{spans}</div>'
