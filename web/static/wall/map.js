// The province map (ECharts, SVG renderer, offline): prefectures coloured by today's anomalies, classes as markers
// (one per county at the province level, one per venue inside a prefecture), and names placed where no marker is.
// A click on a prefecture (or its ranking entry) shows its counties (vendored outlines) and venues.
import { $ } from "../lib/dom.js";
import { emit, on, shortName, staticJson, state } from "./state.js";

const COLORS = { alarm: "#ff4d4f", in_session: "#3dff9e", other: "#5b8bd9" };
const LABEL_FONT = 18;
const LABEL_FAMILY = "Noto Sans CJK SC, Source Han Sans SC, Microsoft YaHei, sans-serif";
const ALARM_MS = 5 * 60 * 1000;
let chart = null;
let province = null;          // the province GeoJSON
let level = null;             // null: the province; else the prefecture code shown
const counties = new Map();   // prefecture code -> its county GeoJSON (loaded on first use)
const measure = document.createElement("canvas").getContext("2d");

export async function initMap() {
  province = await staticJson("/static/vendor/yunnan.json");
  echarts.registerMap("yunnan", province);
  chart = echarts.init($("map"), null, { renderer: "svg" });
  window.wallMap = { chart, show, level: () => level };  // for the tests and the operator's console
  chart.on("click", p => {
    if (level == null && p.componentType === "geo") drill(codeOf(p.name));
    else if (level == null && p.seriesId === "markers" && p.data) drill(p.data.prefecture);
  });
  $("map-back").addEventListener("click", () => show(null));
  on("overview", render);
  on("drill", code => drill(code));
}

const codeOf = name => (province.features.find(f => f.properties.name === name) || {}).id;

async function drill(code) {
  if (!code) return;
  if (!counties.has(code)) {
    try {
      const geo = await staticJson(`/static/vendor/yunnan-counties/${code}.json`);
      echarts.registerMap(`p${code}`, geo);
      counties.set(code, geo);
    } catch { return; }
  }
  show(code);
}

export function show(code) {
  level = code;
  $("map-back").classList.toggle("hidden", code == null);
  chart.clear();
  render();
  emit("map-level", code);
}

function statusOf(classes, now) {
  if (classes.some(c => now - (state.alarmed.get(c.id) || 0) < ALARM_MS)) return "alarm";
  return classes.some(c => c.status === "in_session") ? "in_session" : "other";
}

function groupBy(list, key) {
  const out = new Map();
  for (const item of list) {
    const k = key(item);
    if (!out.has(k)) out.set(k, []);
    out.get(k).push(item);
  }
  return out;
}

// One marker per group of classes, at their mean position, sized by their number.
function markers(groups, now, name) {
  return [...groups.entries()].map(([key, cs]) => {
    const status = statusOf(cs, now);
    const lon = cs.reduce((s, c) => s + c.lon, 0) / cs.length;
    const lat = cs.reduce((s, c) => s + c.lat, 0) / cs.length;
    return { name: name(key, cs), value: [lon, lat, cs.length], key, prefecture: cs[0].prefecture_code,
      classes: cs, status, symbolSize: Math.min(30, 12 + 4 * Math.sqrt(cs.length - 1)),
      itemStyle: { color: COLORS[status], borderColor: "#050d1f", borderWidth: 1 } };
  });
}

function anchorOf(feature) {
  if (feature.properties.cp) return feature.properties.cp;
  let [x0, y0, x1, y1] = [180, 90, -180, -90];
  const walk = c => { if (typeof c[0] === "number") { x0 = Math.min(x0, c[0]); x1 = Math.max(x1, c[0]);
    y0 = Math.min(y0, c[1]); y1 = Math.max(y1, c[1]); } else c.forEach(walk); };
  walk(feature.geometry.coordinates);
  return [(x0 + x1) / 2, (y0 + y1) / 2];
}

const overlaps = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

// Each name goes at the nearest free place to its region's anchor: not on a marker, not on another name, inside the
// chart; searched on rings around the anchor. Returns the names with their positions in map coordinates.
export function placeLabels(items, markerBoxes, width, height) {
  measure.font = `${LABEL_FONT}px ${LABEL_FAMILY}`;
  const taken = [...markerBoxes];
  const placed = [];
  const h = LABEL_FONT * 1.6;  // a CJK line box: ascent and descent of the font, not only its size
  for (const item of items) {
    const w = measure.measureText(item.text).width + 10;
    const [ax, ay] = chart.convertToPixel({ geoIndex: 0 }, item.anchor);
    let best = null;
    for (let r = 0; r <= 260 && !best; r += 5) {
      const steps = r === 0 ? 1 : 24;
      for (let k = 0; k < steps; k++) {
        const angle = (Math.PI * 2 * k) / steps + Math.PI / 2;
        const box = { x: ax + r * Math.cos(angle) - w / 2, y: ay + r * Math.sin(angle) - h / 2, w, h };
        if (box.x < 4 || box.y < 4 || box.x + w > width - 4 || box.y + h > height - 40) continue;
        if (taken.some(t => overlaps(box, t))) continue;
        best = box; break;
      }
    }
    if (!best) continue;  // no free place within reach: the name is left out rather than drawn over a marker
    taken.push(best);
    const at = chart.convertFromPixel({ geoIndex: 0 }, [best.x + w / 2, best.y + h / 2]);
    placed.push({ name: item.text, value: at, box: best });
  }
  return placed;
}

function render() {
  const overview = state.overview;
  if (!chart || !overview) return;
  const now = Date.now();
  const prefecture = level;
  const mapName = prefecture ? `p${prefecture}` : "yunnan";
  const geo = prefecture ? counties.get(prefecture) : province;
  const classes = overview.classes.filter(c => !prefecture || c.prefecture_code === prefecture);
  let regionData;
  let points;
  if (prefecture) {
    const byCounty = groupBy(classes, c => c.county_code);
    regionData = geo.features.map(f => ({ name: f.properties.name, value: (byCounty.get(f.id) || []).length }));
    points = markers(groupBy(classes, c => `${c.lat.toFixed(4)},${c.lon.toFixed(4)}`), now,
      (_, cs) => `${cs[0].institution} 等 ${cs.length} 个班次`);
    const p = overview.prefectures.find(x => x.code === prefecture) || { name: "" };
    $("map-title").textContent = `${p.name} · ${geo.features.length} 个县区 · ${points.length} 个培训场地 · ${classes.length} 个班次`;
  } else {
    regionData = overview.prefectures.map(p => ({ name: p.name, value: p.anomalies, classes: p.classes,
      inSession: p.in_session }));
    points = markers(groupBy(classes, c => c.county_code), now, (_, cs) => `${cs.length} 个班次`);
    $("map-title").textContent = "全省 16 州市 · 点击州市查看县区和培训场地";
  }
  const max = Math.max(1, ...regionData.map(d => d.value));
  chart.setOption({
    tooltip: { trigger: "item", textStyle: { fontSize: 16 }, formatter: p => {
      if (p.seriesId === "markers") {
        const cs = p.data.classes;
        return cs.slice(0, 6).map(c => `${c.name}（${c.institution}）${c.status === "in_session" ? "上课中" : ""}`)
          .join("<br>") + (cs.length > 6 ? `<br>…共 ${cs.length} 个班次` : "");
      }
      if (p.seriesType === "map") return prefecture ? `${p.name}<br>班次 ${p.data?.value ?? 0}`
        : `${p.name}<br>班次 ${p.data?.classes ?? 0}，上课中 ${p.data?.inSession ?? 0}<br>今日异常 ${p.data?.value ?? 0}`;
      return "";
    } },
    visualMap: { show: false, min: 0, max, seriesIndex: 0, inRange: { color: ["#0d2a5c", "#1d4f9a", "#b8452f"] } },
    geo: { map: mapName, roam: false, layoutCenter: ["50%", "50%"], layoutSize: "96%", label: { show: false },
      itemStyle: { areaColor: "#0d2a5c", borderColor: "#3f7fd9", borderWidth: prefecture ? 1.5 : 1 },
      emphasis: { label: { show: false }, itemStyle: { areaColor: "#1d5fb5" } } },
    series: [
      { id: "regions", type: "map", geoIndex: 0, data: regionData },
      { id: "markers", type: "scatter", coordinateSystem: "geo", data: points, zlevel: 2, label: { show: false },
        emphasis: { label: { show: false } } },
      { id: "labels", type: "scatter", coordinateSystem: "geo", data: [], silent: true, zlevel: 3 },
    ],
  }, true);
  // Names are placed once the markers have their pixels.
  const width = chart.getWidth(), height = chart.getHeight();
  const boxes = points.map(p => {
    const [x, y] = chart.convertToPixel({ geoIndex: 0 }, p.value.slice(0, 2));
    const r = p.symbolSize / 2 + 3;
    return { x: x - r, y: y - r, w: 2 * r, h: 2 * r };
  });
  const items = geo.features.map(f => ({ text: prefecture ? f.properties.name : shortName(f.properties.name),
    anchor: anchorOf(f), weight: points.length }));
  const labels = placeLabels(items, boxes, width, height);
  chart.setOption({ series: [{ id: "labels", data: labels.map(l => ({ name: l.name, value: l.value })),
    symbolSize: 0, itemStyle: { color: "transparent" },
    label: { show: true, position: "inside", formatter: "{b}", fontSize: LABEL_FONT, fontFamily: LABEL_FAMILY,
      color: "#e3eeff", textBorderColor: "#050d1f", textBorderWidth: 3 } }] });
  chart.wallLabels = labels;
  chart.wallMarkers = boxes;
}
