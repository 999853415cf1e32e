/**
 * A minimal line plot as PNG with no dependency (node:zlib's deflate): one panel per
 * series, stacked, each scaled from 0 to 1.2 × its maximum, grid lines at quarters. No text
 * (the README's caption names the panels, top to bottom, in the order of `series`).
 */
import { deflateSync } from 'node:zlib';

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** CRC-32 (zlib.crc32 is not in every supported Node line). */
function crc32(b: Buffer): number {
  let c = 0xffffffff;
  for (const x of b) c = (CRC_TABLE[(c ^ x) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export interface Point {
  x: number;
  series: Record<string, number>;
}

const COLORS: Array<[number, number, number]> = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
];

export function plotPng(points: readonly Point[], width = 800, panelHeight = 140): Buffer {
  const names = points.length > 0 ? Object.keys((points[0] as Point).series) : [];
  const height = Math.max(1, names.length) * panelHeight;
  const px = Buffer.alloc(width * height * 3, 255);
  const set = (x: number, y: number, c: [number, number, number]): void => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    const o = (y * width + x) * 3;
    px[o] = c[0];
    px[o + 1] = c[1];
    px[o + 2] = c[2];
  };
  const xs = points.map((p) => p.x);
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs, x0 + 1);
  const pad = 8;
  names.forEach((name, i) => {
    const top = i * panelHeight;
    const vals = points.map((p) => p.series[name] ?? 0);
    const ymax = Math.max(...vals, 1e-9) * 1.2;
    const toX = (x: number): number => Math.round(pad + ((x - x0) / (x1 - x0)) * (width - 2 * pad));
    const toY = (v: number): number => Math.round(top + panelHeight - pad - (v / ymax) * (panelHeight - 2 * pad));
    for (let q = 0; q <= 4; q++) {
      const y = Math.round(top + pad + (q * (panelHeight - 2 * pad)) / 4);
      for (let x = pad; x < width - pad; x += 2) set(x, y, [210, 210, 210]);
    }
    for (let x = 0; x < width; x++) set(x, top + panelHeight - 1, [0, 0, 0]);
    const c = COLORS[i % COLORS.length] as [number, number, number];
    for (let k = 1; k < points.length; k++) {
      const ax = toX(xs[k - 1] as number);
      const ay = toY(vals[k - 1] as number);
      const bx = toX(xs[k] as number);
      const by = toY(vals[k] as number);
      const steps = Math.max(Math.abs(bx - ax), Math.abs(by - ay), 1);
      for (let s = 0; s <= steps; s++) {
        const x = Math.round(ax + ((bx - ax) * s) / steps);
        const y = Math.round(ay + ((by - ay) * s) / steps);
        set(x, y, c);
        set(x, y + 1, c);
      }
    }
  });
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) px.copy(raw, y * (width * 3 + 1) + 1, y * width * 3, (y + 1) * width * 3);
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}
