/**
 * The page's CSS: a grid of cards on a light background, the system font stack (no web fonts: the
 * page makes no request), tables that scroll sideways on narrow screens, and a print layout.
 */
export const PAGE_STYLE = `
:root {
  --bg: #f3f4f6; --card: #ffffff; --text: #111827; --muted: #6b7280; --line: #e5e7eb;
  --kiln: #2563eb; --good: #15803d; --bad: #b91c1c;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif;
  color: var(--text); background: var(--bg);
}
* { box-sizing: border-box; }
body { margin: 0; line-height: 1.45; }
main { max-width: 1360px; margin: 0 auto; padding: 28px 24px 48px; }
.page-header { margin-bottom: 8px; }
.eyebrow { color: var(--kiln); font-weight: 600; font-size: 13px; letter-spacing: .06em; text-transform: uppercase; }
h1 { font-size: 30px; margin: 4px 0 12px; overflow-wrap: anywhere; }
h2 { font-size: 19px; margin: 32px 0 12px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 0 0 2px; }
.facts { display: flex; flex-wrap: wrap; gap: 6px 22px; margin: 0 0 18px; font-size: 13px; }
.fact { display: flex; gap: 6px; }
.fact dt { color: var(--muted); }
.fact dd { margin: 0; font-weight: 500; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 12px; }
.tile { background: var(--card); border-radius: 10px; padding: 14px 16px; box-shadow: 0 1px 2px rgba(0,0,0,.06), 0 1px 8px rgba(0,0,0,.04); border-top: 4px solid var(--line); }
.tile.tone-good { border-top-color: var(--good); }
.tile.tone-bad { border-top-color: var(--bad); }
.tile-label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.tile-value { font-size: 22px; font-weight: 650; margin-top: 2px; }
.tone-bad .tile-value { color: var(--bad); }
.tile-detail { color: var(--muted); font-size: 12px; margin-top: 4px; overflow-wrap: anywhere; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr)); gap: 16px; }
.card { background: var(--card); border-radius: 10px; padding: 16px 18px; box-shadow: 0 1px 2px rgba(0,0,0,.06), 0 1px 8px rgba(0,0,0,.04); min-width: 0; }
.card.wide { grid-column: 1 / -1; }
.note { color: var(--muted); font-size: 12px; margin: 0 0 10px; }
.chart-box { position: relative; height: 300px; }
.wide .chart-box { height: 360px; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
table.data { width: 100%; }
table.data th, table.data td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); white-space: nowrap; }
table.data th { color: var(--muted); font-weight: 600; font-size: 12px; }
table.data tbody tr:hover { background: #f9fafb; }
table.heatmap th, table.heatmap td { width: 44px; height: 34px; text-align: center; border: 1px solid #fff; }
table.heatmap th { color: var(--muted); font-weight: 600; font-size: 12px; }
table.heatmap th.corner { width: auto; font-weight: 400; padding-right: 8px; }
.error { background: #fee2e2; color: var(--bad); padding: 12px 24px; font-weight: 600; }
@media (max-width: 520px) { .grid { grid-template-columns: 1fr; } }
@media print { body { background: #fff; } .card, .tile { box-shadow: none; border: 1px solid var(--line); break-inside: avoid; } }
`;
