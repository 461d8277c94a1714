/**
 * The latency-vs-load chart as a hand-written SVG (no charting dependency): x = achieved
 * throughput (req/s, linear), y = latency (ms, log scale), one colour per target, p50 solid and
 * p99 dashed, one marker per concurrency level. The knee is where a line turns upwards: more
 * concurrency no longer buys throughput, only queueing.
 */

export interface SweepPoint {
  readonly target: string;
  readonly clients: number;
  readonly streams: number;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  /** Requests of this point that got no decision (see Sample.errors). */
  readonly errors: number;
}

const COLORS = ['#6b7280', '#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function niceStep(range: number, ticks: number): number {
  const raw = range / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
}

export function latencyChart(points: readonly SweepPoint[], title: string, subtitle: string): string {
  const W = 1100;
  const H = 520;
  const m = { l: 70, r: 20, t: 70, b: 60, gap: 60, legend: 130 };
  const pw = (W - m.l - m.r - m.gap - m.legend) / 2;
  const ph = H - m.t - m.b;
  const targets = [...new Set(points.map((p) => p.target))];
  const maxX = Math.max(1, ...points.map((p) => p.rps)) * 1.05;
  const lat = points.flatMap((p) => [p.p50, p.p99]).filter((v) => v > 0 && Number.isFinite(v));
  const minY = 10 ** Math.floor(Math.log10(Math.min(...lat, 0.1)));
  const maxY = 10 ** Math.ceil(Math.log10(Math.max(...lat, 1)));
  const y = (v: number): number => m.t + ph - ((Math.log10(v) - Math.log10(minY)) / (Math.log10(maxY) - Math.log10(minY))) * ph;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${m.l}" y="24" font-size="16" font-weight="bold">${esc(title)}</text>`);
  out.push(`<text x="${m.l}" y="42" fill="#555">${esc(subtitle)}</text>`);

  (['p50', 'p99'] as const).forEach((key, panel) => {
    const left = m.l + panel * (pw + m.gap);
    const x = (v: number): number => left + (v / maxX) * pw;
    out.push(`<text x="${left + pw / 2}" y="${m.t - 10}" text-anchor="middle" font-weight="bold">${key} latency</text>`);
    const step = niceStep(maxX, 5);
    for (let v = 0; v <= maxX; v += step) {
      out.push(`<line x1="${x(v)}" y1="${m.t}" x2="${x(v)}" y2="${m.t + ph}" stroke="#eee"/>`);
      out.push(`<text x="${x(v)}" y="${m.t + ph + 18}" text-anchor="middle">${Math.round(v).toLocaleString('en-US')}</text>`);
    }
    for (let d = minY; d <= maxY * 1.0001; d *= 10) {
      for (const k of [1, 2, 5]) {
        const v = d * k;
        if (v > maxY * 1.0001) break;
        out.push(`<line x1="${left}" y1="${y(v)}" x2="${left + pw}" y2="${y(v)}" stroke="${k === 1 ? '#ddd' : '#f3f3f3'}"/>`);
        out.push(`<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${v >= 1 ? v : v.toPrecision(1)}</text>`);
      }
    }
    out.push(`<line x1="${left}" y1="${m.t + ph}" x2="${left + pw}" y2="${m.t + ph}" stroke="#333"/>`);
    out.push(`<line x1="${left}" y1="${m.t}" x2="${left}" y2="${m.t + ph}" stroke="#333"/>`);
    out.push(`<text x="${left + pw / 2}" y="${H - 18}" text-anchor="middle">achieved throughput (requests/s)</text>`);
    out.push(
      `<text transform="translate(${left - 52} ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${key} latency (ms, log scale)</text>`,
    );
    targets.forEach((t, i) => {
      const color = COLORS[i % COLORS.length] as string;
      const pts = points.filter((p) => p.target === t && p[key] > 0).sort((a, b) => a.clients * a.streams - b.clients * b.streams);
      out.push(
        `<polyline points="${pts.map((p) => `${x(p.rps).toFixed(1)},${y(p[key]).toFixed(1)}`).join(' ')}" fill="none" stroke="${color}" stroke-width="2"/>`,
      );
      for (const p of pts) {
        out.push(
          `<circle cx="${x(p.rps).toFixed(1)}" cy="${y(p[key]).toFixed(1)}" r="3.5" fill="${p.errors > 0 ? '#fff' : color}" stroke="${color}" stroke-width="1.5"><title>${esc(
            `${t} c${p.clients} m${p.streams} (${p.clients * p.streams} in flight): ${Math.round(p.rps)} req/s, ${key} ${p[key]} ms${p.errors > 0 ? `, ${p.errors} errors` : ''}`,
          )}</title></circle>`,
        );
      }
    });
  });
  const lx = W - m.r - m.legend + 15;
  targets.forEach((t, i) => {
    const ly = m.t + 10 + i * 20;
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 25}" y2="${ly}" stroke="${COLORS[i % COLORS.length] as string}" stroke-width="2"/>`);
    out.push(`<text x="${lx + 31}" y="${ly + 4}">${esc(t)}</text>`);
  });
  const ny = m.t + 30 + targets.length * 20;
  out.push(`<text x="${lx}" y="${ny}" fill="#555">one point per</text>`);
  out.push(`<text x="${lx}" y="${ny + 15}" fill="#555">concurrency level,</text>`);
  out.push(`<text x="${lx}" y="${ny + 30}" fill="#555">1 to ${Math.max(...points.map((p) => p.clients * p.streams))} in flight;</text>`);
  out.push(`<text x="${lx}" y="${ny + 45}" fill="#555">hollow: had errors</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
