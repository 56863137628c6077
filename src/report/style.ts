/** The report's and `view`'s stylesheet, inline in every page so a page opens from disk or a mail. */
export const CSS = `
:root { color-scheme: light; --ok: #1a7f37; --bad: #cf222e; --muted: #6e7781; --line: #d0d7de; --accent: #0969da; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1f2328; background: #f6f8fa; }
main { max-width: 1100px; margin: 0 auto; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 0 0 8px; }
.sub { color: var(--muted); margin: 0 0 16px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; margin-bottom: 16px; }
.card, section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; }
section { margin-bottom: 16px; }
.card .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .v { font-size: 20px; font-weight: 600; }
.row2 { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.row2 section { margin-bottom: 16px; }
.chart { width: 100%; height: auto; display: block; }
.chart .grid { stroke: #eaeef2; }
.chart .tick, .chart .axis-label { fill: var(--muted); font-size: 11px; }
.chart .best-line { fill: none; stroke: var(--accent); stroke-width: 2; stroke-dasharray: 4 3; }
.chart .point.accepted circle, .chart .point.baseline circle { fill: var(--ok); stroke: #fff; stroke-width: 1.5; }
.chart .point.baseline circle { fill: var(--accent); }
.chart .point.no_change circle { fill: var(--muted); }
.chart .point.rejected path { stroke: var(--bad); stroke-width: 2.5; fill: none; }
.chart .suite-line { fill: none; stroke: #8250df; stroke-width: 2; }
.chart .suite-point { fill: #8250df; }
.chart .spend-bar .coding { fill: #0969da; }
.chart .spend-bar .agent { fill: #54aeff; }
.legend { color: var(--muted); font-size: 12px; margin-top: 4px; }
.legend .sw { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin: 0 4px 0 12px; vertical-align: -1px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 6px 8px; border-bottom: 1px solid var(--line); }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
td.what { max-width: 460px; }
td ul { margin: 0; padding-left: 16px; }
.hyp { font-weight: 500; }
.change, .pattern, .gate-info { color: var(--muted); }
.holdout { font-size: 18px; font-weight: 600; }
.badge { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 12px; font-weight: 600; color: #fff; background: var(--muted); white-space: nowrap; }
.badge.accepted { background: var(--ok); }
.badge.rejected { background: var(--bad); }
.badge.baseline { background: var(--accent); }
details summary { cursor: pointer; color: var(--accent); margin-top: 4px; }
pre.diff { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f6f8fa; border: 1px solid var(--line); border-radius: 6px; padding: 8px; white-space: pre-wrap; overflow-wrap: anywhere; }
pre.diff span { display: block; }
pre.diff .add { background: #e6ffec; color: #116329; }
pre.diff .del { background: #ffebe9; color: #82071e; }
pre.diff .hunk { color: #8250df; }
pre.diff .meta { color: var(--muted); }
.runs { margin: 0 0 12px; font-size: 13px; }
.runs .k { color: var(--muted); margin-right: 8px; }
.runs ul { display: inline-flex; flex-wrap: wrap; gap: 4px 16px; list-style: none; padding: 0; margin: 0; }
.runs .current { font-weight: 600; }
.why { color: #1f2328; }
@media (max-width: 800px) { .row2 { grid-template-columns: 1fr; } }
`;
