// The evidence map (ECharts, SVG renderer, offline): the venue's county outlines, its fence (circle or polygon), the
// fix and the circle of its accuracy, framed to fit them, with the true east-west scale at that latitude.
import { $ } from "../lib/dom.js";
import { staticJson } from "./state.js";

const EARTH_M = 6371008.8;
let chart = null;
const loaded = new Map();  // map name -> registered

// A circle of `radius` metres around (lat, lon) as a ring of [lon, lat] points.
export function circle(lat, lon, radius, n = 72) {
  const dLat = (radius / EARTH_M) * 180 / Math.PI;
  const dLon = dLat / Math.cos(lat * Math.PI / 180);
  return Array.from({ length: n }, (_, k) => {
    const a = (2 * Math.PI * k) / n;
    return [lon + dLon * Math.cos(a), lat + dLat * Math.sin(a)];
  });
}

async function mapFor(countyCode) {
  const code = (countyCode || "").slice(0, 4) + "00";
  const name = `p${code}`;
  if (loaded.has(name) || echarts.getMap(name)) return name;
  try {
    const geo = await staticJson(`/static/vendor/yunnan-counties/${code}.json`);
    echarts.registerMap(name, geo);
    loaded.set(name, true);
    return name;
  } catch {
    if (!echarts.getMap("yunnan")) echarts.registerMap("yunnan", await staticJson("/static/vendor/yunnan.json"));
    return "yunnan";
  }
}

const polygonSeries = (id, ring, fill, stroke, dashed) => ({
  id, type: "custom", coordinateSystem: "geo", data: [0], silent: true, z: 5,
  renderItem: (params, api) => ({ type: "polygon", shape: { points: ring.map(p => api.coord(p)) },
    style: { fill, stroke, lineWidth: 3, lineDash: dashed ? [8, 6] : null } }),
});

// `d` is an anomaly event's data: venue {lat, lon, radius_m, polygon: [[lat, lon]…]}, fix {lat, lon, accuracy_m}.
export async function showEvidenceMap(d) {
  const note = $("detail-map-note");
  const venue = d.venue;
  if (!chart) chart = echarts.init($("detail-map"), null, { renderer: "svg" });
  chart.clear();
  if (!venue) { note.textContent = "该异常没有场地围栏信息"; $("detail-map").dataset.fence = ""; return; }
  const fence = venue.polygon && venue.polygon.length >= 3 ? venue.polygon.map(([lat, lon]) => [lon, lat])
    : circle(venue.lat, venue.lon, venue.radius_m || 100);
  const fix = d.fix;
  const accuracy = fix ? circle(fix.lat, fix.lon, Math.max(fix.accuracy_m || 0, 1)) : [];
  const all = [...fence, ...accuracy, [venue.lon, venue.lat]];
  let [x0, y0, x1, y1] = [180, 90, -180, -90];
  for (const [x, y] of all) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
  const padX = Math.max((x1 - x0) * 0.15, 0.0008), padY = Math.max((y1 - y0) * 0.15, 0.0008);
  const map = await mapFor(d.county_code || "");
  chart.setOption({
    animation: false,
    geo: { map, roam: true, boundingCoords: [[x0 - padX, y1 + padY], [x1 + padX, y0 - padY]],
      aspectScale: Math.cos(venue.lat * Math.PI / 180), label: { show: false }, silent: true,
      itemStyle: { areaColor: "#0d2a5c", borderColor: "#3f7fd9", borderWidth: 2 } },
    series: [
      polygonSeries("fence", fence, "rgba(61, 255, 158, 0.18)", "#3dff9e", false),
      ...(fix ? [polygonSeries("accuracy", accuracy, "rgba(255, 176, 32, 0.18)", "#ffb020", true)] : []),
      { id: "points", type: "scatter", coordinateSystem: "geo", z: 6, silent: true,
        data: [{ value: [venue.lon, venue.lat], symbol: "diamond", symbolSize: 14, itemStyle: { color: "#3dff9e" } },
          ...(fix ? [{ value: [fix.lon, fix.lat], symbolSize: 16, itemStyle: { color: "#ff4d4f", borderColor: "#fff",
            borderWidth: 2 } }] : [])] },
    ],
  }, true);
  $("detail-map").dataset.fence = venue.polygon && venue.polygon.length >= 3 ? "polygon" : "circle";
  $("detail-map").dataset.fix = fix ? "yes" : "no";
  const shape = venue.polygon && venue.polygon.length >= 3 ? "多边形围栏" : `圆形围栏，半径 ${Math.round(venue.radius_m)} 米`;
  note.textContent = fix
    ? `${shape}；定位精度 ±${Math.round(fix.accuracy_m)} 米${d.fence_result ? `，判定：${d.fence_result === "inside" ? "围栏内" : d.fence_result === "outside" ? "围栏外" : "不确定"}` : ""}`
    : `${shape}；该异常没有定位`;
}
