/** @jsxImportSource hono/jsx */

/**
 * A small bar chart as inline SVG: no script, no library, readable without colour (each bar has a title, the
 * chart a text summary), and it scales to the width it is given.
 */
export function BarChart(props: { label: string; bars: { label: string; value: number }[]; unit: string }) {
  const width = 480;
  const height = 80;
  const max = Math.max(1, ...props.bars.map((b) => b.value));
  const step = width / Math.max(1, props.bars.length);
  const total = props.bars.reduce((a, b) => a + b.value, 0);
  return (
    <figure class="chart">
      <svg role="img" aria-label={props.label} viewBox={`0 0 ${width} ${height + 14}`} preserveAspectRatio="none">
        <title>{`${props.label}: ${total} ${props.unit} in all, at most ${max} in one hour`}</title>
        {props.bars.map((b, i) => {
          const h = b.value === 0 ? 0 : Math.max(2, (b.value / max) * height);
          return (
            <rect
              x={(i * step + 1).toFixed(1)}
              y={(height - h).toFixed(1)}
              width={Math.max(1, step - 2).toFixed(1)}
              height={h.toFixed(1)}
            >
              <title>{`${b.label}: ${b.value} ${props.unit}`}</title>
            </rect>
          );
        })}
        <line x1="0" y1={height} x2={width} y2={height} class="axis" />
        <text x="0" y={height + 12} class="tick">
          {props.bars[0]?.label ?? ""}
        </text>
        <text x={width} y={height + 12} class="tick" text-anchor="end">
          {props.bars.at(-1)?.label ?? ""}
        </text>
      </svg>
      <figcaption>{props.label}</figcaption>
    </figure>
  );
}
